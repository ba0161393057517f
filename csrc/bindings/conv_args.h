// Turns the ATen arguments of the convolution ops into a validated ConvParams (shared by CPU and CUDA).
#pragma once

#include <ATen/ATen.h>

#include "../common/conv_params.h"

namespace fastconv {

PaddingMode parse_padding_mode(c10::string_view mode, const char* op);

// input_size (N, C, H, W), weight_size (K, C/groups, R, S); padding is (top, bottom, left, right).
// output_hw (OH, OW) < 0 means "the formula's size". Raises ValueError on an invalid combination.
ConvParams make_conv_params(at::IntArrayRef input_size, at::IntArrayRef weight_size, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                            c10::string_view padding_mode, int64_t out_h, int64_t out_w, const char* op);

}  // namespace fastconv
