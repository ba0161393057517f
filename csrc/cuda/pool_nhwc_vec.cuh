// Channels_last pooling kernels over 16-byte channel vectors (pool_nhwc_vec.cu). pool.cu's launchers call them
// when pool_nhwc_vec_applies: NHWC, C a multiple of the vector width, both tensors 16-byte aligned.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../common/pool_params.h"
#include "cuda_common.cuh"

namespace fastconv {
namespace cuda {

template <typename T>
bool pool_nhwc_vec_applies(const PoolParams& p, const void* a, const void* b);
template <typename T>
void max_pool_forward_nhwc_vec(const PoolParams& p, const T* x, T* y, int64_t* ind, cudaStream_t stream);
template <typename T>
void avg_pool_forward_nhwc_vec(const PoolParams& p, const T* x, T* y, cudaStream_t stream);
template <typename T>
void avg_pool_backward_nhwc_vec(const PoolParams& p, const T* gy, T* gx, cudaStream_t stream);
template <typename T>
void max_pool_backward_nhwc_vec(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, int64_t* bad,
                                cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
