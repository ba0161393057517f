// Weight gradient with output channels across the vector lanes for layers with many input channels (5x5, 4x4 and
// strided kernels with 24-512 channels per group), no column matrix: conv_many_channel_weight.cpp.
// conv_dispatch.cpp decides when it is used.
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// Whether conv_backward_weight_many_channels runs on p (elements of elem_size bytes) and is expected to beat the
// other paths. Any stride, padding mode, group count, height dilation and layout is correct; width dilation 1 and
// output channels per group in whole vectors.
bool use_many_channel_weight(const ConvParams& p, int64_t elem_size);

// gw (K, Cg, R, S) = the weight gradient, for p with a non-empty output that use_many_channel_weight accepts.
template <typename T>
void conv_backward_weight_many_channels(const ConvParams& p, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
