// im2col / col2im (see im2col.h). The interior of each row (no padding involved) is a plain strided copy
// (contiguous for stride 1); only the few border columns go through remap_index. With AVX-512, NCHW rows of
// zero-padded stride-1 and stride-2 taps are gathered whole, 16 (float) or 8 (double) at a time
// (gather_row_zeros).
#include "im2col.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fastconv {
namespace cpu {

InteriorRange interior_cols(const ConvParams& p, int64_t s) {
  const int64_t off = s * p.dil_w - p.pad_l;  // input column of ow = 0
  int64_t lo = std::clamp<int64_t>(ceil_div(-off, p.stride_w), 0, p.OW);
  int64_t hi = std::clamp<int64_t>(ceil_div(p.W - off, p.stride_w), lo, p.OW);
  return {lo, hi};
}

namespace {

// interior_cols for every kernel column, looked up per (channel, tap row) rather than recomputed (on small
// strided planes, DCGAN's 4x4, the call cost as much as the row's few columns).
std::vector<InteriorRange> interior_cols_per_tap(const ConvParams& p) {
  std::vector<InteriorRange> v(size_t(p.S));
  for (int64_t s = 0; s < p.S; ++s) v[size_t(s)] = interior_cols(p, s);
  return v;
}

#if defined(__AVX512F__)
// x + i for an i that may point before x (only lanes inside [x, x + W) are then read): in integers, so no
// pointer outside an object is ever formed in C++ terms.
template <typename T>
inline const T* lane_base(const T* x, int64_t i) {
  return reinterpret_cast<const T*>(reinterpret_cast<uintptr_t>(x) + uintptr_t(i * int64_t(sizeof(T))));
}

// One NCHW column-matrix row from one input row, zero padding, stride ST (1 or 2): dst[ow] = src[ow * ST + off]
// where that column lies in [0, W), else 0, for ow < OW. A vector of outputs per step, from masked loads that read
// only the row's own values (the padding lanes load as zeros) and, for stride 2, one two-register permute that
// keeps the even lanes. DCGAN's 128 -> 256 4x4/2 weight gradient (8x8 outputs, 8.4 MB of columns for 16 images)
// took 1.74 ms element by element, 1.09 ms so; ResNet's 3x3/2 columns at 14x14 outputs 2.7 -> 1.3 ms (1 thread);
// whole NCHW strided weight-gradient passes 4-17% faster (both alternated in one process, Zen 4, 2 threads).
template <int ST, typename T>
inline void gather_row_zeros(const T* src, int64_t W, int64_t off, int64_t OW, T* dst) {
  constexpr int L = 64 / sizeof(T);
  for (int64_t ow0 = 0; ow0 < OW; ow0 += L) {
    const int64_t i0 = ow0 * ST + off;  // the input column of lane 0
    const int64_t lo = std::clamp<int64_t>(-i0, 0, L * ST), hi = std::clamp<int64_t>(W - i0, 0, L * ST);
    const uint64_t in_row = hi > lo ? ((uint64_t(1) << hi) - 1) & ~((uint64_t(1) << lo) - 1) : 0;  // hi <= 32
    const int64_t n = std::min<int64_t>(L, OW - ow0);
    if constexpr (std::is_same_v<T, float>) {
      __m512 v = _mm512_maskz_loadu_ps(__mmask16(in_row), lane_base(src, i0));
      if constexpr (ST == 2) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        v = _mm512_permutex2var_ps(v, even, _mm512_maskz_loadu_ps(__mmask16(in_row >> 16), lane_base(src, i0 + 16)));
      }
      if (n == L) _mm512_storeu_ps(dst + ow0, v);
      else _mm512_mask_storeu_ps(dst + ow0, __mmask16((1u << n) - 1), v);
    } else {
      __m512d v = _mm512_maskz_loadu_pd(__mmask8(in_row), lane_base(src, i0));
      if constexpr (ST == 2) {
        const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        v = _mm512_permutex2var_pd(v, even, _mm512_maskz_loadu_pd(__mmask8(in_row >> 8), lane_base(src, i0 + 8)));
      }
      if (n == L) _mm512_storeu_pd(dst + ow0, v);
      else _mm512_mask_storeu_pd(dst + ow0, __mmask8((1u << n) - 1), v);
    }
  }
}

#endif

}  // namespace

template <typename T>
void im2col_nchw(const ConvParams& p, const T* x, int64_t oh0, int64_t oh1, T* col, int64_t ld) {
  const int64_t Cg = p.C_per_group(), npix = ld > 0 ? ld : (oh1 - oh0) * p.OW, HW = p.H * p.W;
  const std::vector<InteriorRange> interior = interior_cols_per_tap(p);
#if defined(__AVX512F__)
  const bool vector_rows = p.mode == PaddingMode::Zeros && (p.stride_w == 1 || p.stride_w == 2);
#endif
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        T* dst_row = col + ((c * p.R + r) * p.S + s) * npix;
        const InteriorRange in = interior[size_t(s)];
        const int64_t off = s * p.dil_w - p.pad_l;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* dst = dst_row + (oh - oh0) * p.OW;
          const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
          if (ih < 0) {
            std::memset(dst, 0, sizeof(T) * p.OW);
            continue;
          }
          const T* src = x + c * HW + ih * p.W;
#if defined(__AVX512F__)
          if (vector_rows) {
            if (p.stride_w == 2)
              gather_row_zeros<2>(src, p.W, off, p.OW, dst);
            else
              gather_row_zeros<1>(src, p.W, off, p.OW, dst);
            continue;
          }
#endif
          for (int64_t ow = 0; ow < in.lo; ++ow) {
            const int64_t iw = remap_index(ow * p.stride_w + off, p.W, p.mode);
            dst[ow] = iw < 0 ? T(0) : src[iw];
          }
          if (p.stride_w == 1) {
            std::memcpy(dst + in.lo, src + in.lo + off, sizeof(T) * (in.hi - in.lo));
          } else {
            for (int64_t ow = in.lo; ow < in.hi; ++ow) dst[ow] = src[ow * p.stride_w + off];
          }
          for (int64_t ow = in.hi; ow < p.OW; ++ow) {
            const int64_t iw = remap_index(ow * p.stride_w + off, p.W, p.mode);
            dst[ow] = iw < 0 ? T(0) : src[iw];
          }
        }
      }
}

template <typename T>
void col2im_nchw(const ConvParams& p, const T* col, int64_t oh0, int64_t oh1, int64_t channels, T* gx, int64_t ld) {
  const int64_t Cg = channels, npix = ld > 0 ? ld : (oh1 - oh0) * p.OW, HW = p.H * p.W;
  const std::vector<InteriorRange> interior = interior_cols_per_tap(p);
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) {
        const T* src_row = col + ((c * p.R + r) * p.S + s) * npix;
        const InteriorRange in = interior[size_t(s)];
        const int64_t off = s * p.dil_w - p.pad_l;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
          if (ih < 0) continue;
          const T* src = src_row + (oh - oh0) * p.OW;
          T* dst = gx + c * HW + ih * p.W;
          for (int64_t ow = 0; ow < in.lo; ++ow) {
            const int64_t iw = remap_index(ow * p.stride_w + off, p.W, p.mode);
            if (iw >= 0) dst[iw] += src[ow];
          }
          if (p.stride_w == 1) {
            T* d = dst + off;
#pragma omp simd
            for (int64_t ow = in.lo; ow < in.hi; ++ow) d[ow] += src[ow];
          } else {
            for (int64_t ow = in.lo; ow < in.hi; ++ow) dst[ow * p.stride_w + off] += src[ow];
          }
          for (int64_t ow = in.hi; ow < p.OW; ++ow) {
            const int64_t iw = remap_index(ow * p.stride_w + off, p.W, p.mode);
            if (iw >= 0) dst[iw] += src[ow];
          }
        }
      }
}

namespace {

// NHWC rows of columns whose S taps are S*Cg consecutive input values (dilation 1, one group, every tap
// inside the row): [lo, hi) of output columns; the taps of such a pixel are copied / added as one run.
InteriorRange nhwc_run_cols(const ConvParams& p, int64_t channels) {
  if (p.dil_w != 1 || channels != p.C) return {0, 0};
  int64_t lo = 0, hi = p.OW;
  for (int64_t s = 0; s < p.S; ++s) {
    const InteriorRange in = interior_cols(p, s);
    lo = std::max(lo, in.lo), hi = std::min(hi, in.hi);
  }
  return {lo, std::max(lo, hi)};
}

}  // namespace

template <typename T>
void im2col_nhwc(const ConvParams& p, const T* x, int64_t oh0, int64_t oh1, T* col) {
  const int64_t Cg = p.C_per_group(), ld = p.R * p.S * Cg, run = p.S * Cg;
  const InteriorRange runs = nhwc_run_cols(p, Cg);
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        T* dst = col + ((oh - oh0) * p.OW + ow) * ld + r * run;
        if (ih < 0) {
          std::memset(dst, 0, sizeof(T) * run);
          continue;
        }
        if (ow >= runs.lo && ow < runs.hi) {
          std::memcpy(dst, x + (ih * p.W + ow * p.stride_w - p.pad_l) * p.C, sizeof(T) * run);
          continue;
        }
        for (int64_t s = 0; s < p.S; ++s, dst += Cg) {
          const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
          if (iw < 0)
            std::memset(dst, 0, sizeof(T) * Cg);
          else
            std::memcpy(dst, x + (ih * p.W + iw) * p.C, sizeof(T) * Cg);
        }
      }
    }
}

template <typename T>
void col2im_nhwc(const ConvParams& p, const T* col, int64_t oh0, int64_t oh1, int64_t channels, T* gx) {
  const int64_t Cg = channels, ld = p.R * p.S * Cg, run = p.S * Cg;
  const InteriorRange runs = nhwc_run_cols(p, Cg);
  for (int64_t oh = oh0; oh < oh1; ++oh)
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      if (ih < 0) continue;
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const T* src = col + ((oh - oh0) * p.OW + ow) * ld + r * run;
        if (ow >= runs.lo && ow < runs.hi) {
          T* __restrict dst = gx + (ih * p.W + ow * p.stride_w - p.pad_l) * p.C;
#pragma omp simd
          for (int64_t i = 0; i < run; ++i) dst[i] += src[i];
          continue;
        }
        for (int64_t s = 0; s < p.S; ++s, src += Cg) {
          const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
          if (iw < 0) continue;
          T* dst = gx + (ih * p.W + iw) * p.C;
#pragma omp simd
          for (int64_t c = 0; c < Cg; ++c) dst[c] += src[c];
        }
      }
    }
}

#define FASTCONV_INSTANTIATE_IM2COL(T)                                                 \
  template void im2col_nchw<T>(const ConvParams&, const T*, int64_t, int64_t, T*, int64_t);     \
  template void col2im_nchw<T>(const ConvParams&, const T*, int64_t, int64_t, int64_t, T*, int64_t);     \
  template void im2col_nhwc<T>(const ConvParams&, const T*, int64_t, int64_t, T*);     \
  template void col2im_nhwc<T>(const ConvParams&, const T*, int64_t, int64_t, int64_t, T*);
FASTCONV_INSTANTIATE_IM2COL(float)
FASTCONV_INSTANTIATE_IM2COL(double)

}  // namespace cpu
}  // namespace fastconv
