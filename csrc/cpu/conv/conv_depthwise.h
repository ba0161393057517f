// Depthwise convolution (groups == C, one input channel per group, K = C * multiplier): each output
// channel k reads input channel k / multiplier. Too little work per group for a GEMM, so these kernels
// vectorise over the W axis (NCHW, on a padded copy of one input plane in a per-thread buffer) or over
// channels (NHWC).
#pragma once

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

inline bool is_depthwise(const ConvParams& p) { return p.groups == p.C && p.groups > 1 && p.C_per_group() == 1; }

template <typename T>
void depthwise_forward_nchw(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void depthwise_backward_input_nchw(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void depthwise_backward_weight_nchw(const ConvParams& p, const T* x, const T* gy, T* gw);

// 3x3, padding 1, stride 1 or 2, NCHW, float32 on AVX-512: input rows in vector registers, 16 output
// columns at a time (conv_depthwise_nchw_3x3.cpp). Called by depthwise_forward_nchw, and for stride 1 by
// depthwise_backward_input_nchw.
bool depthwise_3x3_registers_applies(const ConvParams& p, int64_t elem_size);
#if defined(__AVX512F__)
void depthwise_forward_nchw_3x3(const ConvParams& p, const float* x, const float* w, const float* bias, float* y);
void depthwise_backward_input_nchw_3x3(const ConvParams& p, const float* gy, const float* w, float* gx);
#endif

// Square 3x3 / 5x5 / 7x7 kernels, stride 1 or 2, zero padding below the kernel size, one output channel per
// input channel, NCHW, float32 on AVX-512, where the 3x3 kernel above does not apply: 16-column strips with
// masked loads (conv_depthwise_nchw_strips.cpp). Called by depthwise_forward_nchw (and so by the stride-1 input
// gradient, a forward with the kernel flipped).
bool depthwise_strips_applies(const ConvParams& p, int64_t elem_size);
#if defined(__AVX512F__)
void depthwise_forward_nchw_strips(const ConvParams& p, const float* x, const float* w, const float* bias, float* y);
#endif

template <typename T>
void depthwise_forward_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void depthwise_backward_input_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void depthwise_backward_weight_nhwc(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
