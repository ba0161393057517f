// CUDA pooling launchers (torch-free). Same contract as csrc/cpu/pool/pool_kernels.h and adaptive_pool_kernels.h:
// activations dense in p.layout, int64 indices ih * W + iw inside each (n, c) plane of the un-pooled
// (H, W) side, outputs written (never accumulated into). Device pointers; work enqueued on `stream`; a
// failed launch throws CudaError. T is float, double, __half or __nv_bfloat16.
//
// Index checks: kernels that consume indices never read or write through an index outside [0, H*W); they
// record the first such index they meet in `bad` (a device int64[2] the caller zero-fills: bad[0] = 1 when
// one was found, bad[1] = its value) for the caller to read back, or, with bad == nullptr (the ATen bindings:
// no stream synchronisation, CUDA-graph safe), stop with a device-side assertion.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "../common/adaptive_pool_params.h"
#include "../common/pool_params.h"

namespace fastconv {
namespace cuda {

// y, ind: (N, C, OH, OW). torch's rule: scan rows then columns, take v when v > max or v is NaN.
template <typename T>
void max_pool_forward(const PoolParams& p, const T* x, T* y, int64_t* ind, cudaStream_t stream);

// Bytes of device workspace pool_scatter needs (float accumulation of half/bfloat16 scatter-adds).
template <typename T>
size_t pool_scatter_workspace_bytes(const PoolParams& p, bool accumulate);

// gx (N, C, H, W) = scatter of gy (N, C, OH, OW) at ind: added (max pool backward) or assigned (max
// unpool). deterministic == false: one thread per source element with atomics (assign: racing duplicates
// keep one of their values); deterministic == true: one thread per (n, c) plane in scan order (the CPU's
// order: sums in a fixed order, the last duplicate wins).
template <typename T>
void pool_scatter(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, bool accumulate, bool deterministic,
                  void* workspace, int64_t* bad, cudaStream_t stream);

// Max-pool backward with its window (p's kh..dw): gx (N, C, H, W) = the sum of gy over the outputs whose window
// holds each input and whose index names it; a gather (deterministic, no atomics, no workspace). The
// window-less op, whose indices may point anywhere in the plane, is pool_scatter.
template <typename T>
void max_pool_backward(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, int64_t* bad,
                       cudaStream_t stream);

// y (N, C, OH, OW) = x (N, C, H, W) gathered at ind.
template <typename T>
void pool_gather(const PoolParams& p, const T* x, const int64_t* ind, T* y, int64_t* bad, cudaStream_t stream);

// Average pooling (divisor as torch: divisor_override, else the window clipped to the padded input or,
// without count_include_pad, to the input) and its adjoint, as a gather over the windows holding each input.
template <typename T>
void avg_pool_forward(const PoolParams& p, const T* x, T* y, cudaStream_t stream);
template <typename T>
void avg_pool_backward(const PoolParams& p, const T* gy, T* gx, cudaStream_t stream);

// Adaptive pooling (windows [floor(o*in/out), ceil((o+1)*in/out))). The max backward and its gather are
// pool_scatter / pool_gather with a PoolParams holding N, C, H, W, OH, OW and layout.
template <typename T>
void adaptive_avg_pool_forward(const AdaptivePoolParams& p, const T* x, T* y, cudaStream_t stream);
template <typename T>
void adaptive_avg_pool_backward(const AdaptivePoolParams& p, const T* gy, T* gx, cudaStream_t stream);
template <typename T>
void adaptive_max_pool_forward(const AdaptivePoolParams& p, const T* x, T* y, int64_t* ind, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
