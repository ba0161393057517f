// Weight gradient for few input channels per group and many output channels (an image network's first layer:
// RGB in, 64 or 96 channels out), the output channels across the vector lanes:
//   gw[k, c, r, s] = sum over n, oh, ow of gy[n, k, oh, ow] * xpad[n, c, oh*sh + r*dh, ow*sw + s]
// Each work item (image, group, band of output rows) gathers its padded input rows with the pixels' Cg channels
// adjacent (any layout and padding mode). With dilation 1 along the width, the S*Cg taps (s, c) of kernel row r
// for output column ow are then S*Cg consecutive values, from ow*sw*Cg on. A tile holds KV vectors of output
// channels x TG consecutive taps in registers and, per output pixel, loads KV grad_output vectors (in place for
// channels_last, from a transposed band for NCHW) and broadcasts TG input values: KV*TG FMAs. im2col + GEMM built
// a column matrix of only C*R*S columns there and spent as long packing grad_output as multiplying.
// Partial sums per chunk of work items, added in chunk order: the same result for any thread count.
#include "conv_few_channel_weight.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "../gemm/gemm_scratch.h"
#include "../transpose.h"
#include "conv_depthwise.h"  // is_depthwise

#if defined(__AVX512F__)
#include "../gemm/gemm_microkernel.h"  // Zmm<T>
#endif

namespace fastconv {
namespace cpu {

#if defined(__AVX512F__)
namespace {

constexpr int kMaxVectors = 4;  // output-channel vectors per tile
constexpr int64_t kChunks = 16;  // chunks of work items, each with its own partial sums
constexpr int64_t kMaxPartialBytes = int64_t(64) << 20;  // all chunks' partials together, where more than 2

// Taps per tile for KV output-channel vectors: KV*TG accumulators + KV grad_output vectors + a broadcast <= 32.
constexpr int max_taps(int kv) { return kv == 1 ? 16 : kv == 2 ? 14 : kv == 3 ? 9 : 6; }

struct Plan {
  int64_t Cg, Kg, J;        // input / output channels per group; taps per kernel row (S*Cg)
  int64_t Wp;               // padded input row, in pixels: (OW - 1)*sw + S
  int64_t band_rows, bands, in_rows;
  int64_t kblocks;          // output-channel blocks of at most kMaxVectors vectors
};

template <typename T>
Plan make_plan(const ConvParams& p) {
  constexpr int64_t L = Zmm<T>::L;
  Plan pl{};
  pl.Cg = p.C_per_group(), pl.Kg = p.K_per_group(), pl.J = p.S * pl.Cg;
  pl.Wp = (p.OW - 1) * p.stride_w + p.S;
  pl.kblocks = (pl.Kg / L + kMaxVectors - 1) / kMaxVectors;
  // Bands of about 1024 output pixels (the band's grad_output, read once per kernel row and tile, stays in L2),
  // fewer rows where that leaves under kChunks items (not the thread count: the partition fixes the sums).
  const int64_t want = std::max<int64_t>(1, p.N * p.groups * p.OH / kChunks);
  pl.band_rows = std::clamp<int64_t>(std::min<int64_t>(1024 / std::max<int64_t>(p.OW, 1), want), 1, p.OH);
  pl.bands = (p.OH + pl.band_rows - 1) / pl.band_rows;
  pl.in_rows = band_input_rows(p, pl.band_rows);
  return pl;
}

// part[t*part_tap + v*L + l] += sum over rows x cols output pixels of gy[v*L + l] * x[t], both advancing per
// pixel (gy_pix, x_pix) and per row (gy_row, x_row). One cache line of pf is prefetched per pixel, the first
// pf_lines pixels (the next item's grad_output, which otherwise streams from memory in its first pass).
template <typename T, int KV, int TG>
void tap_tile(int64_t rows, int64_t cols, const T* __restrict gy, int64_t gy_row, int64_t gy_pix,
              const T* __restrict x, int64_t x_row, int64_t x_pix, T* part, int64_t part_tap, const char* pf,
              int64_t pf_lines) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  V acc[TG][KV];
#pragma GCC unroll 16
  for (int t = 0; t < TG; ++t)
#pragma GCC unroll 4
    for (int v = 0; v < KV; ++v) acc[t][v] = Z::zero();
  for (int64_t i = 0; i < rows; ++i) {
    const T* g = gy + i * gy_row;
    const T* xr = x + i * x_row;
    for (int64_t q = 0; q < cols; ++q, g += gy_pix, xr += x_pix) {
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
using TileFn = void (*)(int64_t, int64_t, const T*, int64_t, int64_t, const T*, int64_t, int64_t, T*, int64_t,
                        const char*, int64_t);

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

// Padded input rows [ih0, ih0 + rows) of image n, group g into xb as (rows, Wp, Cg): column b holds input column
// b - pad_l remapped by the padding mode, or zeros.
template <typename T>
void gather_rows(const ConvParams& p, const Plan& pl, const T* x, int64_t n, int64_t g, int64_t ih0, int64_t rows,
                 T* xb) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t c_stride = nhwc ? 1 : p.H * p.W, w_stride = nhwc ? p.C : 1;
  for (int64_t a = 0; a < rows; ++a) {
    T* dst = xb + a * pl.Wp * pl.Cg;
    const int64_t ih = remap_index(ih0 + a, p.H, p.mode);
    if (ih < 0) {
      std::fill(dst, dst + pl.Wp * pl.Cg, T(0));
      continue;
    }
    const T* src = nhwc ? x + ((n * p.H + ih) * p.W) * p.C + g * pl.Cg
                        : x + ((n * p.C + g * pl.Cg) * p.H + ih) * p.W;
    // Interior columns (input columns 0 .. W - 1) in one copy or interleave, the padding columns one by one.
    const int64_t lo = std::clamp<int64_t>(p.pad_l, 0, pl.Wp), hi = std::clamp<int64_t>(p.pad_l + p.W, lo, pl.Wp);
    const T* in = src + (lo - p.pad_l) * w_stride;
    if (nhwc && pl.Cg == p.C)
      std::memcpy(dst + lo * pl.Cg, in, sizeof(T) * size_t((hi - lo) * pl.Cg));
    else if (nhwc || !interleave_few_rows(pl.Cg, hi - lo, in, c_stride, dst + lo * pl.Cg))
      for (int64_t b = lo; b < hi; ++b)
        for (int64_t c = 0; c < pl.Cg; ++c) dst[b * pl.Cg + c] = in[(b - lo) * w_stride + c * c_stride];
    for (int64_t b = lo > 0 ? 0 : hi; b < pl.Wp; b = b + 1 == lo ? hi : b + 1) {  // [0, lo) and [hi, Wp)
      const int64_t iw = remap_index(b - p.pad_l, p.W, p.mode);
      for (int64_t c = 0; c < pl.Cg; ++c) dst[b * pl.Cg + c] = iw < 0 ? T(0) : src[iw * w_stride + c * c_stride];
    }
  }
}

// Adds work item `item` (image, group, band of output rows) into part: gathers the band's padded input rows
// into xb and, for NCHW, its grad_output as (pixels, Kg) into gyb; then every (kernel row, output-channel block,
// tap group) tile runs over the band's pixels.
template <typename T>
void accumulate_item(const ConvParams& p, const Plan& pl, const T* x, const T* gy, int64_t item, T* xb, T* gyb,
                     T* part) {
  constexpr int64_t L = Zmm<T>::L;
  const int64_t band = item % pl.bands, g = (item / pl.bands) % p.groups, n = item / (pl.bands * p.groups);
  const int64_t oh0 = band * pl.band_rows, rows = std::min(p.OH, oh0 + pl.band_rows) - oh0;
  gather_rows(p, pl, x, n, g, oh0 * p.stride_h - p.pad_t, band_input_rows(p, rows), xb);
  const T* gb;
  int64_t gy_pix;
  const char* pf = nullptr;  // the next band's grad_output (channels_last, one group: contiguous), into L2
  int64_t pf_lines = 0;
  if (p.layout == Layout::NHWC) {
    gb = gy + (n * p.OH + oh0) * p.OW * p.K + g * pl.Kg, gy_pix = p.K;
    const int64_t next = (n * p.OH + oh0 + rows) * p.OW * p.K;
    const int64_t end = std::min(p.N * p.OH * p.OW * p.K, next + rows * p.OW * p.K);
    if (p.groups == 1) pf = reinterpret_cast<const char*>(gy + next), pf_lines = (end - next) * int64_t(sizeof(T)) / 64;
  } else {
    transpose_serial(pl.Kg, rows * p.OW, gy + ((n * p.K + g * pl.Kg) * p.OH + oh0) * p.OW, p.OH * p.OW, int64_t(1),
                     gyb, pl.Kg);
    gb = gyb, gy_pix = pl.Kg;
  }
  // Output-channel blocks as even as whole vectors allow, the taps of a kernel row in even groups.
  const int64_t vectors = pl.Kg / L;
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t b = 0; b < pl.kblocks; ++b) {
      const int64_t v0 = vectors * b / pl.kblocks, kv = vectors * (b + 1) / pl.kblocks - v0;
      const int64_t tgroups = (pl.J + max_taps(int(kv)) - 1) / max_taps(int(kv));
      for (int64_t tg = 0; tg < tgroups; ++tg) {
        const int64_t j0 = pl.J * tg / tgroups, j1 = pl.J * (tg + 1) / tgroups;
        pick_tile<T>(kv, j1 - j0)(rows, p.OW, gb + v0 * L, p.OW * gy_pix, gy_pix,
                                  xb + r * p.dil_h * pl.Wp * pl.Cg + j0, p.stride_h * pl.Wp * pl.Cg, p.stride_w * pl.Cg,
                                  part + ((g * p.R + r) * pl.J + j0) * pl.Kg + v0 * L, pl.Kg, pf, pf_lines);
        const int64_t done = std::min(pf_lines, rows * p.OW);
        pf += done * 64, pf_lines -= done;
      }
    }
}

}  // namespace
#endif

bool use_few_channel_weight(const ConvParams& p, int64_t elem_size) {
#if defined(__AVX512F__)
  const int64_t L = 64 / elem_size, Cg = p.C_per_group(), Kg = p.K_per_group();
  // Measured against im2col + GEMM, Winograd, the implicit channels_last kernel and conv_direct_small_weight.cpp
  // (2 threads, Zen 4, the weight gradient alone, benchmarks' zoo): 1.1-3x faster on every layer with up to 16
  // channels per group (VGG-16's 3 -> 64 on 224x224 2.6x channels_last, 1.35x NCHW; MNIST's 1 -> 16 3x; the
  // ResNet stem 1.7x / 1.35x; 16 -> 32 5x5 1.1-1.3x); 32 channels about even, 64 and more 0.6-0.9x and worse.
  // Depthwise layers keep their own kernels.
  return p.dil_w == 1 && Kg % L == 0 && Cg <= 16 && !is_depthwise(p);
#else
  (void)p, (void)elem_size;
  return false;
#endif
}

template <typename T>
void conv_backward_weight_few_channels(const ConvParams& p, const T* x, const T* gy, T* gw) {
#if defined(__AVX512F__)
  const Plan pl = make_plan<T>(p);
  const int64_t items = p.N * p.groups * pl.bands;
  // Items in a fixed number of chunks (whatever the thread count), each summing into its own partial, added in
  // chunk order at the end: the result does not depend on the threads or the schedule.
  // (Fewer chunks where their partials would pass kMaxPartialBytes: a 1-d kernel of thousands of taps.)
  const int64_t part_size = p.groups * p.R * pl.J * pl.Kg;  // ((g, r, tap j), k)
  const int64_t affordable = kMaxPartialBytes / std::max<int64_t>(1, part_size * int64_t(sizeof(T)));
  const int64_t chunks = std::min<int64_t>(items, std::clamp<int64_t>(affordable, 2, kChunks));
  T* const parts = thread_scratch<T>(kScratchWeight, size_t(chunks * part_size));  // the calling thread's, reused
  const int nt = int(std::clamp<int64_t>(p.num_threads, 1, chunks));
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    T* xb = thread_scratch<T>(kScratchCol, size_t(pl.in_rows * pl.Wp * pl.Cg));
    T* gyb = p.layout == Layout::NHWC ? nullptr : thread_scratch<T>(kScratchAcc, size_t(pl.band_rows * p.OW * pl.Kg));
#pragma omp for schedule(dynamic)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      T* part = parts + ch * part_size;
      std::fill(part, part + part_size, T(0));
      for (int64_t item = items * ch / chunks; item < items * (ch + 1) / chunks; ++item)
        accumulate_item(p, pl, x, gy, item, xb, gyb, part);
    }
    // (the implicit barriers of these loops: every partial is complete, then every sum)
#pragma omp for schedule(static)
    for (int64_t i = 0; i < part_size; ++i) {  // the chunks' partials, in chunk order, into chunk 0's
      T acc = parts[i];
      for (int64_t ch = 1; ch < chunks; ++ch) acc += parts[ch * part_size + i];
      parts[i] = acc;
    }
#pragma omp for schedule(static)
    for (int64_t e = 0; e < p.K * pl.Cg * p.R * p.S; ++e) {  // into gw's (K, Cg, R, S) order
      const int64_t s = e % p.S, r = (e / p.S) % p.R, c = (e / (p.S * p.R)) % pl.Cg, k = e / (p.S * p.R * pl.Cg);
      const int64_t g = k / pl.Kg;
      gw[e] = parts[((g * p.R + r) * pl.J + s * pl.Cg + c) * pl.Kg + k % pl.Kg];
    }
  }
#else
  (void)p, (void)x, (void)gy, (void)gw;
#endif
}

template void conv_backward_weight_few_channels<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_few_channels<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
