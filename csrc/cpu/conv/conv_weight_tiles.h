// The register tile and input gathering shared by the weight-gradient kernels that put output channels across the
// vector lanes and broadcast input taps (conv_few_channel_weight.cpp, conv_many_channel_weight.cpp):
//   gw[k, c, r, s] = sum over n, oh, ow of gy[n, k, oh, ow] * xpad[n, c, oh*sh + r*dh, ow*sw + s]
// With the input's padded rows gathered as (column, channel), the S*Cg taps (s, c) of kernel row r for output
// column ow are S*Cg consecutive values from ow*sw*Cg on (dilation 1 along the width), so a tile of TG
// consecutive taps x KV vectors of output channels loads KV grad_output vectors and broadcasts TG input values per
// output pixel: KV*TG FMAs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "../../common/conv_params.h"
#include "../transpose.h"

#if defined(__AVX512F__)
#include "../gemm/gemm_microkernel.h"  // Zmm<T>
#endif

namespace fastconv {
namespace cpu {
namespace weight_tiles {

#if defined(__AVX512F__)
constexpr int kMaxTileVectors = 4;  // output-channel vectors per tile

// Taps per tile for KV output-channel vectors: KV*TG accumulators + KV grad_output vectors + a broadcast <= 32.
constexpr int max_taps(int kv) { return kv == 1 ? 16 : kv == 2 ? 14 : kv == 3 ? 9 : 6; }

// How a group's output-channel vectors and a kernel row's J taps are cut into tiles: blocks of vectors as even as
// whole vectors allow, each kernel row's taps in even groups of at most max_taps(kv).
inline int64_t vector_blocks(int64_t vectors) { return (vectors + kMaxTileVectors - 1) / kMaxTileVectors; }

// Vectors [v0, v0 + kv) of block b of `blocks`: {v0, kv}.
inline std::pair<int64_t, int64_t> block_vectors(int64_t vectors, int64_t blocks, int64_t b) {
  const int64_t v0 = vectors * b / blocks;
  return {v0, vectors * (b + 1) / blocks - v0};
}

inline int64_t tap_groups(int64_t J, int64_t kv) { return (J + max_taps(int(kv)) - 1) / max_taps(int(kv)); }

// Taps [j0, j1) of group t of `groups`: {j0, j1}.
inline std::pair<int64_t, int64_t> group_taps(int64_t J, int64_t groups, int64_t t) {
  return {J * t / groups, J * (t + 1) / groups};
}

// The output pixels a tile runs over: images x rows x cols, grad_output and input advancing by their own strides
// per image, row and pixel.
struct PixelWalk {
  int64_t images, rows, cols;
  int64_t gy_img, gy_row, gy_pix;
  int64_t x_img, x_row, x_pix;
};

// part[t*part_tap + v*L + l] += sum over the pixels of w of gy[v*L + l] * x[t]. One cache line of pf is prefetched
// per pixel, the first pf_lines pixels (the next item's grad_output, which otherwise streams from memory in its
// first pass).
template <typename T, int KV, int TG>
void tap_tile(const PixelWalk& w, const T* __restrict gy, const T* __restrict x, T* part, int64_t part_tap,
              const char* pf, int64_t pf_lines) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  V acc[TG][KV];
#pragma GCC unroll 16
  for (int t = 0; t < TG; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) acc[t][v] = Z::zero(), __builtin_prefetch(part + t * part_tap + v * Z::L, 1, 3);
  for (int64_t m = 0; m < w.images; ++m)
    for (int64_t i = 0; i < w.rows; ++i) {
      const T* g = gy + m * w.gy_img + i * w.gy_row;
      const T* xr = x + m * w.x_img + i * w.x_row;
      for (int64_t q = 0; q < w.cols; ++q, g += w.gy_pix, xr += w.x_pix) {
        if (pf_lines > 0) __builtin_prefetch(pf, 0, 2), pf += 64, --pf_lines;
        V gv[KV];
#pragma GCC unroll 4
        for (int v = 0; v < KV; ++v) gv[v] = Z::load(g + v * Z::L);
#pragma GCC unroll 16
        for (int t = 0; t < TG; ++t) {
          const V b = Z::set1(xr[t]);
#pragma GCC unroll 4
          for (int v = 0; v < KV; ++v) acc[t][v] = Z::fma(b, gv[v], acc[t][v]);
        }
      }
    }
#pragma GCC unroll 16
  for (int t = 0; t < TG; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) {
      T* dst = part + t * part_tap + v * Z::L;
      Z::store(dst, Z::add(Z::load(dst), acc[t][v]));
    }
}

template <typename T>
using TileFn = void (*)(const PixelWalk&, const T*, const T*, T*, int64_t, const char*, int64_t);

template <typename T, int KV, int TG = max_taps(KV)>
TileFn<T> pick_taps(int64_t tg) {
  if constexpr (TG > 1) {
    if (tg < TG) return pick_taps<T, KV, TG - 1>(tg);
  }
  return tap_tile<T, KV, TG>;
}

template <typename T>
TileFn<T> pick_tile(int64_t kv, int64_t tg) {
  switch (kv) {
    case 1: return pick_taps<T, 1>(tg);
    case 2: return pick_taps<T, 2>(tg);
    case 3: return pick_taps<T, 3>(tg);
    default: return pick_taps<T, 4>(tg);
  }
}

#endif

// Padded input rows [ih0, ih0 + rows) of image n, group g into xb as (rows, Wp, Cg): column b holds input column
// b - pad_l remapped by the padding mode, or zeros (Wp columns from padded column 0).
template <typename T>
void gather_padded_rows(const ConvParams& p, int64_t Cg, int64_t Wp, const T* x, int64_t n, int64_t g, int64_t ih0,
                        int64_t rows, T* xb) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t c_stride = nhwc ? 1 : p.H * p.W, w_stride = nhwc ? p.C : 1;
  for (int64_t a = 0; a < rows; ++a) {
    T* dst = xb + a * Wp * Cg;
    const int64_t ih = remap_index(ih0 + a, p.H, p.mode);
    if (ih < 0) {
      std::fill(dst, dst + Wp * Cg, T(0));
      continue;
    }
    const T* src = nhwc ? x + ((n * p.H + ih) * p.W) * p.C + g * Cg
                        : x + ((n * p.C + g * Cg) * p.H + ih) * p.W;
    // Interior columns (input columns 0 .. W - 1) in one copy or interleave, the padding columns one by one.
    const int64_t lo = std::clamp<int64_t>(p.pad_l, 0, Wp), hi = std::clamp<int64_t>(p.pad_l + p.W, lo, Wp);
    const T* in = src + (lo - p.pad_l) * w_stride;
    if (nhwc && Cg == p.C)
      std::memcpy(dst + lo * Cg, in, sizeof(T) * size_t((hi - lo) * Cg));
    else if (nhwc)
      for (int64_t b = lo; b < hi; ++b) std::memcpy(dst + b * Cg, in + (b - lo) * w_stride, sizeof(T) * size_t(Cg));
    else if (!interleave_few_rows(Cg, hi - lo, in, c_stride, dst + lo * Cg))  // NCHW: (Cg, columns) transposed
      transpose_serial(Cg, hi - lo, in, c_stride, int64_t(1), dst + lo * Cg, Cg);
    for (int64_t b = lo > 0 ? 0 : hi; b < Wp; b = b + 1 == lo ? hi : b + 1) {  // [0, lo) and [hi, Wp)
      const int64_t iw = remap_index(b - p.pad_l, p.W, p.mode);
      for (int64_t c = 0; c < Cg; ++c) dst[b * Cg + c] = iw < 0 ? T(0) : src[iw * w_stride + c * c_stride];
    }
  }
}

// gw (K, Cg, R, S) from the tiles' sums part ((g, r, s, c), k), through rsc (K, (r, s, c)): two tiled transposes, as
// omp for loops of the enclosing team (or serial outside a parallel region). Element by element, the many-channel
// kernel spent 14% of its time reading part with a stride of Kg here.
template <typename T>
void weight_from_tap_sums(const ConvParams& p, int64_t Cg, int64_t Kg, const T* part, T* rsc, T* gw) {
  constexpr int64_t kRowBlock = 32;
  const int64_t RS = p.R * p.S, RSC = RS * Cg, row_blocks = (RSC + kRowBlock - 1) / kRowBlock;
#pragma omp for schedule(static)
  for (int64_t i = 0; i < p.groups * row_blocks; ++i) {
    const int64_t g = i / row_blocks, r0 = (i % row_blocks) * kRowBlock;
    transpose_serial(std::min(kRowBlock, RSC - r0), Kg, part + (g * RSC + r0) * Kg, Kg, int64_t(1),
                     rsc + g * Kg * RSC + r0, RSC);
  }
#pragma omp for schedule(static)
  for (int64_t k = 0; k < p.K; ++k) transpose_serial(RS, Cg, rsc + k * RSC, Cg, int64_t(1), gw + k * Cg * RS, RS);
}

}  // namespace weight_tiles
}  // namespace cpu
}  // namespace fastconv
