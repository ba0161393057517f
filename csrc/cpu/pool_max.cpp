// Max pooling forward (values and indices). NCHW: threads over (n, c) planes; per output row the kernel
// taps are the outer loops and the output columns the inner (vectorisable) loop. NHWC: threads over
// (n, oh) rows, the inner loop runs over the contiguous channels.
#include <limits>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "pool_kernels.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {
namespace {

// Folds tap x[row][o * s + off] into the running max of outputs o in [lo, hi). SW > 0 fixes the stride
// at compile time (strided loads the compiler vectorises); SW == 0 uses s.
template <typename T, int SW>
void fold_max_taps(const T* row, int64_t row_index, int64_t off, int64_t s, int64_t lo, int64_t hi, T* ym,
                   int64_t* im) {
  const int64_t st = SW > 0 ? SW : s;
  for (int64_t o = lo; o < hi; ++o) {
    const int64_t iw = o * st + off;
    const T v = row[iw];
    const T m = ym[o];
    const bool take = (v > m) || (v != v);  // first maximum wins; NaN counts as the maximum
    ym[o] = take ? v : m;
    im[o] = take ? row_index + iw : im[o];
  }
}

#if defined(__AVX512F__)
// float specialisation: 16 outputs per step. Stride 2 loads 32 contiguous values and keeps the even
// ones; only blocks whose whole 32-value load stays inside the row are vectorised.
template <int SW>
void fold_max_taps_avx512(const float* row, int64_t row_index, int64_t off, int64_t lo, int64_t hi, float* ym,
                          int64_t* im, int64_t W) {
  int64_t o = lo;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i step_lo = _mm512_setr_epi64(0, SW, 2 * SW, 3 * SW, 4 * SW, 5 * SW, 6 * SW, 7 * SW);
  const __m512i step_hi = _mm512_add_epi64(step_lo, _mm512_set1_epi64(8 * SW));
  for (; o + 16 <= hi && o * SW + off + 16 * SW <= W; o += 16) {
    const float* src = row + o * SW + off;
    __m512 v;
    if constexpr (SW == 1) {
      v = _mm512_loadu_ps(src);
    } else {
      v = _mm512_permutex2var_ps(_mm512_loadu_ps(src), even, _mm512_loadu_ps(src + 16));
    }
    const __m512 m = _mm512_loadu_ps(ym + o);
    const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    _mm512_storeu_ps(ym + o, _mm512_mask_mov_ps(m, take, v));
    const __m512i base = _mm512_set1_epi64(row_index + o * SW + off);
    _mm512_mask_storeu_epi64(im + o, static_cast<__mmask8>(take), _mm512_add_epi64(base, step_lo));
    _mm512_mask_storeu_epi64(im + o + 8, static_cast<__mmask8>(take >> 8), _mm512_add_epi64(base, step_hi));
  }
  fold_max_taps<float, SW>(row, row_index, off, SW, o, hi, ym, im);
}
#endif

template <typename T>
void fold_taps(const T* row, int64_t row_index, int64_t off, int64_t s, int64_t lo, int64_t hi, T* ym, int64_t* im,
               int64_t W) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (s == 1) return fold_max_taps_avx512<1>(row, row_index, off, lo, hi, ym, im, W);
    if (s == 2) return fold_max_taps_avx512<2>(row, row_index, off, lo, hi, ym, im, W);
  }
#endif
  if (s == 1)
    fold_max_taps<T, 1>(row, row_index, off, 1, lo, hi, ym, im);
  else if (s == 2)
    fold_max_taps<T, 2>(row, row_index, off, 2, lo, hi, ym, im);
  else
    fold_max_taps<T, 0>(row, row_index, off, s, lo, hi, ym, im);
}

template <typename T>
void max_forward_nchw(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, OHW = p.OH * p.OW;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = x + plane * HW;
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        T* yr = y + plane * OHW + oh * p.OW;
        int64_t* ir = ind + plane * OHW + oh * p.OW;
        const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const Span ws = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
          yr[ow] = -std::numeric_limits<T>::infinity();
          ir[ow] = hs.begin * p.W + ws.begin;
        }
        for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh) {
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t off = j * p.dw - p.pw;
            int64_t lo, hi;
            tap_range(off, p.sw, p.W, p.OW, lo, hi);
            fold_taps<T>(xp + ih * p.W, ih * p.W, off, p.sw, lo, hi, yr, ir, p.W);
          }
        }
      }
    }
  }
}

#if defined(__AVX512F__)
// NB blocks of 16 float channels [c, c + 16 NB): maxima and indices stay in registers across the taps.
template <int NB>
inline void max_block_f32(const PoolParams& p, const float* xn, const Span& hs, const Span& ws, int64_t i0,
                          int64_t c, float* yc, int64_t* ic) {
  const int64_t C = p.C, W = p.W, dh = p.dh, dw = p.dw;
  __m512 m[NB];
  __m512i lo[NB], hi[NB];
  for (int b = 0; b < NB; ++b) {
    m[b] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    lo[b] = hi[b] = _mm512_set1_epi64(i0);
  }
  for (int64_t ih = hs.begin; ih < hs.end; ih += dh) {
    const float* src = xn + (ih * W + ws.begin) * C + c;
    for (int64_t iw = ws.begin; iw < ws.end; iw += dw, src += dw * C) {
      const __m512i idx = _mm512_set1_epi64(ih * W + iw);
      for (int b = 0; b < NB; ++b) {
        const __m512 v = _mm512_loadu_ps(src + 16 * b);
        const __mmask16 take = _mm512_cmp_ps_mask(v, m[b], _CMP_NLE_UQ);  // v > m, or either is NaN
        const __mmask16 keep_nan = _mm512_cmp_ps_mask(m[b], m[b], _CMP_UNORD_Q) &
                                   ~_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        const __mmask16 t = take & ~keep_nan;  // a NaN max stays unless v is NaN too (torch: last NaN)
        m[b] = _mm512_mask_mov_ps(m[b], t, v);
        lo[b] = _mm512_mask_mov_epi64(lo[b], static_cast<__mmask8>(t), idx);
        hi[b] = _mm512_mask_mov_epi64(hi[b], static_cast<__mmask8>(t >> 8), idx);
      }
    }
  }
  for (int b = 0; b < NB; ++b) {
    _mm512_storeu_ps(yc + c + 16 * b, m[b]);
    _mm512_storeu_si512(ic + c + 16 * b, lo[b]);
    _mm512_storeu_si512(ic + c + 16 * b + 8, hi[b]);
  }
}
#endif

// NHWC: the max and index of a block of channels live in registers across the window's taps.
// Returns how many leading channels it handled (a multiple of the vector width; 0 without AVX-512).
template <typename T>
int64_t max_channels_blocked(const PoolParams& p, const T* xn, const Span& hs, const Span& ws, int64_t i0, T* yc,
                             int64_t* ic) {
#if defined(__AVX512F__)
  const int64_t C = p.C;
  if constexpr (std::is_same_v<T, float>) {
    int64_t c = 0;
    // One block at a time: measured faster than 2 or 4 blocks per pass over the taps (N=8, C=64, 112x112).
    for (; c + 16 <= C; c += 16) max_block_f32<1>(p, xn, hs, ws, i0, c, yc, ic);
    return c;
  } else {
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      __m512d m = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
      __m512i id = _mm512_set1_epi64(i0);
      for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
        for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
          const __m512d v = _mm512_loadu_pd(xn + (ih * p.W + iw) * C + c);
          const __mmask8 take = _mm512_cmp_pd_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
          m = _mm512_mask_mov_pd(m, take, v);
          id = _mm512_mask_mov_epi64(id, take, _mm512_set1_epi64(ih * p.W + iw));
        }
      _mm512_storeu_pd(yc + c, m);
      _mm512_storeu_si512(ic + c, id);
    }
    return c;
  }
#else
  (void)p, (void)xn, (void)hs, (void)ws, (void)i0, (void)yc, (void)ic;
  return 0;
#endif
}

template <typename T>
void max_forward_nhwc(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  const int64_t rows = p.N * p.OH, C = p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / p.OH, oh = r % p.OH;
      const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const Span ws = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
        T* __restrict yc = y + (r * p.OW + ow) * C;
        int64_t* __restrict ic = ind + (r * p.OW + ow) * C;
        const int64_t i0 = hs.begin * p.W + ws.begin;
        const T* xn = x + n * p.H * p.W * C;
        const int64_t c_done = max_channels_blocked(p, xn, hs, ws, i0, yc, ic);
        if (c_done == C) continue;
        for (int64_t c = c_done; c < C; ++c) {
          yc[c] = -std::numeric_limits<T>::infinity();
          ic[c] = i0;
        }
        for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
          for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
            const T* __restrict xc = x + ((n * p.H + ih) * p.W + iw) * C;
            const int64_t idx = ih * p.W + iw;
            for (int64_t c = c_done; c < C; ++c) {
              const T v = xc[c];
              const T m = yc[c];
              const bool take = (v > m) || (v != v);
              yc[c] = take ? v : m;
              ic[c] = take ? idx : ic[c];
            }
          }
      }
    }
  }
}

}  // namespace

template <typename T>
void max_pool_forward(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  if (p.layout == Layout::NHWC)
    max_forward_nhwc(p, x, y, ind);
  else
    max_forward_nchw(p, x, y, ind);
}

template void max_pool_forward<float>(const PoolParams&, const float*, float*, int64_t*);
template void max_pool_forward<double>(const PoolParams&, const double*, double*, int64_t*);

}  // namespace cpu
}  // namespace fastconv
