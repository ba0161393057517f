// CUDA max / avg pooling, the index scatter (max pool backward, max unpool) and gather. One thread per
// element of the side that is written, elements in memory order (NHWC: neighbouring threads take
// neighbouring channels, so loads and stores coalesce); channels_last tensors whose channels fill 16-byte
// vectors take pool_nhwc_vec.cu's kernels instead. Every kernel but the atomic scatter is a gather.
#include <limits>

#include "pool_index.cuh"
#include "pool_kernels.cuh"
#include "pool_nhwc_vec.cuh"

namespace fastconv {
namespace cuda {
namespace {

template <typename T>
__global__ void max_pool_forward_kernel(PoolParams p, const T* __restrict__ x, T* __restrict__ y,
                                        int64_t* __restrict__ ind, int64_t total) {
  using A = acc_t<T>;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.C, p.OH, p.OW, p.layout);
    const Span hs = max_span(o.h, p.H, p.kh, p.sh, p.ph, p.dh);
    const Span ws = max_span(o.w, p.W, p.kw, p.sw, p.pw, p.dw);
    const T* xp = x + offset4(o.n, o.c, 0, 0, p.C, p.H, p.W, p.layout);
    const int64_t pix_stride = p.layout == Layout::NCHW ? 1 : p.C;
    A m = -std::numeric_limits<A>::infinity();
    // no tap inside the input (dilation only): -inf and kEmptyWindowIndex, which the backward skips
    int64_t mi = (hs.begin < hs.end && ws.begin < ws.end) ? hs.begin * p.W + ws.begin : kEmptyWindowIndex;
    for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
      for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
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

// Offset, in the un-pooled tensor, of plane position idx of (n, c).
__device__ __forceinline__ int64_t plane_offset(const PoolParams& p, int64_t n, int64_t c, int64_t idx) {
  return offset4(n, c, idx / p.W, idx % p.W, p.C, p.H, p.W, p.layout);
}

// One thread per source element. D is T (float/double: native atomicAdd) or float (half/bfloat16
// accumulate into a float workspace).
template <typename T, typename D>
__global__ void scatter_atomic_kernel(PoolParams p, const T* __restrict__ src, const int64_t* __restrict__ ind,
                                      D* __restrict__ dst, bool accumulate, int64_t* bad, int64_t total) {
  const int64_t HW = p.H * p.W;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.C, p.OH, p.OW, p.layout);
    const int64_t idx = ind[i];
    if (idx < 0 || idx >= HW) {
      if (!(accumulate && idx == kEmptyWindowIndex)) record_bad_index(bad, idx);
      continue;
    }
    D* d = dst + plane_offset(p, o.n, o.c, idx);
    if (accumulate)
      atomicAdd(d, from_acc<D>(to_acc(src[i])));
    else
      *d = from_acc<D>(to_acc(src[i]));
  }
}

// One thread per (n, c) plane, sources in scan order: a fixed summation order, the last duplicate wins.
template <typename T, typename D>
__global__ void scatter_plane_kernel(PoolParams p, const T* __restrict__ src, const int64_t* __restrict__ ind,
                                     D* __restrict__ dst, bool accumulate, int64_t* bad, int64_t planes) {
  const int64_t HW = p.H * p.W;
  FASTCONV_GRID_STRIDE(pl, planes) {
    const int64_t n = pl / p.C, c = pl % p.C;
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t s = offset4(n, c, oh, ow, p.C, p.OH, p.OW, p.layout);
        const int64_t idx = ind[s];
        if (idx < 0 || idx >= HW) {
          if (!(accumulate && idx == kEmptyWindowIndex)) record_bad_index(bad, idx);
          continue;
        }
        D* d = dst + plane_offset(p, n, c, idx);
        if (accumulate)
          *d = from_acc<D>(to_acc(*d) + to_acc(src[s]));
        else
          *d = from_acc<D>(to_acc(src[s]));
      }
  }
}

template <typename T>
__global__ void float_to_kernel(const float* __restrict__ src, T* __restrict__ dst, int64_t total) {
  FASTCONV_GRID_STRIDE(i, total) dst[i] = from_acc<T>(src[i]);
}

template <typename T>
__global__ void gather_kernel(PoolParams p, const T* __restrict__ x, const int64_t* __restrict__ ind,
                              T* __restrict__ y, int64_t* bad, int64_t total) {
  const int64_t HW = p.H * p.W;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.C, p.OH, p.OW, p.layout);
    const int64_t idx = ind[i];
    if (idx < 0 || idx >= HW) {
      if (idx != kEmptyWindowIndex) record_bad_index(bad, idx);
      y[i] = from_acc<T>(acc_t<T>(0));
      continue;
    }
    y[i] = x[plane_offset(p, o.n, o.c, idx)];
  }
}

template <typename T>
__global__ void avg_pool_forward_kernel(PoolParams p, const T* __restrict__ x, T* __restrict__ y, int64_t total) {
  using A = acc_t<T>;
  const int64_t pix_stride = p.layout == Layout::NCHW ? 1 : p.C;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.C, p.OH, p.OW, p.layout);
    const AvgSpan hs = avg_span(o.h, p.H, p.kh, p.sh, p.ph);
    const AvgSpan ws = avg_span(o.w, p.W, p.kw, p.sw, p.pw);
    if (hs.begin >= hs.end || ws.begin >= ws.end) {
      y[i] = from_acc<T>(A(0));
      continue;
    }
    const T* xp = x + offset4(o.n, o.c, 0, 0, p.C, p.H, p.W, p.layout);
    A sum = A(0);
    for (int64_t ih = hs.begin; ih < hs.end; ++ih)
      for (int64_t iw = ws.begin; iw < ws.end; ++iw) sum += to_acc(xp[(ih * p.W + iw) * pix_stride]);
    y[i] = from_acc<T>(sum / A(avg_divisor(p, hs, ws)));
  }
}

template <typename T>
__global__ void avg_pool_backward_kernel(PoolParams p, const T* __restrict__ gy, T* __restrict__ gx, int64_t total) {
  using A = acc_t<T>;
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 q = decode(i, p.C, p.H, p.W, p.layout);
    int64_t oh0, oh1, ow0, ow1;
    windows_holding(q.h, p.kh, p.sh, p.ph, p.OH, oh0, oh1);
    windows_holding(q.w, p.kw, p.sw, p.pw, p.OW, ow0, ow1);
    A acc = A(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const AvgSpan hs = avg_span(oh, p.H, p.kh, p.sh, p.ph);
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const AvgSpan ws = avg_span(ow, p.W, p.kw, p.sw, p.pw);
        acc += to_acc(gy[offset4(q.n, q.c, oh, ow, p.C, p.OH, p.OW, p.layout)]) / A(avg_divisor(p, hs, ws));
      }
    }
    gx[i] = from_acc<T>(acc);
  }
}

// Max-pool backward as a gather: input (n, c, h, w) adds gy at every output whose window holds (h, w) through a
// tap (oh * sh - ph + i * dh == h) and whose index is h * W + w. No atomics (deterministic by construction), no
// float workspace for half types, and each gx element is written once. Indices are checked as they are read (an
// index outside the plane stops the kernel); a valid index outside its own window is not followed, as torch's
// CUDA max-pool backward does the same gather.
template <typename T>
__global__ void max_pool_backward_gather_kernel(PoolParams p, const T* __restrict__ gy,
                                                const int64_t* __restrict__ ind, T* __restrict__ gx, int64_t* bad,
                                                int64_t total) {
  using A = acc_t<T>;
  const int64_t plane = p.H * p.W;
  FASTCONV_GRID_STRIDE(e, total) {
    const Coord4 q = decode(e, p.C, p.H, p.W, p.layout);
    const int64_t self = q.h * p.W + q.w;
    A acc = A(0);
    for_each_window_holding(p, q.h, q.w, [&](int64_t oh, int64_t ow) {
      const int64_t o = offset4(q.n, q.c, oh, ow, p.C, p.OH, p.OW, p.layout);
      const int64_t k = ind[o];
      if (k == self) acc += to_acc(gy[o]);
      else if ((k < 0 && k != kEmptyWindowIndex) || k >= plane) record_bad_index(bad, k);
    });
    gx[e] = from_acc<T>(acc);
  }
}

template <typename T, typename D>
void launch_scatter(const PoolParams& p, const T* gy, const int64_t* ind, D* dst, bool accumulate, bool deterministic,
                    int64_t* bad, cudaStream_t stream) {
  if (deterministic) {
    const int64_t planes = p.N * p.C;
    scatter_plane_kernel<T, D><<<grid_for(planes, 128), 128, 0, stream>>>(p, gy, ind, dst, accumulate, bad, planes);
  } else {
    const int64_t total = p.N * p.C * p.OH * p.OW;
    scatter_atomic_kernel<T, D><<<grid_for(total), kThreads, 0, stream>>>(p, gy, ind, dst, accumulate, bad, total);
  }
  FASTCONV_CHECK_LAUNCH("pool_scatter");
}

template <typename T>
constexpr bool needs_float_workspace() {
  return sizeof(T) == 2;
}

}  // namespace

template <typename T>
void max_pool_forward(const PoolParams& p, const T* x, T* y, int64_t* ind, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.OH * p.OW;
  if (total == 0) return;
  if (pool_nhwc_vec_applies<T>(p, x, y)) return max_pool_forward_nhwc_vec<T>(p, x, y, ind, stream);
  max_pool_forward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, x, y, ind, total);
  FASTCONV_CHECK_LAUNCH("max_pool_forward");
}

template <typename T>
size_t pool_scatter_workspace_bytes(const PoolParams& p, bool accumulate) {
  if (!needs_float_workspace<T>() || !accumulate) return 0;
  return static_cast<size_t>(p.N * p.C * p.H * p.W) * sizeof(float);
}

template <typename T>
void pool_scatter(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, bool accumulate, bool deterministic,
                  void* workspace, int64_t* bad, cudaStream_t stream) {
  // With an empty plane (H*W == 0) the scatter still runs: every index is out of range and gets reported.
  const int64_t out = p.N * p.C * p.H * p.W;
  const bool has_src = p.N * p.C * p.OH * p.OW > 0;
  if (needs_float_workspace<T>() && accumulate && out > 0) {
    float* ws = static_cast<float*>(workspace);
    check_cuda(cudaMemsetAsync(ws, 0, static_cast<size_t>(out) * sizeof(float), stream), "pool_scatter memset");
    if (has_src) launch_scatter<T, float>(p, gy, ind, ws, true, deterministic, bad, stream);
    float_to_kernel<T><<<grid_for(out), kThreads, 0, stream>>>(ws, gx, out);
    FASTCONV_CHECK_LAUNCH("pool_scatter convert");
    return;
  }
  if (out > 0) check_cuda(cudaMemsetAsync(gx, 0, static_cast<size_t>(out) * sizeof(T), stream), "pool_scatter memset");
  if (has_src) launch_scatter<T, T>(p, gy, ind, gx, accumulate, deterministic, bad, stream);
}

template <typename T>
void max_pool_backward(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, int64_t* bad,
                       cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.H * p.W;
  if (total == 0) return;
  if (pool_nhwc_vec_applies<T>(p, gy, gx)) return max_pool_backward_nhwc_vec<T>(p, gy, ind, gx, bad, stream);
  max_pool_backward_gather_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, gy, ind, gx, bad, total);
  FASTCONV_CHECK_LAUNCH("max_pool_backward");
}

template <typename T>
void pool_gather(const PoolParams& p, const T* x, const int64_t* ind, T* y, int64_t* bad, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.OH * p.OW;
  if (total == 0) return;
  gather_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, x, ind, y, bad, total);
  FASTCONV_CHECK_LAUNCH("pool_gather");
}

template <typename T>
void avg_pool_forward(const PoolParams& p, const T* x, T* y, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.OH * p.OW;
  if (total == 0) return;
  if (pool_nhwc_vec_applies<T>(p, x, y)) return avg_pool_forward_nhwc_vec<T>(p, x, y, stream);
  avg_pool_forward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, x, y, total);
  FASTCONV_CHECK_LAUNCH("avg_pool_forward");
}

template <typename T>
void avg_pool_backward(const PoolParams& p, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.H * p.W;
  if (total == 0) return;
  if (pool_nhwc_vec_applies<T>(p, gy, gx)) return avg_pool_backward_nhwc_vec<T>(p, gy, gx, stream);
  avg_pool_backward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, gy, gx, total);
  FASTCONV_CHECK_LAUNCH("avg_pool_backward");
}

#define FASTCONV_INSTANTIATE(T)                                                                               \
  template void max_pool_forward<T>(const PoolParams&, const T*, T*, int64_t*, cudaStream_t);                 \
  template size_t pool_scatter_workspace_bytes<T>(const PoolParams&, bool);                                   \
  template void pool_scatter<T>(const PoolParams&, const T*, const int64_t*, T*, bool, bool, void*, int64_t*, \
                                cudaStream_t);                                                                \
  template void pool_gather<T>(const PoolParams&, const T*, const int64_t*, T*, int64_t*, cudaStream_t);      \
  template void max_pool_backward<T>(const PoolParams&, const T*, const int64_t*, T*, int64_t*, cudaStream_t); \
  template void avg_pool_forward<T>(const PoolParams&, const T*, T*, cudaStream_t);                           \
  template void avg_pool_backward<T>(const PoolParams&, const T*, T*, cudaStream_t);
FASTCONV_CUDA_FOR_EACH_TYPE(FASTCONV_INSTANTIATE)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
