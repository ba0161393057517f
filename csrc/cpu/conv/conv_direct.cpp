// Direct loop-nest convolution: the general fallback. Covers every stride, padding (all four modes),
// dilation, group and layout combination; the GEMM paths handle the large common shapes faster.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "activation_index.h"
#include "conv_kernels.h"

namespace fastconv {
namespace cpu {

template <typename T>
void conv_forward_direct(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const ActIndex xi = input_index(p), yi = output_index(p);
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group();
  const int64_t rows = p.N * p.K * p.OH;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> hmap(p.R), wmap(p.OW * p.S);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t oh = row % p.OH, k = (row / p.OH) % p.K, n = row / (p.OH * p.K);
      const int64_t g = k / Kg;
      for (int64_t r = 0; r < p.R; ++r) hmap[r] = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      for (int64_t ow = 0; ow < p.OW; ++ow)
        for (int64_t s = 0; s < p.S; ++s)
          wmap[ow * p.S + s] = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        T acc = bias ? bias[k] : T(0);
        for (int64_t c = 0; c < Cg; ++c) {
          const T* wk = w + ((k * Cg + c) * p.R) * p.S;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = hmap[r];
            if (ih < 0) continue;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t iw = wmap[ow * p.S + s];
              if (iw < 0) continue;
              acc += wk[r * p.S + s] * x[xi(n, g * Cg + c, ih, iw)];
            }
          }
        }
        y[yi(n, k, oh, ow)] = acc;
      }
    }
  }
}

template <typename T>
void conv_backward_input_direct(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const ActIndex xi = input_index(p), yi = output_index(p);
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group();
  // Each (n, c) plane of gx is owned by one thread, so the scatter below (needed because reflect,
  // replicate and circular padding map several padded positions onto one input element) is race-free.
  const int64_t planes = p.N * p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<T> acc(p.H * p.W);
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t c = plane % p.C, n = plane / p.C, g = c / Cg, cg = c % Cg;
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t kk = 0; kk < Kg; ++kk) {
        const int64_t k = g * Kg + kk;
        const T* wk = w + ((k * Cg + cg) * p.R) * p.S;
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
            if (ih < 0) continue;
            for (int64_t ow = 0; ow < p.OW; ++ow) {
              const T g_out = gy[yi(n, k, oh, ow)];
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
                if (iw < 0) continue;
                acc[ih * p.W + iw] += g_out * wk[r * p.S + s];
              }
            }
          }
      }
      for (int64_t h = 0; h < p.H; ++h)
        for (int64_t ww = 0; ww < p.W; ++ww) gx[xi(n, c, h, ww)] = acc[h * p.W + ww];
    }
  }
}

template <typename T>
void conv_backward_weight_direct(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const ActIndex xi = input_index(p), yi = output_index(p);
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group();
  const int64_t taps = p.K * Cg * p.R * p.S;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t s = t % p.S, r = (t / p.S) % p.R, cg = (t / (p.S * p.R)) % Cg, k = t / (p.S * p.R * Cg);
      const int64_t c = (k / Kg) * Cg + cg;
      T acc = T(0);
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
          if (ih < 0) continue;
          for (int64_t ow = 0; ow < p.OW; ++ow) {
            const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
            if (iw < 0) continue;
            acc += gy[yi(n, k, oh, ow)] * x[xi(n, c, ih, iw)];
          }
        }
      gw[t] = acc;
    }
  }
}

// Bandwidth-bound: NCHW sums contiguous planes (vector lanes of partial sums); NHWC adds each pixel's
// contiguous channel vector into per-chunk partial sums (256 pixels) that are then added up, threads
// owning channel ranges. Either way every gb[k] is summed in a fixed order (deterministic) and more
// accurately than by one running sum.
template <typename T>
void conv_backward_bias(const ConvParams& p, const T* gy, T* gb) {
  capture_caller_denormal_mode();  // see denormal_guard.h
  const int64_t hw = p.OH * p.OW;
  const int nt = threads_for_work(p.N * p.K * hw, p.num_threads);
  if (p.layout == Layout::NCHW) {
#pragma omp parallel num_threads(nt)
    {
      DenormalGuard guard;
#pragma omp for schedule(static)
      for (int64_t k = 0; k < p.K; ++k) {
        T acc = T(0);
        for (int64_t n = 0; n < p.N; ++n) {
          const T* plane = gy + (n * p.K + k) * hw;
#pragma omp simd reduction(+ : acc)
          for (int64_t i = 0; i < hw; ++i) acc += plane[i];
        }
        gb[k] = acc;
      }
    }
    return;
  }
  const int64_t pixels = p.N * hw;
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    // Channel ranges in whole cache lines (16 floats) so the threads do not share lines of gb.
    const int64_t blocks = (p.K + 15) / 16;
    int64_t b0, b1;
    split_range(blocks, team_size(), thread_id(), b0, b1);  // the team may be smaller than nt
    const int64_t k0 = b0 * 16, k1 = std::min(p.K, b1 * 16);
    const int64_t kn = k1 - k0;
    if (kn > 0) {
      constexpr int64_t kChunk = 256;
      std::vector<T> part(kn);
      T* acc = gb + k0;
      std::fill(acc, acc + kn, T(0));
      for (int64_t px0 = 0; px0 < pixels; px0 += kChunk) {
        std::fill(part.begin(), part.end(), T(0));
        T* __restrict pa = part.data();
        for (int64_t px = px0; px < std::min(pixels, px0 + kChunk); ++px) {
          const T* __restrict row = gy + px * p.K + k0;
#pragma omp simd
          for (int64_t k = 0; k < kn; ++k) pa[k] += row[k];
        }
        for (int64_t k = 0; k < kn; ++k) acc[k] += pa[k];
      }
    }
  }
}

#define FASTCONV_INSTANTIATE_DIRECT(T)                                                                \
  template void conv_forward_direct<T>(const ConvParams&, const T*, const T*, const T*, T*);         \
  template void conv_backward_input_direct<T>(const ConvParams&, const T*, const T*, T*);            \
  template void conv_backward_weight_direct<T>(const ConvParams&, const T*, const T*, T*);           \
  template void conv_backward_bias<T>(const ConvParams&, const T*, T*);
FASTCONV_INSTANTIATE_DIRECT(float)
FASTCONV_INSTANTIATE_DIRECT(double)

}  // namespace cpu
}  // namespace fastconv
