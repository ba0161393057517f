// Depthwise convolution, NCHW: one (image, input channel) plane at a time. The plane is copied with its
// padding (any mode, resolved by remap_index) into a per-thread buffer so the inner loops are branch-free
// and run along W (vectorised for stride 1). Planes are independent, so threads split them; the weight
// gradient is split by channel instead (each thread owns its channels' taps: no reduction needed).
// Work is handed out dynamically (every item owns its outputs, so results do not depend on which
// thread runs it): on shared cores a descheduled thread then delays only the item it holds.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../../common/denormal_guard.h"
#include "../../common/output_phase.h"
#include "../../common/parallel.h"
#include "conv_depthwise.h"
#include "conv_depthwise_planes.h"
#include "../gemm/gemm_scratch.h"

namespace fastconv {
namespace cpu {
namespace {

// The padded plane, stored as stride_w column phases: phase j holds padded columns j, j + sw, j + 2 sw, ...
// (Wq of them per row). A tap at padded column ow * sw + o then reads phase o % sw at column ow + o / sw,
// so every inner loop runs over consecutive memory and vectorises for any stride (stride 1: one phase,
// the plain padded plane). Measured on MobileNet's 3x3 stride-2 depthwise layer (8x64x112x112, 2 threads,
// with the forward's output chunks): forward 3.2 -> 2.35 ms, input gradient 4.3 -> 3.9, weight gradient
// 4.6 -> 2.8 (torch 2.0, 15.5, 2.3).
struct PaddedPlane {
  int64_t Hp, Wp, sw, Wq;
  int64_t size() const { return sw * Hp * Wq; }
};

PaddedPlane padded_plane(const ConvParams& p) {
  const int64_t Hp = p.H + p.pad_t + p.pad_b, Wp = p.W + p.pad_l + p.pad_r, sw = std::max<int64_t>(p.stride_w, 1);
  return {Hp, Wp, sw, (Wp + sw - 1) / sw};
}

// Start of padded row ph read at column offset o (o = s * dil_w): element ow is padded column ow * sw + o.
template <typename T>
T* phase_row(const PaddedPlane& pp, T* P, int64_t ph, int64_t o) {
  return P + ((o % pp.sw) * pp.Hp + ph) * pp.Wq + o / pp.sw;
}

// row[pw] = x[remap(ph - pad_t), remap(pw - pad_l)] or 0 for one padded row; false when the row is all zero.
template <typename T>
bool padded_row(const ConvParams& p, const PaddedPlane& pp, const T* x, int64_t ph, T* row) {
  const int64_t ih = remap_index(ph - p.pad_t, p.H, p.mode);
  if (ih < 0) {
    std::memset(row, 0, sizeof(T) * pp.Wp);
    return false;
  }
  const T* src = x + ih * p.W;
  for (int64_t pw = 0; pw < p.pad_l; ++pw) {
    const int64_t iw = remap_index(pw - p.pad_l, p.W, p.mode);
    row[pw] = iw < 0 ? T(0) : src[iw];
  }
  std::memcpy(row + p.pad_l, src, sizeof(T) * p.W);
  for (int64_t pw = p.pad_l + p.W; pw < pp.Wp; ++pw) {
    const int64_t iw = remap_index(pw - p.pad_l, p.W, p.mode);
    row[pw] = iw < 0 ? T(0) : src[iw];
  }
  return true;
}

// P = the padded plane of x in phases; row is a scratch row of Wp values (unused for stride 1).
template <typename T>
void fill_padded(const ConvParams& p, const PaddedPlane& pp, const T* x, T* P, T* row) {
  for (int64_t ph = 0; ph < pp.Hp; ++ph) {
    if (pp.sw == 1) {
      padded_row(p, pp, x, ph, P + ph * pp.Wq);
      continue;
    }
    padded_row(p, pp, x, ph, row);
    if (pp.sw == 2) {  // the common stride: constant-stride loads the compiler turns into permutes
      T* __restrict d0 = P + ph * pp.Wq;
      T* __restrict d1 = P + (pp.Hp + ph) * pp.Wq;
      const int64_t pairs = pp.Wp / 2;
      for (int64_t q = 0; q < pairs; ++q) {
        d0[q] = row[2 * q];
        d1[q] = row[2 * q + 1];
      }
      if (pp.Wp % 2) d0[pairs] = row[pp.Wp - 1], d1[pairs] = T(0);
      continue;
    }
    for (int64_t j = 0; j < pp.sw; ++j) {
      T* dst = P + (j * pp.Hp + ph) * pp.Wq;
      for (int64_t q = 0; q < pp.Wq; ++q) {
        const int64_t pw = q * pp.sw + j;
        dst[q] = pw < pp.Wp ? row[pw] : T(0);
      }
    }
  }
}

// Pl[ph, pw] = G's phases interleaved back into a plain padded plane (the adjoint of the phase split).
template <typename T>
void merge_phases(const PaddedPlane& pp, const T* G, T* Pl) {
  for (int64_t ph = 0; ph < pp.Hp; ++ph)
    for (int64_t j = 0; j < pp.sw; ++j) {
      const T* src = G + (j * pp.Hp + ph) * pp.Wq;
      T* dst = Pl + ph * pp.Wp;
      for (int64_t q = 0; q * pp.sw + j < pp.Wp; ++q) dst[q * pp.sw + j] = src[q];
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

// Stride 1 with rows narrower than kFlatRows (MobileNet's 14x14 and 7x7 layers): the padded plane is
// treated as one flat row. Output (oh, ow) sits at flat position t = oh * Wp + ow, and tap (r, s) reads
// P[t + r * dil_h * Wp + s * dil_w], so each tap is one long contiguous loop over
// Lf = (OH - 1) * Wp + OW positions; the Wp - OW positions past each row's end are computed and dropped
// (forward) or fed zeros (backward). Per-row loops of 14 elements left fastconv 4x slower than torch on
// 8x512x14x14.
constexpr int64_t kFlatRows = 32;

bool use_flat_plane(const ConvParams& p, const PaddedPlane& pp) {
  return pp.sw == 1 && p.stride_h == 1 && p.OW < kFlatRows && p.OH > 0 && p.OW > 0;
}

int64_t flat_len(const ConvParams& p, const PaddedPlane& pp) { return (p.OH - 1) * pp.Wp + p.OW; }

// Gyf[oh * Wp + ow] = gy[oh, ow], zeros past each row's end.
template <typename T>
void expand_rows(const ConvParams& p, const PaddedPlane& pp, const T* gy, T* Gyf) {
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    std::memcpy(Gyf + oh * pp.Wp, gy + oh * p.OW, sizeof(T) * p.OW);
    if (oh + 1 < p.OH) std::memset(Gyf + oh * pp.Wp + p.OW, 0, sizeof(T) * (pp.Wp - p.OW));
  }
}

template <typename T>
void forward_plane_flat(const ConvParams& p, const PaddedPlane& pp, const T* P, const T* wk, T b, T* Yf, T* yp) {
  const int64_t L = flat_len(p, pp);
  for (int64_t t = 0; t < L; ++t) Yf[t] = b;
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t s = 0; s < p.S; ++s) {
      const T wv = wk[r * p.S + s];
      const T* __restrict src = P + r * p.dil_h * pp.Wp + s * p.dil_w;
      T* __restrict dst = Yf;
#pragma omp simd
      for (int64_t t = 0; t < L; ++t) dst[t] += wv * src[t];
    }
  for (int64_t oh = 0; oh < p.OH; ++oh) std::memcpy(yp + oh * p.OW, Yf + oh * pp.Wp, sizeof(T) * p.OW);
}

}  // namespace

template <typename T>
void depthwise_forward_nchw(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (depthwise_3x3_registers_applies(p, sizeof(T))) return depthwise_forward_nchw_3x3(p, x, w, bias, y);
    if (depthwise_strips_applies(p, sizeof(T))) return depthwise_forward_nchw_strips(p, x, w, bias, y);
  }
#endif
  constexpr int64_t kChunk = 128 / sizeof(T);  // two AVX-512 vectors of outputs
  const PaddedPlane pp = padded_plane(p);
  const int64_t mult = p.K / p.C, RS = p.R * p.S, planes = p.N * p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* P = thread_scratch<T>(kScratchCol, size_t(pp.size()));
    T* row = thread_scratch<T>(kScratchPackA, size_t(pp.Wp));
    const bool flat = use_flat_plane(p, pp);
    T* Yf = flat ? thread_scratch<T>(kScratchPackB, size_t(flat_len(p, pp))) : nullptr;
#pragma omp for schedule(dynamic)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      fill_padded(p, pp, x + plane * p.H * p.W, P, row);
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t k = c * mult + m;
        const T* wk = w + k * RS;
        const T b = bias ? bias[k] : T(0);
        if (flat) {
          forward_plane_flat(p, pp, P, wk, b, Yf, y + (n * p.K + k) * p.OH * p.OW);
          continue;
        }
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          T* __restrict yr = y + ((n * p.K + k) * p.OH + oh) * p.OW;
          if (pp.sw == 1) {  // whole rows per tap: measured faster than the chunks below for stride 1
            for (int64_t ow = 0; ow < p.OW; ++ow) yr[ow] = b;
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const T wv = wk[r * p.S + s];
                const T* __restrict src = phase_row(pp, P, oh * p.stride_h + r * p.dil_h, s * p.dil_w);
#pragma omp simd
                for (int64_t ow = 0; ow < p.OW; ++ow) yr[ow] += wv * src[ow];
              }
            continue;
          }
          // Strided: kChunk outputs accumulate across all taps before one store.
          for (int64_t ow0 = 0; ow0 < p.OW; ow0 += kChunk) {
            const int64_t len = std::min<int64_t>(kChunk, p.OW - ow0);
            alignas(64) T acc[kChunk];
            for (int64_t i = 0; i < kChunk; ++i) acc[i] = b;
            for (int64_t r = 0; r < p.R; ++r) {
              const int64_t ph = oh * p.stride_h + r * p.dil_h;
              for (int64_t s = 0; s < p.S; ++s) {
                const T wv = wk[r * p.S + s];
                const T* __restrict src = phase_row(pp, P, ph, s * p.dil_w) + ow0;
                if (len == kChunk) {
#pragma omp simd
                  for (int64_t i = 0; i < kChunk; ++i) acc[i] += wv * src[i];
                } else {
                  for (int64_t i = 0; i < len; ++i) acc[i] += wv * src[i];
                }
              }
            }
            std::memcpy(yr + ow0, acc, sizeof(T) * len);
          }
        }
      }
    }
  }
}

namespace {

// Strided input gradient of one plane, gathered by output phases: each gx row is computed column phase by column
// phase, every phase a short stride-1 correlation of grad_output rows held in a zero-margin buffer (vectorised
// along the row), then interleaved into the row. The scatter read-modify-wrote a padded plane per tap
// (MobileNet's 64-channel 112x112 stride-2 input gradient 0.6-0.75x of torch).
template <typename T>
void backward_input_plane_phases(const ConvParams& p, const T* gy, const T* wk, T* gx, T* gyp, T* acc) {
  const int64_t sh = p.stride_h, sw = p.stride_w, M = p.S, Wb = p.OW + 2 * M, la = p.W / sw + 1;
  for (int64_t oh = 0; oh < p.OH; ++oh) {  // grad_output with M zero columns on either side of each row
    T* row = gyp + oh * Wb;
    std::fill(row, row + M, T(0));
    std::memcpy(row + M, gy + oh * p.OW, sizeof(T) * p.OW);
    std::fill(row + M + p.OW, row + Wb, T(0));
  }
  for (int64_t ih = 0; ih < p.H; ++ih) {
    const AxisPhase fr = axis_phase(ih % sh, p.pad_t, sh, p.R, p.H);
    const int64_t a = ih / sh;
    for (int64_t pw = 0; pw < sw && pw < p.W; ++pw) {
      const AxisPhase fc = axis_phase(pw, p.pad_l, sw, p.S, p.W);
      T* __restrict ac = acc + pw * la;
      std::fill(ac, ac + fc.count, T(0));
      for (int64_t t = 0; t < fr.taps; ++t) {
        const int64_t oh = a + fr.q - t;
        if (oh < 0 || oh >= p.OH) continue;
        const T* wr = wk + (fr.r0 + sh * t) * p.S;
        for (int64_t u = 0; u < fc.taps; ++u) {
          const T wv = wr[fc.r0 + sw * u];
          const T* __restrict src = gyp + oh * Wb + M + fc.q - u;
#pragma omp simd
          for (int64_t b = 0; b < fc.count; ++b) ac[b] += wv * src[b];
        }
      }
    }
    T* __restrict gxr = gx + ih * p.W;
    if (sw == 2) {  // the two column phases interleaved
      const int64_t pairs = p.W / 2;
#pragma omp simd
      for (int64_t b = 0; b < pairs; ++b) gxr[2 * b] = acc[b], gxr[2 * b + 1] = acc[la + b];
      if (p.W % 2) gxr[p.W - 1] = acc[pairs];
    } else {
      for (int64_t iw = 0; iw < p.W; ++iw) gxr[iw] = acc[(iw % sw) * la + iw / sw];
    }
  }
}

// The phases' reads stay inside the zero-margin row buffer: column b + q - u of grad_output within [-S, OW + S).
bool phases_fit(const ConvParams& p) {
  for (int64_t pw = 0; pw < p.stride_w; ++pw) {
    const AxisPhase fc = axis_phase(pw, p.pad_l, p.stride_w, p.S, p.W);
    if (fc.count > 0 && (fc.q - (fc.taps - 1) < -p.S || fc.count - 1 + fc.q >= p.OW + p.S)) return false;
  }
  return true;
}

}  // namespace

template <typename T>
void depthwise_backward_input_nchw(const ConvParams& p, const T* gy, const T* w, T* gx) {
  if ((p.stride_h > 1 || p.stride_w > 1) && p.K == p.C && p.mode == PaddingMode::Zeros && p.dil_h == 1 &&
      p.dil_w == 1 && phases_fit(p)) {
    const int64_t RS = p.R * p.S, planes = p.N * p.C;
#pragma omp parallel num_threads(p.num_threads)
    {
      DenormalGuard guard;
      T* gyp = thread_scratch<T>(kScratchPackA, size_t(p.OH * (p.OW + 2 * p.S)));
      T* acc = thread_scratch<T>(kScratchPackB, size_t(p.stride_w * (p.W / p.stride_w + 1)));
#pragma omp for schedule(dynamic)
      for (int64_t plane = 0; plane < planes; ++plane)
        backward_input_plane_phases(p, gy + plane * p.OH * p.OW, w + (plane % p.C) * RS, gx + plane * p.H * p.W,
                                    gyp, acc);
    }
    return;
  }
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (p.stride_h == 1 && depthwise_3x3_registers_applies(p, sizeof(T)))
      return depthwise_backward_input_nchw_3x3(p, gy, w, gx);
  }
#endif
  // Stride 1, zero padding within the kernel's reach, one output channel per input channel: the forward of
  // grad_output padded by (R-1)*dil - pad, with the kernel flipped (each gx row accumulated in cache and written
  // once; the scatter below read-modify-writes the padded plane per tap and then folds it: MobileNet's 32-channel
  // 112x112 input gradient 0.8-0.9x of torch that way).
  const bool gather = p.stride_h == 1 && p.stride_w == 1 && p.K == p.C && p.mode == PaddingMode::Zeros &&
                      std::max(p.pad_t, p.pad_b) <= (p.R - 1) * p.dil_h &&
                      std::max(p.pad_l, p.pad_r) <= (p.S - 1) * p.dil_w;
  if (gather) {
    const int64_t RS = p.R * p.S;
    T* wf = thread_scratch<T>(kScratchWeight, size_t(p.C * RS));
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t t = 0; t < RS; ++t) wf[c * RS + t] = w[c * RS + RS - 1 - t];
    ConvParams q = p;
    q.H = p.OH, q.W = p.OW, q.OH = p.H, q.OW = p.W;
    q.pad_t = (p.R - 1) * p.dil_h - p.pad_t, q.pad_b = (p.R - 1) * p.dil_h - p.pad_b;
    q.pad_l = (p.S - 1) * p.dil_w - p.pad_l, q.pad_r = (p.S - 1) * p.dil_w - p.pad_r;
    return depthwise_forward_nchw(q, gy, static_cast<const T*>(wf), static_cast<const T*>(nullptr), gx);
  }
  const PaddedPlane pp = padded_plane(p);
  const int64_t mult = p.K / p.C, RS = p.R * p.S, planes = p.N * p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* G = thread_scratch<T>(kScratchCol, size_t(pp.size()));
    T* plain = pp.sw == 1 ? G : thread_scratch<T>(kScratchPackA, size_t(pp.Hp * pp.Wp));
    const bool flat = use_flat_plane(p, pp);
    T* Gyf = flat ? thread_scratch<T>(kScratchPackB, size_t(flat_len(p, pp))) : nullptr;
#pragma omp for schedule(dynamic)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      std::memset(G, 0, sizeof(T) * pp.size());
      for (int64_t m = 0; m < mult; ++m) {
        const int64_t k = c * mult + m;
        const T* wk = w + k * RS;
        if (flat) {  // the adjoint of forward_plane_flat
          expand_rows(p, pp, gy + (n * p.K + k) * p.OH * p.OW, Gyf);
          const int64_t L = flat_len(p, pp);
          for (int64_t r = 0; r < p.R; ++r)
            for (int64_t s = 0; s < p.S; ++s) {
              const T wv = wk[r * p.S + s];
              T* __restrict dst = G + r * p.dil_h * pp.Wp + s * p.dil_w;
              const T* __restrict src = Gyf;
#pragma omp simd
              for (int64_t t = 0; t < L; ++t) dst[t] += wv * src[t];
            }
          continue;
        }
        for (int64_t oh = 0; oh < p.OH; ++oh) {
          const T* __restrict gr = gy + ((n * p.K + k) * p.OH + oh) * p.OW;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ph = oh * p.stride_h + r * p.dil_h;
            for (int64_t s = 0; s < p.S; ++s) {
              const T wv = wk[r * p.S + s];
              T* __restrict dst = phase_row(pp, G, ph, s * p.dil_w);
#pragma omp simd
              for (int64_t ow = 0; ow < p.OW; ++ow) dst[ow] += wv * gr[ow];
            }
          }
        }
      }
      if (pp.sw > 1) merge_phases(pp, G, plain);
      fold_padded(p, pp, plain, gx + plane * p.H * p.W);
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
    T* P = thread_scratch<T>(kScratchCol, size_t(pp.size()));
    T* row = thread_scratch<T>(kScratchPackA, size_t(pp.Wp));
    const bool flat = use_flat_plane(p, pp);
    T* Gyf = flat ? thread_scratch<T>(kScratchPackB, size_t(flat_len(p, pp))) : nullptr;
#pragma omp for schedule(dynamic)
    for (int64_t c = 0; c < p.C; ++c) {
      T* gwc = gw + c * mult * RS;  // taps of k = c*mult .. c*mult + mult - 1
      std::fill(gwc, gwc + mult * RS, T(0));
      for (int64_t n = 0; n < p.N; ++n) {
        if (n + 1 < p.N) {  // the next image's planes of this channel (see conv_depthwise_planes.h): MobileNet's
                            // 64x112x112 stride-2 forward+backward 7.03 -> 6.60 ms, torch 7.22
          prefetch_values(x + ((n + 1) * p.C + c) * p.H * p.W, p.H * p.W);
          prefetch_values(gy + ((n + 1) * p.K + c * mult) * p.OH * p.OW, mult * p.OH * p.OW);
        }
        fill_padded(p, pp, x + (n * p.C + c) * p.H * p.W, P, row);
        for (int64_t m = 0; m < mult; ++m) {
          const int64_t k = c * mult + m;
          if (flat) {  // flat rows as in forward_plane_flat; the zeros past each row's end add nothing
            expand_rows(p, pp, gy + (n * p.K + k) * p.OH * p.OW, Gyf);
            const int64_t L = flat_len(p, pp);
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const T* __restrict src = P + r * p.dil_h * pp.Wp + s * p.dil_w;
                const T* __restrict g = Gyf;
                T acc = T(0);
#pragma omp simd reduction(+ : acc)
                for (int64_t t = 0; t < L; ++t) acc += g[t] * src[t];
                gwc[m * RS + r * p.S + s] += acc;
              }
            continue;
          }
          for (int64_t r = 0; r < p.R; ++r)
            for (int64_t s = 0; s < p.S; ++s) {
              T acc = T(0);
              for (int64_t oh = 0; oh < p.OH; ++oh) {
                const T* __restrict gr = gy + ((n * p.K + k) * p.OH + oh) * p.OW;
                const T* __restrict src = phase_row(pp, P, oh * p.stride_h + r * p.dil_h, s * p.dil_w);
#pragma omp simd reduction(+ : acc)
                for (int64_t ow = 0; ow < p.OW; ++ow) acc += gr[ow] * src[ow];
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
