// The fixed-order reduction of split-K weight-gradient partials (the tensor-core weight gradient and the
// depthwise one): out[(k * C + c) * RS + rs] = sum over slices s = 0, 1, ... of partial[s][k][rs][c]. Summing
// the slices in index order makes the weight gradients deterministic without atomics.
#pragma once

#include "cuda_common.cuh"

namespace fastconv {
namespace cuda {

// One thread per weight element in the partials' order: every slice's reads coalesce; the one write scatters.
// Internal linkage (with its launcher): each including .cu file (the tensor-core and depthwise weight gradients)
// has its own copy, so no kernel instantiation is shared between translation units.
namespace {
template <typename P, typename T>
__global__ void split_reduce_kernel(const P* __restrict__ partial, T* __restrict__ out, int64_t K, int64_t RS,
                                    int64_t C, int slices) {
  const int64_t total = K * RS * C;
  FASTCONV_GRID_STRIDE(i, total) {
    P acc = P(0);
    for (int s = 0; s < slices; ++s) acc += partial[s * total + i];
    const int64_t c = i % C, rs = (i / C) % RS, k = i / (C * RS);
    out[(k * C + c) * RS + rs] = from_acc<T>(acc);
  }
}

template <typename P, typename T>
void split_reduce(const P* partial, T* out, int64_t K, int64_t RS, int64_t C, int slices, cudaStream_t stream) {
  const int64_t total = K * RS * C;
  split_reduce_kernel<P, T><<<grid_for(total), kThreads, 0, stream>>>(partial, out, K, RS, C, slices);
  FASTCONV_CHECK_LAUNCH("split-K reduction");
}
}  // namespace

}  // namespace cuda
}  // namespace fastconv
