// The input gradient of a convolution whose kernel tiles its input (kernel == stride, no padding): one GEMM
// and a copy of its rows into the gradient's patches (conv_patch_input.cpp).
#pragma once

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// channels_last, one group, R == stride_h and S == stride_w (not both 1), undilated, unpadded, the patches
// inside the input.
bool use_patch_backward_input(const ConvParams& p);

// bias (null: none): added per channel of gx, in the GEMM's epilogue and to the rows and columns no patch reaches
// (a transposed convolution's output_padding).
template <typename T>
void conv_backward_input_patches(const ConvParams& p, const T* gy, const T* w, T* gx, const T* bias = nullptr);

}  // namespace cpu
}  // namespace fastconv
