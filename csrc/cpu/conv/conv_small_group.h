// Grouped convolution with a few channels per group (ResNeXt's and RegNet's 3x3 layers: 32 groups of 4, 8 or 16
// channels in and out): a direct convolution with the output channels of several groups across the vector lanes, on
// channels_last data (NCHW rows are transposed on the way in and out, inside the kernels). The GEMM paths run one
// tiny GEMM per group (a 4x36 weight), and the dense micro-kernel would spend most of its multiplies on the zeros
// between groups.
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// Whether the kernels below take this forward (either layout): AVX-512, zero padding, as many output as input
// channels per group, 2 to one vector of them (16 floats, 8 doubles) dividing the vector, a kernel 3 wide
// undilated along the width, stride 1 or 2 along it (any kernel height, row stride and row dilation).
bool small_group_forward_applies(const ConvParams& p, int64_t elem_size);
// The input gradient (the forward's conditions; conv_small_group_input.cpp).
bool small_group_backward_input_applies(const ConvParams& p, int64_t elem_size);
// The weight gradient (the forward's conditions).
bool small_group_backward_weight_applies(const ConvParams& p, int64_t elem_size);

template <typename T>
void small_group_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void small_group_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void small_group_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
