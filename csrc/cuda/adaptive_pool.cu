// CUDA adaptive average / max pooling. Output o of an axis of input size `in` and output size `out`
// pools input [floor(o*in/out), ceil((o+1)*in/out)) (torch's windows). Forward: one thread per output;
// average backward: one thread per input, gathering the windows that hold it (no atomics). The max
// backward and its adjoint are pool_scatter / pool_gather (pool.cu).
#include <limits>

#include "pool_index.cuh"
#include "pool_kernels.cuh"

namespace fastconv {
namespace cuda {
namespace {

__device__ __forceinline__ int64_t win_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
__device__ __forceinline__ int64_t win_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

// Outputs [lo, hi] whose windows hold input i: start(o) <= i  <=>  o <= ((i+1)*out - 1) / in, and
// end(o) > i  <=>  o >= floor(i*out / in).
__device__ __forceinline__ void outputs_holding(int64_t i, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = (i * out) / in;
  hi = ((i + 1) * out - 1) / in;
  if (hi > out - 1) hi = out - 1;
}

template <typename T>
__global__ void adaptive_avg_forward_kernel(AdaptivePoolParams p, const T* __restrict__ x, T* __restrict__ y,
                                            int64_t total) {
  using A = acc_t<T>;
  const int64_t pix_stride = p.layout == Layout::NCHW ? 1 : p.C;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.C, p.OH, p.OW, p.layout);
    const int64_t hs = win_start(o.h, p.H, p.OH), he = win_end(o.h, p.H, p.OH);
    const int64_t ws = win_start(o.w, p.W, p.OW), we = win_end(o.w, p.W, p.OW);
    const T* xp = x + offset4(o.n, o.c, 0, 0, p.C, p.H, p.W, p.layout);
    A sum = A(0);
    for (int64_t ih = hs; ih < he; ++ih)
      for (int64_t iw = ws; iw < we; ++iw) sum += to_acc(xp[(ih * p.W + iw) * pix_stride]);
    y[i] = from_acc<T>(sum / A(he - hs) / A(we - ws));
  }
}

template <typename T>
__global__ void adaptive_avg_backward_kernel(AdaptivePoolParams p, const T* __restrict__ gy, T* __restrict__ gx,
                                             int64_t total) {
  using A = acc_t<T>;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 q = decode(i, p.C, p.H, p.W, p.layout);
    int64_t oh0, oh1, ow0, ow1;
    outputs_holding(q.h, p.H, p.OH, oh0, oh1);
    outputs_holding(q.w, p.W, p.OW, ow0, ow1);
    A acc = A(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const int64_t hs = win_start(oh, p.H, p.OH), he = win_end(oh, p.H, p.OH);
      if (q.h < hs || q.h >= he) continue;  // defensive: the range above is exact
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t ws = win_start(ow, p.W, p.OW), we = win_end(ow, p.W, p.OW);
        if (q.w < ws || q.w >= we) continue;
        acc += to_acc(gy[offset4(q.n, q.c, oh, ow, p.C, p.OH, p.OW, p.layout)]) / A(he - hs) / A(we - ws);
      }
    }
    gx[i] = from_acc<T>(acc);
  }
}

template <typename T>
__global__ void adaptive_max_forward_kernel(AdaptivePoolParams p, const T* __restrict__ x, T* __restrict__ y,
                                            int64_t* __restrict__ ind, int64_t total) {
  using A = acc_t<T>;
  const int64_t pix_stride = p.layout == Layout::NCHW ? 1 : p.C;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.C, p.OH, p.OW, p.layout);
    const int64_t hs = win_start(o.h, p.H, p.OH), he = win_end(o.h, p.H, p.OH);
    const int64_t ws = win_start(o.w, p.W, p.OW), we = win_end(o.w, p.W, p.OW);
    const T* xp = x + offset4(o.n, o.c, 0, 0, p.C, p.H, p.W, p.layout);
    A m = -std::numeric_limits<A>::infinity();
    int64_t mi = hs * p.W + ws;
    for (int64_t ih = hs; ih < he; ++ih)
      for (int64_t iw = ws; iw < we; ++iw) {
        const A v = to_acc(xp[(ih * p.W + iw) * pix_stride]);
        if (takes_max(v, m)) {
          m = v;
          mi = ih * p.W + iw;
        }
      }
    y[i] = from_acc<T>(m);
    ind[i] = mi;
  }
}

}  // namespace

template <typename T>
void adaptive_avg_pool_forward(const AdaptivePoolParams& p, const T* x, T* y, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.OH * p.OW;
  if (total == 0) return;
  adaptive_avg_forward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, x, y, total);
  FASTCONV_CHECK_LAUNCH("adaptive_avg_pool_forward");
}

template <typename T>
void adaptive_avg_pool_backward(const AdaptivePoolParams& p, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.H * p.W;
  if (total == 0) return;
  adaptive_avg_backward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, gy, gx, total);
  FASTCONV_CHECK_LAUNCH("adaptive_avg_pool_backward");
}

template <typename T>
void adaptive_max_pool_forward(const AdaptivePoolParams& p, const T* x, T* y, int64_t* ind, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.OH * p.OW;
  if (total == 0) return;
  adaptive_max_forward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, x, y, ind, total);
  FASTCONV_CHECK_LAUNCH("adaptive_max_pool_forward");
}

#define FASTCONV_INSTANTIATE(T)                                                                                 \
  template void adaptive_avg_pool_forward<T>(const AdaptivePoolParams&, const T*, T*, cudaStream_t);            \
  template void adaptive_avg_pool_backward<T>(const AdaptivePoolParams&, const T*, T*, cudaStream_t);           \
  template void adaptive_max_pool_forward<T>(const AdaptivePoolParams&, const T*, T*, int64_t*, cudaStream_t);
FASTCONV_CUDA_FOR_EACH_TYPE(FASTCONV_INSTANTIATE)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
