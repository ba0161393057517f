// CPU convolution kernels (torch-free). Activations are dense in p.layout (NCHW or NHWC); the weight is
// dense (K, C/groups, R, S); bias may be null. Every entry point writes (never accumulates into) its output.
#pragma once

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// y = conv(x, w) + bias; y has (N, K, OH, OW) in p.layout.
template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

// gx = d(sum(gy * conv(x, w)))/dx: the adjoint of conv_forward in x, padding modes folded back.
template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx);

// y = the transposed convolution of x (p's grad_output shape; y has p's input shape) + bias per channel of y: the
// input gradient of p with the bias fused where the path allows (conv_patch_input.cpp), added after it otherwise.
template <typename T>
void conv_transpose_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

// gw = d(sum(gy * conv(x, w)))/dw.
template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw);

// gb[k] = sum over n, oh, ow of gy.
template <typename T>
void conv_backward_bias(const ConvParams& p, const T* gy, T* gb);

// Direct (loop-nest) implementations: correct for every parameter combination; the fast paths above
// fall back to them for shapes they do not cover.
template <typename T>
void conv_forward_direct(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv_backward_input_direct(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void conv_backward_weight_direct(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
