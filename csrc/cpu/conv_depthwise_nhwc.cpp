// Depthwise convolution, NHWC: the innermost loop runs over channels (contiguous in memory) with the
// weight transposed to (R, S, K). Forward: threads split output rows. Input and weight gradients: threads
// split (image, channel block) / channel blocks, so every thread owns the elements it accumulates into
// (race-free scatter through any padding mode, and deterministic).
#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "conv_depthwise.h"
#include "gemm_scratch.h"

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

// Forward for one output pixel: chunks of kLanes channels accumulate over all taps in registers.
template <typename T>
void forward_pixel(const ConvParams& p, const T* x_img, const T* wt, const T* bias, const int64_t* ih,
                   const int64_t* iw, int64_t mult, T* __restrict out) {
  constexpr int64_t kLanes = 64 / sizeof(T);
  for (int64_t k0 = 0; k0 < p.K; k0 += kLanes) {
    const int64_t nk = std::min(kLanes, p.K - k0);
    alignas(64) T acc[kLanes];
    for (int64_t j = 0; j < kLanes; ++j) acc[j] = (bias && j < nk) ? bias[k0 + j] : T(0);
    for (int64_t r = 0; r < p.R; ++r) {
      if (ih[r] < 0) continue;
      for (int64_t s = 0; s < p.S; ++s) {
        if (iw[s] < 0) continue;
        const T* __restrict xp = x_img + (ih[r] * p.W + iw[s]) * p.C;
        const T* __restrict wp = wt + (r * p.S + s) * p.K + k0;
        if (mult == 1 && nk == kLanes) {
#pragma omp simd
          for (int64_t j = 0; j < kLanes; ++j) acc[j] += wp[j] * xp[k0 + j];
        } else {
          for (int64_t j = 0; j < nk; ++j) acc[j] += wp[j] * xp[(k0 + j) / mult];
        }
      }
    }
    for (int64_t j = 0; j < nk; ++j) out[k0 + j] = acc[j];
  }
}

}  // namespace

template <typename T>
void depthwise_forward_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t mult = p.K / p.C, rows = p.N * p.OH;
  const T* wt = transposed_weight(p, w);
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> ih(p.R), iw(p.S);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t n = row / p.OH, oh = row % p.OH;
      for (int64_t r = 0; r < p.R; ++r) ih[r] = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        for (int64_t s = 0; s < p.S; ++s) iw[s] = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
        forward_pixel(p, x + n * p.H * p.W * p.C, wt, bias, ih.data(), iw.data(), mult,
                      y + ((n * p.OH + oh) * p.OW + ow) * p.K);
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
#pragma omp for schedule(static)
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
#pragma omp for schedule(static)
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
