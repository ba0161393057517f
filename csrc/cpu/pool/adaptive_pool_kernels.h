// CPU adaptive average / max pooling kernels (torch-free). Activations are dense (N, C, H, W) in
// p.layout (NCHW or NHWC); indices are int64 positions ih * W + iw inside each (n, c) input plane and
// share the output's layout. Every entry point writes (never accumulates into) its output.
#pragma once

#include <cstdint>

#include "../../common/adaptive_pool_params.h"

namespace fastconv {
namespace cpu {

// y[n, c, oh, ow] = mean of x over the window of (oh, ow).
template <typename T>
void adaptive_avg_pool_forward(const AdaptivePoolParams& p, const T* x, T* y);

// gx = adjoint of the forward: every input element receives gy / window area of each window holding it.
template <typename T>
void adaptive_avg_pool_backward(const AdaptivePoolParams& p, const T* gy, T* gx);

// y = window max, idx = its position; NaN wins (the last NaN in scan order), ties keep the first (torch's rule).
template <typename T>
void adaptive_max_pool_forward(const AdaptivePoolParams& p, const T* x, T* y, int64_t* idx);

// gx = zeros, then gx[n, c, idx[n, c, o]] += gy[n, c, o]. Returns false (gx unspecified) if an index is
// outside [0, H * W).
template <typename T>
bool adaptive_max_pool_backward(const AdaptivePoolParams& p, const T* gy, const int64_t* idx, T* gx);

// y[n, c, o] = x[n, c, idx[n, c, o]]: the adjoint of the backward's scatter. Returns false on a bad index.
template <typename T>
bool adaptive_max_pool_gather(const AdaptivePoolParams& p, const T* x, const int64_t* idx, T* y);

}  // namespace cpu
}  // namespace fastconv
