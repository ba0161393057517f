// Depthwise convolution, NHWC: the innermost loop runs over channels (contiguous in memory) with the
// weight transposed to (R, S, K). Forward: threads split output rows. Input and weight gradients: threads
// split (image, channel block) / channel blocks, so every thread owns the elements it accumulates into
// (race-free scatter through any padding mode, and deterministic).
// Work is handed out dynamically (every item owns its outputs, so results do not depend on which
// thread runs it): on shared cores a descheduled thread then delays only the item it holds.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "conv_depthwise.h"
#include "gemm_microkernel.h"  // Zmm<T> vector traits
#include "gemm_scratch.h"
#include "im2col.h"  // interior_cols

namespace fastconv {
namespace cpu {
namespace {

// wt[(r*S + s)*K + k] = w[k, 0, r, s]
template <typename T>
const T* transposed_weight(const ConvParams& p, const T* w) {
  const int64_t RS = p.R * p.S;
  T* wt = thread_scratch<T>(kScratchWeight, size_t(RS * p.K));
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t rs = 0; rs < RS; ++rs) wt[rs * p.K + k] = w[k * RS + rs];
  return wt;
}

// Input channel blocks of whole multiples of 16 channels, enough of them (with the images) to feed the threads.
int64_t channel_block(const ConvParams& p, int64_t work_items_per_block) {
  int64_t cb = p.C;
  while (cb > 16 && work_items_per_block * ((p.C + cb - 1) / cb) < 2 * p.num_threads) cb = (cb / 2 + 15) / 16 * 16;
  return std::max<int64_t>(cb, 1);
}

constexpr int64_t kPixels = 8;  // output pixels computed together: 8 independent FMA chains

// Forward for up to kPixels consecutive output pixels of one row (iw[q*S + s] < 0: tap absent; q >= np:
// no such pixel). Each vector of channels accumulates over all taps in registers.
// kInterior: all kPixels pixels exist and every tap column is inside the input, so pixel q's tap s reads
// column iw[s] + q*stride_w (no per-tap lookups or tests).
template <typename T, bool kInterior>
void forward_pixels(const ConvParams& p, const T* x_img, const T* wt, const T* bias, const int64_t* ih,
                    const int64_t* iw, int64_t np, int64_t mult, T* __restrict out) {
  int64_t k0 = 0;
#if defined(__AVX512F__)
  if (mult == 1) {
    const int64_t step = p.stride_w * p.C;
    using Z = Zmm<T>;
    for (; k0 + Z::L <= p.K; k0 += Z::L) {
      typename Z::V acc[kPixels];
      const typename Z::V b = bias ? Z::load(bias + k0) : Z::zero();
#pragma GCC unroll 8
      for (int q = 0; q < kPixels; ++q) acc[q] = b;
      for (int64_t r = 0; r < p.R; ++r) {
        if (ih[r] < 0) continue;
        const T* xr = x_img + ih[r] * p.W * p.C + k0;
        const T* wr = wt + r * p.S * p.K + k0;
        for (int64_t s = 0; s < p.S; ++s) {
          const typename Z::V wv = Z::load(wr + s * p.K);
          if (kInterior) {
            const T* xs = xr + iw[s] * p.C;
#pragma GCC unroll 8
            for (int q = 0; q < kPixels; ++q) acc[q] = Z::fma(wv, Z::load(xs + q * step), acc[q]);
          } else {
#pragma GCC unroll 8
            for (int q = 0; q < kPixels; ++q) {
              const int64_t c = iw[q * p.S + s];
              if (c >= 0) acc[q] = Z::fma(wv, Z::load(xr + c * p.C), acc[q]);
            }
          }
        }
      }
      for (int64_t q = 0; q < np; ++q) Z::store(out + q * p.K + k0, acc[q]);
    }
  }
#endif
  for (int64_t q = 0; q < np; ++q)
    for (int64_t k = k0; k < p.K; ++k) {  // remaining channels (and the channel multiplier case)
      T acc = bias ? bias[k] : T(0);
      const int64_t c = k / mult;
      for (int64_t r = 0; r < p.R; ++r) {
        if (ih[r] < 0) continue;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t col = kInterior ? iw[s] + q * p.stride_w : iw[q * p.S + s];
          if (col >= 0) acc += wt[(r * p.S + s) * p.K + k] * x_img[(ih[r] * p.W + col) * p.C + c];
        }
      }
      out[q * p.K + k] = acc;
    }
}

}  // namespace

template <typename T>
void depthwise_forward_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t mult = p.K / p.C, rows = p.N * p.OH;
  const T* wt = transposed_weight(p, w);
  // Output columns whose taps are all inside the input: [lo, hi).
  int64_t lo = 0, hi = p.OW;
  for (int64_t s = 0; s < p.S; ++s) {
    const InteriorRange in = interior_cols(p, s);
    lo = std::max(lo, in.lo), hi = std::min(hi, in.hi);
  }
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> ih(p.R), iw(kPixels * p.S);
#pragma omp for schedule(dynamic, 4)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t n = row / p.OH, oh = row % p.OH;
      for (int64_t r = 0; r < p.R; ++r) ih[r] = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      for (int64_t ow0 = 0; ow0 < p.OW; ow0 += kPixels) {
        const int64_t np = std::min(kPixels, p.OW - ow0);
        const T* xn = x + n * p.H * p.W * p.C;
        T* out = y + ((n * p.OH + oh) * p.OW + ow0) * p.K;
        if (np == kPixels && ow0 >= lo && ow0 + kPixels <= hi) {
          for (int64_t s = 0; s < p.S; ++s) iw[s] = ow0 * p.stride_w - p.pad_l + s * p.dil_w;
          forward_pixels<T, true>(p, xn, wt, bias, ih.data(), iw.data(), np, mult, out);
          continue;
        }
        for (int64_t q = 0; q < kPixels; ++q)
          for (int64_t s = 0; s < p.S; ++s)
            iw[q * p.S + s] = q < np ? remap_index((ow0 + q) * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode) : -1;
        forward_pixels<T, false>(p, xn, wt, bias, ih.data(), iw.data(), np, mult, out);
      }
    }
  }
}

template <typename T>
void depthwise_backward_input_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const int64_t mult = p.K / p.C;
  const T* wt = transposed_weight(p, w);
  const int64_t cb = channel_block(p, p.N), nblk = (p.C + cb - 1) / cb, items = p.N * nblk;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t n = item / nblk, c0 = (item % nblk) * cb, c1 = std::min(p.C, c0 + cb);
      T* gxn = gx + n * p.H * p.W * p.C;
      for (int64_t i = 0; i < p.H * p.W; ++i) std::fill(gxn + i * p.C + c0, gxn + i * p.C + c1, T(0));
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
          if (ih < 0) continue;
          for (int64_t ow = 0; ow < p.OW; ++ow) {
            const T* __restrict g = gy + ((n * p.OH + oh) * p.OW + ow) * p.K;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
              if (iw < 0) continue;
              T* __restrict dst = gxn + (ih * p.W + iw) * p.C;
              const T* __restrict wp = wt + (r * p.S + s) * p.K;
              if (mult == 1) {
#pragma omp simd
                for (int64_t c = c0; c < c1; ++c) dst[c] += wp[c] * g[c];
              } else {
                for (int64_t c = c0; c < c1; ++c) {
                  T a = T(0);
                  for (int64_t m = 0; m < mult; ++m) a += wp[c * mult + m] * g[c * mult + m];
                  dst[c] += a;
                }
              }
            }
          }
        }
    }
  }
}

template <typename T>
void depthwise_backward_weight_nhwc(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const int64_t mult = p.K / p.C, RS = p.R * p.S;
  const int64_t cb = channel_block(p, 1), nblk = (p.C + cb - 1) / cb;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* acc = thread_scratch<T>(kScratchAcc, size_t(RS * cb * mult));  // (r, s, k - c0*mult)
#pragma omp for schedule(dynamic)
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t c0 = blk * cb, c1 = std::min(p.C, c0 + cb), kb = (c1 - c0) * mult, k0 = c0 * mult;
      std::fill(acc, acc + RS * kb, T(0));
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
            if (ih < 0) continue;
            for (int64_t ow = 0; ow < p.OW; ++ow) {
              const T* __restrict g = gy + ((n * p.OH + oh) * p.OW + ow) * p.K + k0;
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
                if (iw < 0) continue;
                const T* __restrict xp = x + ((n * p.H + ih) * p.W + iw) * p.C + c0;
                T* __restrict a = acc + (r * p.S + s) * kb;
                if (mult == 1) {
#pragma omp simd
                  for (int64_t j = 0; j < kb; ++j) a[j] += g[j] * xp[j];
                } else {
                  for (int64_t j = 0; j < kb; ++j) a[j] += g[j] * xp[j / mult];
                }
              }
            }
          }
      for (int64_t j = 0; j < kb; ++j)
        for (int64_t rs = 0; rs < RS; ++rs) gw[(k0 + j) * RS + rs] = acc[rs * kb + j];
    }
  }
}

#define FASTCONV_INSTANTIATE_DW_NHWC(T)                                                              \
  template void depthwise_forward_nhwc<T>(const ConvParams&, const T*, const T*, const T*, T*);     \
  template void depthwise_backward_input_nhwc<T>(const ConvParams&, const T*, const T*, T*);        \
  template void depthwise_backward_weight_nhwc<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE_DW_NHWC(float)
FASTCONV_INSTANTIATE_DW_NHWC(double)

}  // namespace cpu
}  // namespace fastconv
