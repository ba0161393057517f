// Tensor-core implicit-GEMM convolution forward for float16 / bfloat16 (WMMA 16x16x16, float accumulation).
// GEMM view per group g: rows m = (n, oh, ow), columns k = output channel of the group, reduction index
// kk = (r * S + s) * Cg + c (channels innermost: contiguous loads in NHWC). Operands are gathered
// straight from x / w with the same remap_index logic as the direct kernel, so every stride, padding
// (mode), dilation and group count is handled; zero fill covers the tile edges.
#pragma once

#include <cuda_runtime.h>

#include "../common/conv_params.h"
#include "conv_kernels.cuh"

namespace fastconv {
namespace cuda {

// Runs the tensor-core forward and returns true when it applies (T is __half / __nv_bfloat16, NHWC, a
// device of compute capability >= 8.0, shapes that fill the tiles reasonably); returns false (nothing
// enqueued) otherwise, and the caller uses the direct kernel.
template <typename T>
bool implicit_gemm_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, const ConvOptions& opt,
                           cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
