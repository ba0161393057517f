// Max pooling forward (values and indices, or values only). NCHW: threads over (n, c) planes; per output row the kernel
// taps are the outer loops and the output columns the inner (vectorisable) loop. NHWC: threads over
// (n, oh) rows, the inner loop runs over the contiguous channels.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#else
#include "../portable_vec.h"
#endif

#include "pool_kernels.h"
#include "pool_plane_blocks.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {
namespace {

// Where the kernels that always make indices put them for a values-only call: a row of the calling thread's,
// reused (it stays in L1 instead of costing the output's index tensor, twice the values' bytes in memory).
int64_t* index_sink(size_t count) {
  thread_local std::vector<int64_t> sink;
  if (sink.size() < count) sink.resize(count);
  return sink.data();
}

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

#if defined(__AVX512F__)
// Lanes e of a 16-wide load starting at column c whose column c + e lies in [0, W).
inline __mmask16 in_row_mask(int64_t c, int64_t W) {
  const int64_t lo = std::clamp<int64_t>(-c, 0, 16), hi = std::clamp<int64_t>(W - c, 0, 16);
  return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// 16 values of a row at columns c, c + SW, ..., c + 15 SW (SW 1, 2 or 4): contiguous loads and permutes. kEdge:
// columns outside [0, W) read -inf (a masked load touches no memory in masked-off lanes; c may be negative).
template <int SW, bool kEdge>
inline __m512 load_strided_f32(const float* row, int64_t c, int64_t W) {
  const auto load = [&](int64_t cc) {
    if constexpr (kEdge) {
      // Address arithmetic in integers: cc may be negative (left padding).
      const float* src = reinterpret_cast<const float*>(reinterpret_cast<intptr_t>(row) + cc * 4);
      return _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), in_row_mask(cc, W), src);
    } else {
      return _mm512_loadu_ps(row + cc);
    }
  };
  if constexpr (SW == 1) {
    return load(c);
  } else if constexpr (SW == 2) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(load(c), even, load(c + 16));
  } else {
    static_assert(SW == 4, "stride 1, 2 or 4");
    const __m512i every4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    const __m512 lo = _mm512_permutex2var_ps(load(c), every4, load(c + 16));
    const __m512 hi = _mm512_permutex2var_ps(load(c + 32), every4, load(c + 48));
    return _mm512_insertf32x8(lo, _mm512_castps512_ps256(hi), 1);
  }
}

// NCHW float, stride SW (1, 2 or 4) along W: outputs [ow0, ow0 + 16) of a row (the `live` lanes), their running
// maxima and (int32) indices kept in registers across all taps of the window. kEdge: some tap of the block
// leaves the row (padding or the row's end); those taps load -inf, which never wins, so the first in-bounds
// tap keeps its initial index. (Stride 4 is M5's audio pooling, k4 s4: it ran the scalar loop at 0.45x of torch.)
template <int SW, bool kEdge>
inline void max_block_nchw_f32(const PoolParams& p, const float* xp, const Span& hs, int64_t ow0, __mmask16 live,
                               const int32_t* first_col, float* yr, int64_t* ir) {
  const int64_t W = p.W;
  const __m512i lane_col = _mm512_setr_epi32(0, SW, 2 * SW, 3 * SW, 4 * SW, 5 * SW, 6 * SW, 7 * SW, 8 * SW, 9 * SW,
                                             10 * SW, 11 * SW, 12 * SW, 13 * SW, 14 * SW, 15 * SW);
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i idx = _mm512_add_epi32(_mm512_maskz_loadu_epi32(live, first_col + ow0),
                                 _mm512_set1_epi32(static_cast<int32_t>(hs.begin * W)));
  int64_t j0 = 0, j1 = p.kw;  // taps that read some column of the row (all of them for an inside block)
  if constexpr (kEdge) kernel_tap_range(ow0 * SW - p.pw, 16 * SW, W, p.kw, p.dw, j0, j1);
  for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh) {
    const float* row = xp + ih * W;
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t c = ow0 * SW + j * p.dw - p.pw;  // column of lane 0's tap
      const __m512 v = load_strided_f32<SW, kEdge>(row, c, W);
      // torch's rule: v > max, or v is NaN (the last NaN wins)
      const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      m = _mm512_mask_mov_ps(m, take, v);
      idx = _mm512_mask_mov_epi32(idx, take,
                                  _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(ih * W + c)), lane_col));
    }
  }
  const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(idx));
  const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(idx, 1));
  if (kEdge) {
    _mm512_mask_storeu_ps(yr + ow0, live, m);
    _mm512_mask_storeu_epi64(ir + ow0, static_cast<__mmask8>(live), lo);
    _mm512_mask_storeu_epi64(ir + ow0 + 8, static_cast<__mmask8>(live >> 8), hi);
  } else {
    _mm512_storeu_ps(yr + ow0, m);
    _mm512_storeu_si512(ir + ow0, lo);
    _mm512_storeu_si512(ir + ow0 + 8, hi);
  }
}

// One output row: blocks whose every tap stays inside the row take the unmasked path.
template <int SW>
void max_row_nchw_f32(const PoolParams& p, const float* xp, const Span& hs, const int32_t* first_col, float* yr,
                      int64_t* ir) {
  const int64_t reach = (p.kw - 1) * p.dw - p.pw + 16 * SW;  // one past the last column a block reads
  for (int64_t ow0 = 0; ow0 < p.OW; ow0 += 16) {
    const int64_t lanes = std::min<int64_t>(16, p.OW - ow0);
    const __mmask16 live = static_cast<__mmask16>((1u << lanes) - 1u);
    const bool inside = lanes == 16 && ow0 * SW - p.pw >= 0 && ow0 * SW + reach <= p.W;
    if (inside)
      max_block_nchw_f32<SW, false>(p, xp, hs, ow0, live, first_col, yr, ir);
    else
      max_block_nchw_f32<SW, true>(p, xp, hs, ow0, live, first_col, yr, ir);
  }
}
#endif

// Whether the float32 register kernels apply: flat indices that fit int32 (the NCHW one also needs stride 1, 2 or 4).
inline bool use_f32_registers(const PoolParams& p) {
#if defined(__AVX512F__)
  return p.H * p.W < (int64_t(1) << 31) && p.W + 64 < (int64_t(1) << 31);
#else
  (void)p;
  return false;
#endif
}

template <typename T>
void max_forward_nchw(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, OHW = p.OH * p.OW;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if ((p.sw == 1 || p.sw == 2 || p.sw == 4) && use_f32_registers(p)) {
      std::vector<int32_t> first_col(p.OW);
      for (int64_t ow = 0; ow < p.OW; ++ow)
        first_col[ow] = static_cast<int32_t>(max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw).begin);
      parallel_items(p.num_threads, planes, [&](int64_t plane) {
        int64_t* sink = ind ? nullptr : index_sink(size_t(p.OW));
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
          float* yr = y + plane * OHW + oh * p.OW;
          int64_t* ir = ind ? ind + plane * OHW + oh * p.OW : sink;
          if (p.sw == 1)
            max_row_nchw_f32<1>(p, x + plane * HW, hs, first_col.data(), yr, ir);
          else if (p.sw == 2)
            max_row_nchw_f32<2>(p, x + plane * HW, hs, first_col.data(), yr, ir);
          else
            max_row_nchw_f32<4>(p, x + plane * HW, hs, first_col.data(), yr, ir);
        }
      });
      return;
    }
  }
#endif
  int64_t j0, j1;  // kernel columns that reach the input for some output column
  kernel_tap_range(-p.pw, (p.OW - 1) * p.sw + 1, p.W, p.kw, p.dw, j0, j1);
  parallel_items(p.num_threads, planes, [&](int64_t plane) {
    const T* xp = x + plane * HW;
    int64_t* sink = ind ? nullptr : index_sink(size_t(p.OW));
    for (int64_t oh = 0; oh < p.OH; ++oh) {
      T* yr = y + plane * OHW + oh * p.OW;
      int64_t* ir = ind ? ind + plane * OHW + oh * p.OW : sink;
      const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const Span ws = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
        yr[ow] = -std::numeric_limits<T>::infinity();
        ir[ow] = hs.begin * p.W + ws.begin;
      }
      for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh) {
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t off = j * p.dw - p.pw;
          int64_t lo, hi;
          tap_range(off, p.sw, p.W, p.OW, lo, hi);
          fold_taps<T>(xp + ih * p.W, ih * p.W, off, p.sw, lo, hi, yr, ir, p.W);
        }
      }
    }
  });
}

#if defined(__AVX512F__)
// NHWC float: NB blocks of 16 channels [c, c + 16 NB) of one output pixel; their maxima and (int32) indices
// stay in registers across the window's taps, the NB independent compare chains interleaved. `last`
// masks the channels of the final block (a partial block at the end of C).
template <int NB, bool kTail, bool kStream, bool kIdx>
inline void max_block_f32(const PoolParams& p, const float* xn, const Span& hs, const Span& ws, int32_t i0,
                          int64_t c, __mmask16 last, float* yc, int64_t* ic) {
  const int64_t C = p.C, W = p.W;
  __m512 m[NB];
  __m512i id[NB];
  for (int b = 0; b < NB; ++b) {
    m[b] = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    id[b] = _mm512_set1_epi32(i0);
  }
  for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh) {
    for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
      const float* src = xn + (ih * W + iw) * C + c;
      const __m512i tap = _mm512_set1_epi32(static_cast<int32_t>(ih * W + iw));
      for (int b = 0; b < NB; ++b) {
        const __m512 v = (kTail && b == NB - 1) ? _mm512_maskz_loadu_ps(last, src + 16 * b)
                                                : _mm512_loadu_ps(src + 16 * b);
        // torch's rule: v > max, or v is NaN (the last NaN wins)
        const __mmask16 take = _mm512_cmp_ps_mask(v, m[b], _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m[b] = _mm512_mask_mov_ps(m[b], take, v);
        if constexpr (kIdx) id[b] = _mm512_mask_mov_epi32(id[b], take, tap);
      }
    }
  }
  for (int b = 0; b < NB; ++b) {
    if constexpr (!kIdx) {  // values only
      if (kTail && b == NB - 1) _mm512_mask_storeu_ps(yc + c + 16 * b, last, m[b]);
      else if constexpr (kStream) _mm512_stream_ps(yc + c + 16 * b, m[b]);
      else _mm512_storeu_ps(yc + c + 16 * b, m[b]);
      continue;
    }
    const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(id[b]));
    const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(id[b], 1));
    if (kTail && b == NB - 1) {
      _mm512_mask_storeu_ps(yc + c + 16 * b, last, m[b]);
      _mm512_mask_storeu_epi64(ic + c + 16 * b, static_cast<__mmask8>(last), lo);
      _mm512_mask_storeu_epi64(ic + c + 16 * b + 8, static_cast<__mmask8>(last >> 8), hi);
    } else if constexpr (kStream) {
      _mm512_stream_ps(yc + c + 16 * b, m[b]);
      _mm512_stream_si512(reinterpret_cast<__m512i*>(ic + c + 16 * b), lo);
      _mm512_stream_si512(reinterpret_cast<__m512i*>(ic + c + 16 * b + 8), hi);
    } else {
      _mm512_storeu_ps(yc + c + 16 * b, m[b]);
      _mm512_storeu_si512(ic + c + 16 * b, lo);
      _mm512_storeu_si512(ic + c + 16 * b + 8, hi);
    }
  }
}

// All C channels of one output pixel: 64 at a time, then one call for the remaining 1..63. kStream
// (use_stream_stores: C % 16 == 0, so no partial block) streams the stores. !kIdx: values only (ic unused).
template <bool kStream, bool kIdx>
inline void max_pixel_f32(const PoolParams& p, const float* xn, const Span& hs, const Span& ws, int32_t i0,
                          float* yc, int64_t* ic) {
  const int64_t C = p.C;
  int64_t c = 0;
  for (; c + 64 <= C; c += 64) max_block_f32<4, false, kStream, kIdx>(p, xn, hs, ws, i0, c, 0xFFFF, yc, ic);
  const int64_t rem = C - c;
  if (rem == 0) return;
  const int64_t tail = rem % 16;
  const __mmask16 last = tail == 0 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << tail) - 1u);
  switch ((rem + 15) / 16) {
    case 1: max_block_f32<1, !kStream, kStream, kIdx>(p, xn, hs, ws, i0, c, last, yc, ic); break;
    case 2: max_block_f32<2, !kStream, kStream, kIdx>(p, xn, hs, ws, i0, c, last, yc, ic); break;
    case 3: max_block_f32<3, !kStream, kStream, kIdx>(p, xn, hs, ws, i0, c, last, yc, ic); break;
    default: max_block_f32<4, !kStream, kStream, kIdx>(p, xn, hs, ws, i0, c, last, yc, ic); break;
  }
}
#endif

#if !defined(__AVX512F__)
// Portable NHWC (the avx2 and default libraries): NB registers of channels of one output pixel, maxima and
// indices (int32 for float, int64 for double) kept in registers across the window's taps. The scalar loop of
// max_forward_nhwc reads and writes y and the indices at every tap: ResNet's stem pool ran at 0.07x of an
// AVX2 torch with it. Returns the next channel to do.
template <typename T, typename I, int NB>
int64_t max_channel_blocks_portable(const PoolParams& p, const T* xn, const Span& hs, const Span& ws, int64_t i0,
                                    int64_t c, T* yc, int64_t* ic) {
  using VT = typename PortableVec<T>::V;
  using VI = typename PortableVec<I>::V;
  constexpr int L = PortableVec<T>::L;
  static_assert(PortableVec<I>::L == L, "one index per value");
  for (; c + NB * L <= p.C; c += NB * L) {
    VT m[NB];
    VI id[NB];
    for (int b = 0; b < NB; ++b) {
      m[b] = PortableVec<T>::set1(-std::numeric_limits<T>::infinity());
      id[b] = PortableVec<I>::set1(static_cast<I>(i0));
    }
    for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
      for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
        const T* src = xn + (ih * p.W + iw) * p.C + c;
        const VI tap = PortableVec<I>::set1(static_cast<I>(ih * p.W + iw));
        for (int b = 0; b < NB; ++b) {
          const VT v = PortableVec<T>::load(src + b * L);
          const auto take = (v > m[b]) | (v != v);  // torch's rule: v > max, or v is NaN (the last NaN wins)
          m[b] = take ? v : m[b];
          id[b] = take ? tap : id[b];
        }
      }
    for (int b = 0; b < NB; ++b) {
      PortableVec<T>::store(yc + c + b * L, m[b]);
      for (int l = 0; l < L; ++l) ic[c + b * L + l] = id[b][l];
    }
  }
  return c;
}
#endif

// NHWC channels in registers: AVX-512 double (float has max_pixel_f32), or the portable kernels for both
// types. Returns how many leading channels it handled (the scalar loop does the rest).
template <typename T>
int64_t max_channels_blocked(const PoolParams& p, const T* xn, const Span& hs, const Span& ws, int64_t i0, T* yc,
                             int64_t* ic) {
#if defined(__AVX512F__)
  const int64_t C = p.C;
  if constexpr (std::is_same_v<T, double>) {
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
  (void)p, (void)xn, (void)hs, (void)ws, (void)i0, (void)yc, (void)ic;
  return 0;
#else
  if constexpr (std::is_same_v<T, float>) {
    if (p.H * p.W >= (int64_t(1) << 31)) return 0;  // int32 indices
    const int64_t c = max_channel_blocks_portable<float, int32_t, 4>(p, xn, hs, ws, i0, 0, yc, ic);
    return max_channel_blocks_portable<float, int32_t, 1>(p, xn, hs, ws, i0, c, yc, ic);
  } else {
    const int64_t c = max_channel_blocks_portable<T, int64_t, 4>(p, xn, hs, ws, i0, 0, yc, ic);
    return max_channel_blocks_portable<T, int64_t, 1>(p, xn, hs, ws, i0, c, yc, ic);
  }
#endif
}

// ind == nullptr: values only; the kernels that always make indices leave them in a per-thread row (sink).
template <typename T>
void max_forward_nhwc(const PoolParams& p, const T* x, T* y, int64_t* ind, bool allow_stream = true) {
  const int64_t C = p.C;
  const int64_t out_bytes = p.N * p.OH * p.OW * C * int64_t(sizeof(T) + (ind ? sizeof(int64_t) : 0));
  const bool stream = allow_stream && std::is_same_v<T, float> && use_stream_stores(C, y, ind, out_bytes);
  parallel_items(p.num_threads, p.N * p.OH, [&](int64_t r) {
    const int64_t n = r / p.OH, oh = r % p.OH;
    const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
    const T* xn = x + n * p.H * p.W * C;
    int64_t* sink = ind ? nullptr : index_sink(size_t(C));
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      const Span ws = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
      T* __restrict yc = y + (r * p.OW + ow) * C;
      int64_t* __restrict ic = ind ? ind + (r * p.OW + ow) * C : sink;
      const int64_t i0 = hs.begin * p.W + ws.begin;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        if (use_f32_registers(p)) {
          if (ow + kNhwcPrefetchPixels < p.OW)
            prefetch_window_nhwc(xn, p.W, C, 4, hs.begin, hs.end, p.dh, (ow + kNhwcPrefetchPixels) * p.sw - p.pw,
                                 ((p.kw - 1) * p.dw + 1) * C * 4);
          const int32_t i32 = static_cast<int32_t>(i0);
          if (!ind)
            stream ? max_pixel_f32<true, false>(p, xn, hs, ws, i32, yc, ic)
                   : max_pixel_f32<false, false>(p, xn, hs, ws, i32, yc, ic);
          else
            stream ? max_pixel_f32<true, true>(p, xn, hs, ws, i32, yc, ic)
                   : max_pixel_f32<false, true>(p, xn, hs, ws, i32, yc, ic);
          continue;
        }
      }
#endif
      const int64_t c_done = max_channels_blocked(p, xn, hs, ws, i0, yc, ic);
      if (c_done == C) continue;
      for (int64_t c = c_done; c < C; ++c) {
        yc[c] = -std::numeric_limits<T>::infinity();
        ic[c] = i0;
      }
      for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
        for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
          const T* __restrict xc = xn + (ih * p.W + iw) * C;
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
    if (stream) stream_fence();
  });
}

// Output rows / columns whose window has no tap inside the input (dilation > 1 only) get index
// kEmptyWindowIndex; their value is already -inf. Touches nothing when no window is empty.
void mark_empty_windows(const PoolParams& p, int64_t* ind) {
  std::vector<char> row_empty(p.OH), col_empty(p.OW);
  bool any = false;
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    const Span s = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
    any |= (row_empty[oh] = s.begin >= s.end);
  }
  for (int64_t ow = 0; ow < p.OW; ++ow) {
    const Span s = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
    any |= (col_empty[ow] = s.begin >= s.end);
  }
  if (!any) return;
  const int64_t C = p.C, OHW = p.OH * p.OW;
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        if (!row_empty[oh] && !col_empty[ow]) continue;
        const int64_t o = oh * p.OW + ow;
        if (p.layout == Layout::NHWC)
          std::fill(ind + (n * OHW + o) * C, ind + (n * OHW + o + 1) * C, kEmptyWindowIndex);
        else
          for (int64_t c = 0; c < C; ++c) ind[(n * C + c) * OHW + o] = kEmptyWindowIndex;
      }
}

// Rows of fewer outputs than this pool in blocks of planes (max_forward_nchw_blocks); longer rows fill the NCHW
// kernel's 16-lane blocks. A/B in one process, 2 threads, forward / forward+backward: MNIST's 64x32x14x14 2x2/2
// 379 -> 154 / 449 -> 291 us, AlexNet's 4x256x27x27 3x3/2 537 -> 296 / 806 -> 645, its 13x13 266 -> 74 / 235 -> 134,
// VGG-16's 1x512x28x28 2x2/2 128 -> 92 / 245 -> 243, its 14x14 166 -> 67 / 279 -> 214; with rows of 28 outputs and
// more the blocks lost with indices (GoogLeNet's 8x192x28x28 3x3/1 forward+backward 3107 -> 3836 us: the int64
// indices' element-wise transposes), and ResNet's 112x112 stem pool 3031 -> 3895.
constexpr int64_t kBlockedRowOutputs = 16;

// NCHW planes pooled in blocks (pool_plane_blocks.h) by max_forward_nhwc on the calling thread (its register
// kernels, NaN and first-maximum rules).
template <typename T>
void max_forward_nchw_blocks(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  PoolParams q = p;
  q.N = 1, q.C = kPlaneLanes<T>, q.layout = Layout::NHWC, q.num_threads = 1;
  pool_in_plane_blocks(p.num_threads, p.N * p.C, p.H * p.W, p.OH * p.OW, x, y, ind,
                       [&](const T* xs, T* ys, int64_t* is) {
                         max_forward_nhwc(q, xs, ys, is, /*allow_stream=*/false);  // (the scratch is read right back)
                       });
}

}  // namespace

template <typename T>
void max_pool_forward(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  if (p.layout == Layout::NHWC)
    max_forward_nhwc(p, x, y, ind);
  else if (p.OW < kBlockedRowOutputs && p.H * p.W <= kMaxBlockPlane)
    max_forward_nchw_blocks(p, x, y, ind);
  else
    max_forward_nchw(p, x, y, ind);
  if (ind && (p.dh > 1 || p.dw > 1)) mark_empty_windows(p, ind);
}

template void max_pool_forward<float>(const PoolParams&, const float*, float*, int64_t*);
template void max_pool_forward<double>(const PoolParams&, const double*, double*, int64_t*);

}  // namespace cpu
}  // namespace fastconv
