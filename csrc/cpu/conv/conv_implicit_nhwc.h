// NHWC convolution passes without a column matrix ("implicit GEMM"): the forward for kernels larger than
// 1x1 (any groups, stride, dilation, padding mode) and the input gradient as the same direct convolution on
// grad_output, output phase by output phase when strided (conv_implicit_nhwc.cpp); the weight gradient for one
// group, stride 1 and zero padding (conv_implicit_nhwc_weight.cpp). The GEMM entry points
// (conv_gemm_forward.cpp, conv_gemm_backward_*.cpp) call these when *_applies says so.
#pragma once

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// Forward, any groups / stride / dilation / padding mode, kernels larger than 1x1, as long as one column
// panel of the packed weight (all taps of a group's channels) stays in L2 and a band of padded input rows
// fits a thread's scratch. nchw: x is (N, C, H, W) and y (N, K, OH, OW) while p says NHWC, for an NCHW forward
// that runs here (conv_layout_switch.h) with no whole-tensor transposes: each band of input rows is transposed as
// it is gathered, and the tiles store transposed.
bool implicit_forward_applies(const ConvParams& p, int64_t elem_size);

template <typename T>
void conv_forward_implicit_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                                bool nchw = false);

// Input gradient, zero padding. Stride 1: padding within the kernel's reach on the top and left. Strided:
// dilation 1, a kernel at least the stride, input channels per group of at least one column panel in whole half
// panels. Both: run_direct's limits for every phase's problem (its input is grad_output, its output channels
// p's input channels).
bool implicit_backward_input_applies(const ConvParams& p, int64_t elem_size);

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
