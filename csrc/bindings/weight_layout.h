// Weights reach the CPU kernels as dense (K, C/groups, R, S) tensors (conv_params.h). A model moved to
// channels_last has channels_last weights; Tensor::contiguous() converts a 512x512x3x3 one in about
// 1.2 ms on this 2-core machine, more than a third of the convolution it feeds, so channels_last
// weights are converted with fastconv's threaded transpose instead.
#pragma once

#include <ATen/ATen.h>

namespace fastconv {

// weight as a contiguous tensor of the same sizes (the same tensor when it already is one).
at::Tensor dense_weight(const at::Tensor& weight);

// A 4-d floating weight stored (K, R, S, C/groups) (channels_last) and not also dense: the CPU forward and
// input gradient take it as it is (ConvParams::weight_rsc), their Winograd transforms reading it in place.
bool is_rsc_weight(const at::Tensor& weight);

}  // namespace fastconv
