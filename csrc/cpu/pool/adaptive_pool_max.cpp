// Adaptive max pooling: forward (value + index), backward (scatter-add by index) and the gather that is
// the backward's adjoint (used for double backward). Selection rule, as torch's CPU kernels: scan the
// window row by row, take v when v > max or v is NaN, so NaN propagates and ties keep the first.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "adaptive_pool_kernels.h"
#include "adaptive_pool_windows.h"
#include "pool_plane_blocks.h"

namespace fastconv {
namespace cpu {

namespace {

template <typename T>
inline bool takes(T v, T m) {
  return v > m || v != v;  // v != v: NaN
}

// (a, ia) beats (b, ib) in torch's scan order: a NaN beats any number and a later NaN an earlier one;
// otherwise the larger value wins and, on a tie, the earlier position.
template <typename T>
inline bool beats(T a, int64_t ia, T b, int64_t ib) {
  if (a != a) return b == b || ia > ib;
  if (b != b) return false;
  return a > b || (a == b && ia < ib);
}

// Max and argmax of a whole contiguous plane (global pooling, NCHW): kLanes interleaved scans with the
// per-element rule (each lane sees its elements in order), then a merge of the lanes with beats().
// Lane indices are int32 for float (16 lanes of each, one register) and int64 for double (8 and 8).
template <typename T>
inline void plane_argmax(const T* __restrict v, int64_t n, T& max_out, int64_t& idx_out) {
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  constexpr int64_t kLanes = 64 / sizeof(T);
  T m[kLanes];
  I id[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) {
    m[l] = -std::numeric_limits<T>::infinity();
    id[l] = static_cast<I>(l);  // a lane left at -inf ties with the others; the smallest index wins
  }
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) {
      const T x = v[i + l];
      const bool t = takes(x, m[l]);
      m[l] = t ? x : m[l];
      id[l] = t ? static_cast<I>(i + l) : id[l];
    }
  }
  for (int64_t l = 0; i + l < n; ++l)
    if (takes(v[i + l], m[l])) {
      m[l] = v[i + l];
      id[l] = static_cast<I>(i + l);
    }
  T best = m[0];
  int64_t bi = id[0];
  for (int64_t l = 1; l < kLanes; ++l)
    if (beats(m[l], static_cast<int64_t>(id[l]), best, bi)) {
      best = m[l];
      bi = id[l];
    }
  max_out = best;
  idx_out = bi;
}

template <typename T>
void max_forward_nchw(const AdaptivePoolParams& p, const T* x, T* y, int64_t* idx) {
  const AxisWindows wh(p.H, p.OH), ww(p.W, p.OW);
  const int64_t planes = p.N * p.C, HW = p.in_plane(), OHW = p.out_plane();
  const bool global_lanes = p.is_global() && HW <= INT32_MAX;
#pragma omp parallel num_threads(pool_threads(p, planes * HW))
  {
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = x + plane * HW;
      if (global_lanes) {
        plane_argmax(xp, HW, y[plane], idx[plane]);
        continue;
      }
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        const int64_t hs = wh.start[oh], he = wh.end[oh];
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const int64_t ws = ww.start[ow], we = ww.end[ow];
          T m = -std::numeric_limits<T>::infinity();
          int64_t mi = hs * p.W + ws;
          for (int64_t ih = hs; ih < he; ++ih)
            for (int64_t iw = ws; iw < we; ++iw) {
              const T v = xp[ih * p.W + iw];
              if (takes(v, m)) {
                m = v;
                mi = ih * p.W + iw;
              }
            }
          y[plane * OHW + oh * p.OW + ow] = m;
          idx[plane * OHW + oh * p.OW + ow] = mi;
        }
      }
    }
  }
}

// The running index is kept as I (int32 when the plane fits, so value and index vectors have the same
// lane count and the select below vectorizes), widened to int64 when the window is done.
template <typename T, typename I>
void max_forward_nhwc(const AdaptivePoolParams& p, const T* x, T* y, int64_t* idx) {
  const AxisWindows wh(p.H, p.OH), ww(p.W, p.OW);
  const int64_t C = p.C, nb = channel_blocks(C), items = p.N * p.OH * nb;
#pragma omp parallel num_threads(pool_threads(p, p.N * p.in_plane() * C))
  {
    I ibuf[kChannelBlock];
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item % nb, oh = (item / nb) % p.OH, n = item / (nb * p.OH);
      const int64_t c0 = b * kChannelBlock, cl = std::min(kChannelBlock, C - c0);
      const int64_t hs = wh.start[oh], he = wh.end[oh];
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t ws = ww.start[ow], we = ww.end[ow];
        const int64_t o = ((n * p.OH + oh) * p.OW + ow) * C + c0;
        T* __restrict yr = y + o;  // the running max lives in the output row (L1)
        I* __restrict ib = ibuf;
        const I first = static_cast<I>(hs * p.W + ws);
        // The first element is taken whatever its value (it beats the -inf start or is NaN, or equals -inf
        // and keeps index `first` either way), so the scan starts from the second.
        const T* __restrict x0 = x + ((n * p.H + hs) * p.W + ws) * C + c0;
#pragma omp simd
        for (int64_t c = 0; c < cl; ++c) {
          yr[c] = x0[c];
          ib[c] = first;
        }
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = (ih == hs ? ws + 1 : ws); iw < we; ++iw) {
            const T* __restrict xr = x + ((n * p.H + ih) * p.W + iw) * C + c0;
            const I pos = static_cast<I>(ih * p.W + iw);
#pragma omp simd
            for (int64_t c = 0; c < cl; ++c) {
              const T v = xr[c];
              const bool t = takes(v, yr[c]);
              yr[c] = t ? v : yr[c];
              ib[c] = t ? pos : ib[c];
            }
          }
        int64_t* __restrict ir = idx + o;
#pragma omp simd
        for (int64_t c = 0; c < cl; ++c) ir[c] = ib[c];
      }
    }
  }
}

template <typename T>
bool max_backward_nchw(const AdaptivePoolParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t planes = p.N * p.C, HW = p.in_plane(), OHW = p.out_plane();
  int bad = 0;
#pragma omp parallel num_threads(pool_threads(p, planes * (HW + OHW))) reduction(| : bad)
  {
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      T* xp = gx + plane * HW;
      std::fill(xp, xp + HW, T(0));
      for (int64_t o = 0; o < OHW; ++o) {
        const int64_t i = idx[plane * OHW + o];
        if (i < 0 || i >= HW) {
          bad = 1;
          continue;
        }
        xp[i] += gy[plane * OHW + o];
      }
    }
  }
  return !bad;
}

// Parallel over (n, channel block): windows overlap when the output size does not divide the input,
// so two outputs of one channel may scatter into the same element; a channel belongs to one thread.
template <typename T>
bool max_backward_nhwc(const AdaptivePoolParams& p, const T* gy, const int64_t* idx, T* gx) {
  const int64_t C = p.C, HW = p.in_plane(), OHW = p.out_plane(), nb = channel_blocks(C), items = p.N * nb;
  int bad = 0;
#pragma omp parallel num_threads(pool_threads(p, p.N * (HW + OHW) * C)) reduction(| : bad)
  {
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item % nb, n = item / nb;
      const int64_t c0 = b * kChannelBlock, cl = std::min(kChannelBlock, C - c0);
      T* xn = gx + n * HW * C + c0;
      for (int64_t i = 0; i < HW; ++i) std::fill(xn + i * C, xn + i * C + cl, T(0));
      for (int64_t o = 0; o < OHW; ++o) {
        const int64_t* ir = idx + (n * OHW + o) * C + c0;
        const T* gr = gy + (n * OHW + o) * C + c0;
        for (int64_t c = 0; c < cl; ++c) {
          const int64_t i = ir[c];
          if (i < 0 || i >= HW) {
            bad = 1;
            continue;
          }
          xn[i * C + c] += gr[c];
        }
      }
    }
  }
  return !bad;
}

template <typename T>
bool max_gather(const AdaptivePoolParams& p, const T* x, const int64_t* idx, T* y) {
  // Layout-generic: element e of the output (plane-major for NCHW, channel-minor for NHWC) reads the
  // input element of the same (n, c) at plane position idx[e].
  const int64_t HW = p.in_plane(), OHW = p.out_plane(), C = p.C, total = p.N * C * OHW;
  const bool nhwc = p.layout == Layout::NHWC;
  int bad = 0;
#pragma omp parallel for num_threads(pool_threads(p, total)) schedule(static) reduction(| : bad)
  for (int64_t e = 0; e < total; ++e) {
    const int64_t i = idx[e];
    if (i < 0 || i >= HW) {
      bad = 1;
      y[e] = T(0);
      continue;
    }
    if (nhwc) {
      const int64_t c = e % C, n = e / (C * OHW);
      y[e] = x[(n * HW + i) * C + c];
    } else {
      const int64_t plane = e / OHW;
      y[e] = x[plane * HW + i];
    }
  }
  return !bad;
}

// NCHW planes of at most kMaxBlockPlane elements pooled in blocks (pool_plane_blocks.h) by max_forward_nhwc on the
// calling thread: one plane at a time each window was a scalar scan. SPPNet's 4x256x13x13 to 4x4, A/B in one
// process, 2 threads: 374 -> 178 us (torch 423; channels_last 42); 8x512x14x14 to 3x3 1318 -> 653 us.
template <typename T>
void max_forward_nchw_blocks(const AdaptivePoolParams& p, const T* x, T* y, int64_t* idx) {
  AdaptivePoolParams q = p;
  q.N = 1, q.C = kPlaneLanes<T>, q.layout = Layout::NHWC, q.num_threads = 1;
  pool_in_plane_blocks(pool_threads(p, p.N * p.C * p.in_plane()), p.N * p.C, p.in_plane(), p.out_plane(), x, y, idx,
                       [&](const T* xs, T* ys, int64_t* is) { max_forward_nhwc<T, int32_t>(q, xs, ys, is); });
}

}  // namespace

template <typename T>
void adaptive_max_pool_forward(const AdaptivePoolParams& p, const T* x, T* y, int64_t* idx) {
  if (p.layout == Layout::NHWC && p.in_plane() <= INT32_MAX)
    max_forward_nhwc<T, int32_t>(p, x, y, idx);
  else if (p.layout == Layout::NHWC)
    max_forward_nhwc<T, int64_t>(p, x, y, idx);
  else if (!p.is_global() && p.in_plane() <= kMaxBlockPlane)
    max_forward_nchw_blocks(p, x, y, idx);
  else
    max_forward_nchw(p, x, y, idx);
}

template <typename T>
bool adaptive_max_pool_backward(const AdaptivePoolParams& p, const T* gy, const int64_t* idx, T* gx) {
  return p.layout == Layout::NHWC ? max_backward_nhwc(p, gy, idx, gx) : max_backward_nchw(p, gy, idx, gx);
}

template <typename T>
bool adaptive_max_pool_gather(const AdaptivePoolParams& p, const T* x, const int64_t* idx, T* y) {
  return max_gather(p, x, idx, y);
}

#define FASTCONV_INSTANTIATE(T)                                                                         \
  template void adaptive_max_pool_forward<T>(const AdaptivePoolParams&, const T*, T*, int64_t*);        \
  template bool adaptive_max_pool_backward<T>(const AdaptivePoolParams&, const T*, const int64_t*, T*); \
  template bool adaptive_max_pool_gather<T>(const AdaptivePoolParams&, const T*, const int64_t*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace cpu
}  // namespace fastconv
