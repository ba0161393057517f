// Dilated convolutions as ordinary ones on subgrids ("space to batch"). With stride 1, dilation (dh, dw)
// and zero padding that is a multiple of the dilation, the outputs at rows i mod dh and columns j mod dw read
// only the inputs at rows i mod dh and columns j mod dw: each of the dh*dw subgrids of an image is an
// undilated convolution of its own, with the same weight and padding / dilation. The activations are
// regrouped into N*dh*dw subgrid images, the pass runs undilated (where the Winograd kernels apply), and an
// activation result is regrouped back; the weight gradient sums over the subgrid images by itself.
// Used only where the undilated pass takes Winograd (otherwise im2col + GEMM does the same work dilated).
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"
#include "conv_layout_switch.h"  // ConvPass

namespace fastconv {
namespace cpu {

// Whether `pass` of p runs as subgrid convolutions.
bool use_subgrids(const ConvParams& p, ConvPass pass, int64_t elem_size);

template <typename T>
void conv_forward_subgrids(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv_backward_input_subgrids(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void conv_backward_weight_subgrids(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
