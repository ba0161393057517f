// Adds a per-channel bias to a dense (N, C, H, W) activation in place (torch-free).
// Used by ops whose main kernel has no bias epilogue (transposed convolution runs conv_backward_input).
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// y[n, c, h, w] += bias[c] for a dense tensor in `layout`; hw = H * W.
template <typename T>
void bias_add(int64_t N, int64_t C, int64_t hw, Layout layout, const T* bias, T* y, int num_threads);

}  // namespace cpu
}  // namespace fastconv
