// Depthwise convolution, NCHW: one (image, input channel) plane at a time. The plane is copied with its
// padding (any mode, resolved by remap_index) into a per-thread buffer so the inner loops are branch-free
// and run along W (vectorised for stride 1). Planes are independent, so threads split them; the weight
// gradient is split by channel instead (each thread owns its channels' taps: no reduction needed).
// Work is handed out dynamically (every item owns its outputs, so results do not depend on which
// thread runs it): on shared cores a descheduled thread then delays only the item it holds.
#include <algorithm>
#include <cstring>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "conv_depthwise.h"
#include "gemm_scratch.h"

namespace fastconv {
namespace cpu {
namespace {

struct PaddedPlane {
  int64_t Hp, Wp;
};

PaddedPlane padded_plane(const ConvParams& p) { return {p.H + p.pad_t + p.pad_b, p.W + p.pad_l + p.pad_r}; }

// P[ph, pw] = x[remap(ph - pad_t), remap(pw - pad_l)] or 0.
template <typename T>
void fill_padded(const ConvParams& p, const PaddedPlane& pp, const T* x, T* P) {
  for (int64_t ph = 0; ph < pp.Hp; ++ph) {
    T* dst = P + ph * pp.Wp;
    const int64_t ih = remap_index(ph - p.pad_t, p.H, p.mode);
    if (ih < 0) {
      std::memset(dst, 0, sizeof(T) * pp.Wp);
      continue;
    }
    const T* src = x + ih * p.W;
    for (int64_t pw = 0; pw < p.pad_l; ++pw) {
      const int64_t iw = remap_index(pw - p.pad_l, p.W, p.mode);
      dst[pw] = iw < 0 ? T(0) : src[iw];
    }
    std::memcpy(dst + p.pad_l, src, sizeof(T) * p.W);
    for (int64_t pw = p.pad_l + p.W; pw < pp.Wp; ++pw) {
      const int64_t iw = remap_index(pw - p.pad_l, p.W, p.mode);
      dst[pw] = iw < 0 ? T(0) : src[iw];
    }
  }
}

// gx[ih, iw] = sum of G[ph, pw] over the padded positions that remap to (ih, iw) (adjoint of fill_padded).
template <typename T>
void fold_padded(const ConvParams& p, const PaddedPlane& pp, const T* G, T* gx) {
  for (int64_t ih = 0; ih < p.H; ++ih) std::memcpy(gx + ih * p.W, G + (ih + p.pad_t) * pp.Wp + p.pad_l, sizeof(T) * p.W);
  for (int64_t ph = 0; ph < pp.Hp; ++ph) {
    const bool row_inside = ph >= p.pad_t && ph < p.pad_t + p.H;
    const int64_t ih = remap_index(ph - p.pad_t, p.H, p.mode);
    if (ih < 0) continue;
    for (int64_t pw = 0; pw < pp.Wp; ++pw) {
      const bool col_inside = pw >= p.pad_l && pw < p.pad_l + p.W;
      if (row_inside && col_inside) continue;
      const int64_t iw = remap_index(pw - p.pad_l, p.W, p.mode);
      if (iw >= 0) gx[ih * p.W + iw] += G[ph * pp.Wp + pw];
    }
  }
}

}  // namespace

template <typename T>
void depthwise_forward_nchw(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const PaddedPlane pp = padded_plane(p);
  const int64_t mult = p.K / p.C, RS = p.R * p.S, planes = p.N * p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* P = thread_scratch<T>(kScratchCol, size_t(pp.Hp * pp.Wp));
#pragma omp for schedule(dynamic)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      fill_padded(p, pp, x + plane * p.H * p.W, P);
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t k = c * mult + m;
        const T* wk = w + k * RS;
        const T b = bias ? bias[k] : T(0);
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          T* __restrict yr = y + ((n * p.K + k) * p.OH + oh) * p.OW;
          for (int64_t ow = 0; ow < p.OW; ++ow) yr[ow] = b;
          for (int64_t r = 0; r < p.R; ++r) {
            const T* prow = P + (oh * p.stride_h + r * p.dil_h) * pp.Wp;
            for (int64_t s = 0; s < p.S; ++s) {
              const T wv = wk[r * p.S + s];
              const T* __restrict src = prow + s * p.dil_w;
              if (p.stride_w == 1) {
#pragma omp simd
                for (int64_t ow = 0; ow < p.OW; ++ow) yr[ow] += wv * src[ow];
              } else {
                for (int64_t ow = 0; ow < p.OW; ++ow) yr[ow] += wv * src[ow * p.stride_w];
              }
            }
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_input_nchw(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const PaddedPlane pp = padded_plane(p);
  const int64_t mult = p.K / p.C, RS = p.R * p.S, planes = p.N * p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* G = thread_scratch<T>(kScratchCol, size_t(pp.Hp * pp.Wp));
#pragma omp for schedule(dynamic)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      std::memset(G, 0, sizeof(T) * pp.Hp * pp.Wp);
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t k = c * mult + m;
        const T* wk = w + k * RS;
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          const T* __restrict gr = gy + ((n * p.K + k) * p.OH + oh) * p.OW;
          for (int64_t r = 0; r < p.R; ++r) {
            T* grow = G + (oh * p.stride_h + r * p.dil_h) * pp.Wp;
            for (int64_t s = 0; s < p.S; ++s) {
              const T wv = wk[r * p.S + s];
              T* __restrict dst = grow + s * p.dil_w;
              if (p.stride_w == 1) {
#pragma omp simd
                for (int64_t ow = 0; ow < p.OW; ++ow) dst[ow] += wv * gr[ow];
              } else {
                for (int64_t ow = 0; ow < p.OW; ++ow) dst[ow * p.stride_w] += wv * gr[ow];
              }
            }
          }
        }
      }
      fold_padded(p, pp, G, gx + plane * p.H * p.W);
    }
  }
}

template <typename T>
void depthwise_backward_weight_nchw(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const PaddedPlane pp = padded_plane(p);
  const int64_t mult = p.K / p.C, RS = p.R * p.S;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* P = thread_scratch<T>(kScratchCol, size_t(pp.Hp * pp.Wp));
#pragma omp for schedule(dynamic)
    for (int64_t c = 0; c < p.C; ++c) {
      T* gwc = gw + c * mult * RS;  // taps of k = c*mult .. c*mult + mult - 1
      std::fill(gwc, gwc + mult * RS, T(0));
      for (int64_t n = 0; n < p.N; ++n) {
        fill_padded(p, pp, x + (n * p.C + c) * p.H * p.W, P);
        for (int64_t m = 0; m < mult; ++m) {
          const int64_t k = c * mult + m;
          for (int64_t r = 0; r < p.R; ++r)
            for (int64_t s = 0; s < p.S; ++s) {
              T acc = T(0);
              for (int64_t oh = 0; oh < p.OH; ++oh) {
                const T* __restrict gr = gy + ((n * p.K + k) * p.OH + oh) * p.OW;
                const T* __restrict src = P + (oh * p.stride_h + r * p.dil_h) * pp.Wp + s * p.dil_w;
                if (p.stride_w == 1) {
#pragma omp simd reduction(+ : acc)
                  for (int64_t ow = 0; ow < p.OW; ++ow) acc += gr[ow] * src[ow];
                } else {
                  for (int64_t ow = 0; ow < p.OW; ++ow) acc += gr[ow] * src[ow * p.stride_w];
                }
              }
              gwc[m * RS + r * p.S + s] += acc;
            }
        }
      }
    }
  }
}

#define FASTCONV_INSTANTIATE_DW_NCHW(T)                                                              \
  template void depthwise_forward_nchw<T>(const ConvParams&, const T*, const T*, const T*, T*);     \
  template void depthwise_backward_input_nchw<T>(const ConvParams&, const T*, const T*, T*);        \
  template void depthwise_backward_weight_nchw<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE_DW_NCHW(float)
FASTCONV_INSTANTIATE_DW_NCHW(double)

}  // namespace cpu
}  // namespace fastconv
