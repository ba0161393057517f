// Channels_last pooling with 16-byte channel vectors: one thread per (pixel, V channels) instead of one per element,
// so the int64 decode of a thread's position and the window arithmetic are paid once per V channels (8 for 16-bit
// types) and loads and stores are 128-bit. Pooling is memory-bound only once this per-element overhead is gone.
// Same rules as pool.cu's element kernels (torch's NaN and first-maximum rule, divisors, the empty-window index).
#include <limits>

#include "pool_index.cuh"
#include "pool_nhwc_vec.cuh"

namespace fastconv {
namespace cuda {
namespace {

// Thread i: channel vector i % (C / V) of pixel i / (C / V) (n, h, w in a (N, H, W) grid).
struct PixelVec {
  int64_t n, h, w, c0, pixel;
};
__device__ __forceinline__ PixelVec decode_vec(int64_t i, int64_t CV, int64_t H, int64_t W, int V) {
  PixelVec r;
  r.c0 = (i % CV) * V;
  r.pixel = i / CV;
  r.w = r.pixel % W;
  const int64_t t = r.pixel / W;
  r.h = t % H;
  r.n = t / H;
  return r;
}

template <typename T, int V>
__global__ void max_pool_forward_vec_kernel(PoolParams p, const T* __restrict__ x, T* __restrict__ y,
                                            int64_t* __restrict__ ind, int64_t total) {
  using A = acc_t<T>;
  const int64_t CV = p.C / V;
  FASTCONV_GRID_STRIDE(i, total) {
    const PixelVec o = decode_vec(i, CV, p.OH, p.OW, V);
    const Span hs = max_span(o.h, p.H, p.kh, p.sh, p.ph, p.dh);
    const Span ws = max_span(o.w, p.W, p.kw, p.sw, p.pw, p.dw);
    const T* xp = x + o.n * p.H * p.W * p.C + o.c0;
    A m[V];
    int64_t mi[V];
    const int64_t first = (hs.begin < hs.end && ws.begin < ws.end) ? hs.begin * p.W + ws.begin : kEmptyWindowIndex;
#pragma unroll
    for (int v = 0; v < V; ++v) {
      m[v] = -std::numeric_limits<A>::infinity();
      mi[v] = first;
    }
    for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
      for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
        const Vec<T, V> q = load_vec<T, V>(xp + (ih * p.W + iw) * p.C);
#pragma unroll
        for (int v = 0; v < V; ++v) {
          const A a = to_acc(q.v[v]);
          if (takes_max(a, m[v])) {
            m[v] = a;
            mi[v] = ih * p.W + iw;
          }
        }
      }
    Vec<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) out.v[v] = from_acc<T>(m[v]);
    store_vec<T, V>(y + i * V, out);
    int64_t* ip = ind + i * V;
#pragma unroll
    for (int v = 0; v < V; ++v) ip[v] = mi[v];
  }
}

template <typename T, int V>
__global__ void avg_pool_forward_vec_kernel(PoolParams p, const T* __restrict__ x, T* __restrict__ y, int64_t total) {
  using A = acc_t<T>;
  const int64_t CV = p.C / V;
  FASTCONV_GRID_STRIDE(i, total) {
    const PixelVec o = decode_vec(i, CV, p.OH, p.OW, V);
    const AvgSpan hs = avg_span(o.h, p.H, p.kh, p.sh, p.ph);
    const AvgSpan ws = avg_span(o.w, p.W, p.kw, p.sw, p.pw);
    A sum[V];
#pragma unroll
    for (int v = 0; v < V; ++v) sum[v] = A(0);
    const T* xp = x + o.n * p.H * p.W * p.C + o.c0;
    for (int64_t ih = hs.begin; ih < hs.end; ++ih)
      for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
        const Vec<T, V> q = load_vec<T, V>(xp + (ih * p.W + iw) * p.C);
#pragma unroll
        for (int v = 0; v < V; ++v) sum[v] += to_acc(q.v[v]);
      }
    // an empty window (all padding) writes 0, as the element kernel does
    const bool empty = hs.begin >= hs.end || ws.begin >= ws.end;
    const A div = empty ? A(1) : A(avg_divisor(p, hs, ws));
    Vec<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) out.v[v] = from_acc<T>(sum[v] / div);
    store_vec<T, V>(y + i * V, out);
  }
}

template <typename T, int V>
__global__ void avg_pool_backward_vec_kernel(PoolParams p, const T* __restrict__ gy, T* __restrict__ gx,
                                             int64_t total) {
  using A = acc_t<T>;
  const int64_t CV = p.C / V;
  FASTCONV_GRID_STRIDE(i, total) {
    const PixelVec q = decode_vec(i, CV, p.H, p.W, V);
    int64_t oh0, oh1, ow0, ow1;
    windows_holding(q.h, p.kh, p.sh, p.ph, p.OH, oh0, oh1);
    windows_holding(q.w, p.kw, p.sw, p.pw, p.OW, ow0, ow1);
    A acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = A(0);
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const AvgSpan hs = avg_span(oh, p.H, p.kh, p.sh, p.ph);
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const AvgSpan ws = avg_span(ow, p.W, p.kw, p.sw, p.pw);
        const A div = A(avg_divisor(p, hs, ws));
        const Vec<T, V> g = load_vec<T, V>(gy + ((q.n * p.OH + oh) * p.OW + ow) * p.C + q.c0);
#pragma unroll
        for (int v = 0; v < V; ++v) acc[v] += to_acc(g.v[v]) / div;
      }
    }
    Vec<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) out.v[v] = from_acc<T>(acc[v]);
    store_vec<T, V>(gx + i * V, out);
  }
}

// Max-pool backward gather (pool.cu's max_pool_backward_gather_kernel), V channels per thread.
template <typename T, int V>
__global__ void max_pool_backward_vec_kernel(PoolParams p, const T* __restrict__ gy, const int64_t* __restrict__ ind,
                                             T* __restrict__ gx, int64_t* bad, int64_t total) {
  using A = acc_t<T>;
  const int64_t CV = p.C / V, plane = p.H * p.W;
  FASTCONV_GRID_STRIDE(e, total) {
    const PixelVec q = decode_vec(e, CV, p.H, p.W, V);
    const int64_t self = q.h * p.W + q.w;
    A acc[V];
#pragma unroll
    for (int v = 0; v < V; ++v) acc[v] = A(0);
    for_each_window_holding(p, q.h, q.w, [&](int64_t oh, int64_t ow) {
      const int64_t o = ((q.n * p.OH + oh) * p.OW + ow) * p.C + q.c0;
      bool any = false;
      int64_t k[V];
#pragma unroll
      for (int v = 0; v < V; ++v) {
        k[v] = ind[o + v];
        any |= k[v] == self;
        if ((k[v] < 0 && k[v] != kEmptyWindowIndex) || k[v] >= plane) record_bad_index(bad, k[v]);
      }
      if (!any) return;  // the common case: this window's maximum is elsewhere for every channel
      const Vec<T, V> g = load_vec<T, V>(gy + o);
#pragma unroll
      for (int v = 0; v < V; ++v)
        if (k[v] == self) acc[v] += to_acc(g.v[v]);
    });
    Vec<T, V> out;
#pragma unroll
    for (int v = 0; v < V; ++v) out.v[v] = from_acc<T>(acc[v]);
    store_vec<T, V>(gx + e * V, out);
  }
}

}  // namespace

template <typename T>
bool pool_nhwc_vec_applies(const PoolParams& p, const void* a, const void* b) {
  return p.layout == Layout::NHWC && p.C % kVec16<T> == 0 && is_aligned16(a) && is_aligned16(b);
}

template <typename T>
void max_pool_forward_nhwc_vec(const PoolParams& p, const T* x, T* y, int64_t* ind, cudaStream_t stream) {
  const int64_t total = p.N * p.OH * p.OW * (p.C / kVec16<T>);
  max_pool_forward_vec_kernel<T, kVec16<T>><<<grid_for(total), kThreads, 0, stream>>>(p, x, y, ind, total);
  FASTCONV_CHECK_LAUNCH("max_pool_forward (channel vectors)");
}

template <typename T>
void avg_pool_forward_nhwc_vec(const PoolParams& p, const T* x, T* y, cudaStream_t stream) {
  const int64_t total = p.N * p.OH * p.OW * (p.C / kVec16<T>);
  avg_pool_forward_vec_kernel<T, kVec16<T>><<<grid_for(total), kThreads, 0, stream>>>(p, x, y, total);
  FASTCONV_CHECK_LAUNCH("avg_pool_forward (channel vectors)");
}

template <typename T>
void avg_pool_backward_nhwc_vec(const PoolParams& p, const T* gy, T* gx, cudaStream_t stream) {
  const int64_t total = p.N * p.H * p.W * (p.C / kVec16<T>);
  avg_pool_backward_vec_kernel<T, kVec16<T>><<<grid_for(total), kThreads, 0, stream>>>(p, gy, gx, total);
  FASTCONV_CHECK_LAUNCH("avg_pool_backward (channel vectors)");
}

template <typename T>
void max_pool_backward_nhwc_vec(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, int64_t* bad,
                                cudaStream_t stream) {
  const int64_t total = p.N * p.H * p.W * (p.C / kVec16<T>);
  max_pool_backward_vec_kernel<T, kVec16<T>><<<grid_for(total), kThreads, 0, stream>>>(p, gy, ind, gx, bad, total);
  FASTCONV_CHECK_LAUNCH("max_pool_backward (channel vectors)");
}

#define FASTCONV_INSTANTIATE(T)                                                                                 \
  template bool pool_nhwc_vec_applies<T>(const PoolParams&, const void*, const void*);                          \
  template void max_pool_forward_nhwc_vec<T>(const PoolParams&, const T*, T*, int64_t*, cudaStream_t);          \
  template void avg_pool_forward_nhwc_vec<T>(const PoolParams&, const T*, T*, cudaStream_t);                    \
  template void avg_pool_backward_nhwc_vec<T>(const PoolParams&, const T*, T*, cudaStream_t);                   \
  template void max_pool_backward_nhwc_vec<T>(const PoolParams&, const T*, const int64_t*, T*, int64_t*,        \
                                              cudaStream_t);
FASTCONV_CUDA_FOR_EACH_TYPE(FASTCONV_INSTANTIATE)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
