// Depthwise convolution (groups == C, one input channel per group, K = C * multiplier): each output
// channel k reads input channel k / multiplier. Too little work per group for a GEMM, so these kernels
// vectorise over the W axis (NCHW, on a padded copy of one input plane in a per-thread buffer) or over
// channels (NHWC).
#pragma once

#include "../common/conv_params.h"

namespace fastconv {
namespace cpu {

inline bool is_depthwise(const ConvParams& p) { return p.groups == p.C && p.groups > 1 && p.C_per_group() == 1; }

template <typename T>
void depthwise_forward_nchw(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void depthwise_backward_input_nchw(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void depthwise_backward_weight_nchw(const ConvParams& p, const T* x, const T* gy, T* gw);

template <typename T>
void depthwise_forward_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void depthwise_backward_input_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void depthwise_backward_weight_nhwc(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
