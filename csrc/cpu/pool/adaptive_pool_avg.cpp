// Adaptive average pooling, forward and backward. NCHW: one (n, c) plane per work item. NHWC: one
// (n, row, channel block) per work item, the innermost loop running over contiguous channels (SIMD).
// The backward is written as a gather (each input element sums the scaled gradients of the windows
// that hold it), so every element is written once and threads never share an output element.
#include <algorithm>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "adaptive_pool_kernels.h"
#include "adaptive_pool_windows.h"

namespace fastconv {
namespace cpu {

namespace {

// Sum of n contiguous values (a whole plane, global pooling). Small planes (7x7 at a network head) make
// the loop overhead and the horizontal reduction the cost, so AVX-512 gets a masked-tail version.
template <typename T>
inline T plane_sum(const T* __restrict v, int64_t n) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += v[i];
  return s;
}

#if defined(__AVX512F__)
template <>
inline float plane_sum<float>(const float* __restrict v, int64_t n) {
  __m512 a = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) a = _mm512_add_ps(a, _mm512_loadu_ps(v + i));
  if (i < n) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (n - i)) - 1), v + i));
  return _mm512_reduce_add_ps(a);
}

template <>
inline double plane_sum<double>(const double* __restrict v, int64_t n) {
  __m512d a = _mm512_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) a = _mm512_add_pd(a, _mm512_loadu_pd(v + i));
  if (i < n) a = _mm512_add_pd(a, _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << (n - i)) - 1), v + i));
  return _mm512_reduce_add_pd(a);
}
#endif

template <typename T>
void avg_forward_nchw(const AdaptivePoolParams& p, const T* x, T* y) {
  const AxisWindows wh(p.H, p.OH), ww(p.W, p.OW);
  const int64_t planes = p.N * p.C, HW = p.in_plane(), OHW = p.out_plane();
  bool multi_row = false;
  for (int64_t oh = 0; oh < p.OH; ++oh) multi_row |= wh.end[oh] - wh.start[oh] > 1;
#pragma omp parallel num_threads(pool_threads(p, planes * HW))
  {
    // Column sums only for windows of several rows: a 1-d pooling (H == 1) sums the input row in place
    // instead of copying it (a whole input row per thread).
    std::vector<T> colsum(multi_row ? p.W : 0);
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = x + plane * HW;
      T* yp = y + plane * OHW;
      if (p.is_global()) {  // the network-head case: one contiguous reduction
        yp[0] = plane_sum(xp, HW) / T(HW);
        continue;
      }
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        // Column sums over the window's rows (contiguous, SIMD over iw), then short sums along each window.
        const int64_t hs = wh.start[oh], he = wh.end[oh];
        const T* __restrict r0 = xp + hs * p.W;
        T* __restrict cs = he - hs > 1 ? colsum.data() : nullptr;
        if (cs) {
#pragma omp simd
          for (int64_t iw = 0; iw < p.W; ++iw) cs[iw] = r0[iw];
        }
        for (int64_t ih = hs + 1; ih < he; ++ih) {
          const T* __restrict r = xp + ih * p.W;
#pragma omp simd
          for (int64_t iw = 0; iw < p.W; ++iw) cs[iw] += r[iw];
        }
        const T* __restrict sums = cs ? cs : r0;
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const int64_t ws = ww.start[ow], we = ww.end[ow];
          T s = 0;
          for (int64_t iw = ws; iw < we; ++iw) s += sums[iw];
          yp[oh * p.OW + ow] = s / T(he - hs) / T(we - ws);
        }
      }
    }
  }
}

template <typename T>
void avg_forward_nhwc(const AdaptivePoolParams& p, const T* x, T* y) {
  const AxisWindows wh(p.H, p.OH), ww(p.W, p.OW);
  const int64_t C = p.C, nb = channel_blocks(C), items = p.N * p.OH * nb;
  const bool global = p.is_global();
#pragma omp parallel num_threads(pool_threads(p, p.N * p.in_plane() * C))
  {
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item % nb, oh = (item / nb) % p.OH, n = item / (nb * p.OH);
      const int64_t c0 = b * kChannelBlock, cl = std::min(kChannelBlock, C - c0);
      const int64_t hs = wh.start[oh], he = wh.end[oh];
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t ws = ww.start[ow], we = ww.end[ow];
        T* __restrict yr = y + ((n * p.OH + oh) * p.OW + ow) * C + c0;  // accumulates in place (in L1)
        bool first = true;
        for (int64_t ih = hs; ih < he; ++ih)
          for (int64_t iw = ws; iw < we; ++iw) {
            const T* __restrict xr = x + ((n * p.H + ih) * p.W + iw) * C + c0;
            if (first) {
#pragma omp simd
              for (int64_t c = 0; c < cl; ++c) yr[c] = xr[c];
              first = false;
            } else {
#pragma omp simd
              for (int64_t c = 0; c < cl; ++c) yr[c] += xr[c];
            }
          }
        if (global) {
          const T area = T(p.H * p.W);
#pragma omp simd
          for (int64_t c = 0; c < cl; ++c) yr[c] = yr[c] / area;
        } else {
          const T kh = T(he - hs), kw = T(we - ws);
#pragma omp simd
          for (int64_t c = 0; c < cl; ++c) yr[c] = yr[c] / kh / kw;
        }
      }
    }
  }
}

// gy / window area, the contribution of output (oh, ow) to each input of its window.
template <typename T>
inline T scaled(T g, const AdaptivePoolParams& p, const AxisWindows& wh, const AxisWindows& ww, int64_t oh,
                int64_t ow) {
  if (p.is_global()) return g / T(p.H * p.W);
  return g / T(wh.end[oh] - wh.start[oh]) / T(ww.end[ow] - ww.start[ow]);
}

template <typename T>
void avg_backward_nchw(const AdaptivePoolParams& p, const T* gy, T* gx) {
  const AxisWindows wh(p.H, p.OH), ww(p.W, p.OW);
  const int64_t planes = p.N * p.C, HW = p.in_plane(), OHW = p.out_plane();
#pragma omp parallel num_threads(pool_threads(p, planes * HW))
  {
    std::vector<T> s(OHW), colv(p.OW);
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* gp = gy + plane * OHW;
      T* xp = gx + plane * HW;
      if (p.is_global()) {
        const T v = gp[0] / T(HW);
#pragma omp simd
        for (int64_t i = 0; i < HW; ++i) xp[i] = v;
        continue;
      }
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t ow = 0; ow < p.OW; ++ow) s[oh * p.OW + ow] = scaled(gp[oh * p.OW + ow], p, wh, ww, oh, ow);
      for (int64_t ih = 0; ih < p.H; ++ih) {
        T* __restrict row = xp + ih * p.W;
        const int64_t oh0 = wh.first(ih), oh1 = wh.last(ih);
        if (ih > 0 && oh0 == wh.first(ih - 1) && oh1 == wh.last(ih - 1)) {  // same windows as the row above
          const T* __restrict above = row - p.W;
#pragma omp simd
          for (int64_t iw = 0; iw < p.W; ++iw) row[iw] = above[iw];
          continue;
        }
        // colv[ow]: what every input of this row inside window column ow receives from the rows' windows.
        T* __restrict cv = colv.data();
        const T* __restrict s0 = s.data() + oh0 * p.OW;
#pragma omp simd
        for (int64_t ow = 0; ow < p.OW; ++ow) cv[ow] = s0[ow];
        for (int64_t oh = oh0 + 1; oh <= oh1; ++oh) {
          const T* __restrict sr = s.data() + oh * p.OW;
#pragma omp simd
          for (int64_t ow = 0; ow < p.OW; ++ow) cv[ow] += sr[ow];
        }
        // Spread along the row: the part of a window already covered by the previous one (overlap) adds,
        // the rest is assigned (windows start at 0 and cover the row, so every element is written).
        int64_t covered = 0;
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const int64_t ws = ww.start[ow], we = ww.end[ow], mid = std::max(ws, std::min(covered, we));
          const T v = cv[ow];
          for (int64_t iw = ws; iw < mid; ++iw) row[iw] += v;
          for (int64_t iw = mid; iw < we; ++iw) row[iw] = v;
          covered = std::max(covered, we);
        }
      }
    }
  }
}

template <typename T>
void avg_backward_nhwc(const AdaptivePoolParams& p, const T* gy, T* gx) {
  const AxisWindows wh(p.H, p.OH), ww(p.W, p.OW);
  const int64_t C = p.C, out_rows = p.N * p.OH, in_rows = p.N * p.H;
  std::vector<T> s(static_cast<size_t>(p.N * p.OH * p.OW * C));  // gy scaled by 1 / window area
#pragma omp parallel num_threads(pool_threads(p, p.N * p.in_plane() * C))
  {
#pragma omp for schedule(static)
    for (int64_t r = 0; r < out_rows; ++r) {
      const int64_t oh = r % p.OH;
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const T* __restrict g = gy + (r * p.OW + ow) * C;
        T* __restrict sr = s.data() + (r * p.OW + ow) * C;
        if (p.is_global()) {
          const T area = T(p.H * p.W);
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) sr[c] = g[c] / area;
        } else {
          const T kh = T(wh.end[oh] - wh.start[oh]), kw = T(ww.end[ow] - ww.start[ow]);
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) sr[c] = g[c] / kh / kw;
        }
      }
    }  // implicit barrier: s is complete
#pragma omp for schedule(static)
    for (int64_t r = 0; r < in_rows; ++r) {
      const int64_t ih = r % p.H, n = r / p.H;
      const int64_t oh0 = wh.first(ih), oh1 = wh.last(ih);
      for (int64_t iw = 0; iw < p.W; ++iw) {
        const int64_t ow0 = ww.first(iw), ow1 = ww.last(iw);
        T* __restrict xr = gx + (r * p.W + iw) * C;
        const T* __restrict s0 = s.data() + ((n * p.OH + oh0) * p.OW + ow0) * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) xr[c] = s0[c];
        for (int64_t oh = oh0; oh <= oh1; ++oh)
          for (int64_t ow = (oh == oh0 ? ow0 + 1 : ow0); ow <= ow1; ++ow) {
            const T* __restrict sr = s.data() + ((n * p.OH + oh) * p.OW + ow) * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) xr[c] += sr[c];
          }
      }
    }
  }
}

}  // namespace

template <typename T>
void adaptive_avg_pool_forward(const AdaptivePoolParams& p, const T* x, T* y) {
  if (p.layout == Layout::NHWC)
    avg_forward_nhwc(p, x, y);
  else
    avg_forward_nchw(p, x, y);
}

template <typename T>
void adaptive_avg_pool_backward(const AdaptivePoolParams& p, const T* gy, T* gx) {
  if (p.layout == Layout::NHWC)
    avg_backward_nhwc(p, gy, gx);
  else
    avg_backward_nchw(p, gy, gx);
}

template void adaptive_avg_pool_forward<float>(const AdaptivePoolParams&, const float*, float*);
template void adaptive_avg_pool_forward<double>(const AdaptivePoolParams&, const double*, double*);
template void adaptive_avg_pool_backward<float>(const AdaptivePoolParams&, const float*, float*);
template void adaptive_avg_pool_backward<double>(const AdaptivePoolParams&, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
