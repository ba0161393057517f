// Direct forward convolution for few input channels (LeNet / MNIST first layers, the ResNet stem), where
// im2col + GEMM is dominated by building and packing a column matrix with few rows per output. See
// conv_direct_small.cpp for the kernel; conv_dispatch.cpp decides when it is used (use_direct_small).
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// Whether conv_forward_direct_small is expected to beat the other paths on p, elements of elem_size bytes
// (thresholds measured with benchmarks/small_conv_check.py and A/B in one process). Any stride, dilation, padding
// mode, group count and layout is correct.
bool use_direct_small(const ConvParams& p, int64_t elem_size);

// y = conv(x, w) + bias for any p with a non-empty output; threads over (image, group, band of rows).
template <typename T>
void conv_forward_direct_small(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

// Weight gradient by the same band buffering (conv_direct_small_weight.cpp): for kernel widths 3, 5 and 7
// (S tap columns x an output-channel block in registers) on the shapes use_direct_small_weight selects.
bool use_direct_small_weight(const ConvParams& p);
template <typename T>
void conv_backward_weight_direct_small(const ConvParams& p, const T* x, const T* gy, T* gw);

// Input gradient of a stride-1, zero-padded convolution as the forward convolution of grad_output with
// the flipped, transposed weight (conv_direct_small_input.cpp), when that forward is a use_direct_small one.
bool use_direct_small_input(const ConvParams& p, int64_t elem_size);
template <typename T>
void conv_backward_input_direct_small(const ConvParams& p, const T* gy, const T* w, T* gx);

}  // namespace cpu
}  // namespace fastconv
