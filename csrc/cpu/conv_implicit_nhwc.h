// NHWC convolution passes without a column matrix ("implicit GEMM"): the forward for kernels larger than
// 1x1 (any groups, stride, dilation, padding mode), and the input and weight gradients for the common case
// of one group and stride 1 with zero padding (e.g. 3x3 pad 1). See conv_implicit_nhwc*.cpp. The GEMM
// entry points (conv_gemm_forward.cpp, conv_gemm_backward_*.cpp) call these when *_applies says so.

// Input gradient: also needs padding within the kernel's reach, rows of at least 14 pixels, and one
// channel panel of the weight (all taps) small enough for L2.
#pragma once

#include "../common/conv_params.h"

namespace fastconv {
namespace cpu {

bool implicit_backward_input_applies(const ConvParams& p, int64_t elem_size);

// Forward, any groups / stride / dilation / padding mode, kernels larger than 1x1, as long as one column
// panel of the packed weight (all taps of a group's channels) stays in L2 (conv_implicit_nhwc_forward.cpp).
bool implicit_forward_applies(const ConvParams& p, int64_t elem_size);

template <typename T>
void conv_forward_implicit_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

template <typename T>
void conv_backward_input_implicit_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx);

// Weight gradient, same family (one group, stride 1, zero padding; channels a multiple of 32 floats /
// 16 doubles so every column tile is whole).
template <typename T>
bool implicit_backward_weight_applies(const ConvParams& p);

template <typename T>
void conv_backward_weight_implicit_nhwc(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
