// Convolutions whose kernel covers the whole unpadded input (LeNet-5's C5, a classifier written as a
// convolution): the output is 1x1, every image is one row of the column matrix stored as the image
// itself, so each pass is ONE GEMM over the batch instead of N GEMMs with a single output column:
//   forward  y[N, K] = x[N, CRS] x W^T      grad input  gx[N, CRS] = gy[N, K] x W
//   grad weight gw[K, CRS] = gy^T x x
// CRS is (c, r, s) in NCHW and (r, s, c) in NHWC (the weight is then repacked to (K, R, S, C)).
#pragma once

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

bool is_whole_input_kernel(const ConvParams& p);

template <typename T>
void whole_input_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void whole_input_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void whole_input_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
