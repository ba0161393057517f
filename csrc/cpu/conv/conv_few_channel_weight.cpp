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
#include "conv_weight_tiles.h"

namespace fastconv {
namespace cpu {

#if defined(__AVX512F__)
namespace {

using namespace weight_tiles;

constexpr int64_t kChunks = 16;  // chunks of work items, each with its own partial sums
constexpr int64_t kMaxPartialBytes = int64_t(64) << 20;  // all chunks' partials together, where more than 2

struct Plan {
  int64_t Cg, Kg, J;        // input / output channels per group; taps per kernel row (S*Cg)
  int64_t Wp;               // padded input row, in pixels: (OW - 1)*sw + S
  int64_t band_rows, bands, in_rows;
  int64_t kblocks;          // output-channel blocks (vector_blocks)
};

template <typename T>
Plan make_plan(const ConvParams& p) {
  constexpr int64_t L = Zmm<T>::L;
  Plan pl{};
  pl.Cg = p.C_per_group(), pl.Kg = p.K_per_group(), pl.J = p.S * pl.Cg;
  pl.Wp = (p.OW - 1) * p.stride_w + p.S;
  pl.kblocks = vector_blocks(pl.Kg / L);
  // Bands of about 1024 output pixels (the band's grad_output, read once per kernel row and tile, stays in L2),
  // fewer rows where that leaves under kChunks items (not the thread count: the partition fixes the sums).
  const int64_t want = std::max<int64_t>(1, p.N * p.groups * p.OH / kChunks);
  pl.band_rows = std::clamp<int64_t>(std::min<int64_t>(1024 / std::max<int64_t>(p.OW, 1), want), 1, p.OH);
  pl.bands = (p.OH + pl.band_rows - 1) / pl.band_rows;
  pl.in_rows = band_input_rows(p, pl.band_rows);
  return pl;
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
  gather_padded_rows(p, pl.Cg, pl.Wp, x, n, g, oh0 * p.stride_h - p.pad_t, band_input_rows(p, rows), xb);
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
  const int64_t vectors = pl.Kg / L;
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t b = 0; b < pl.kblocks; ++b) {
      const auto [v0, kv] = block_vectors(vectors, pl.kblocks, b);
      const int64_t tgroups = tap_groups(pl.J, kv);
      for (int64_t tg = 0; tg < tgroups; ++tg) {
        const auto [j0, j1] = group_taps(pl.J, tgroups, tg);
        const PixelWalk w{1, rows, p.OW, 0, p.OW * gy_pix, gy_pix, 0, p.stride_h * pl.Wp * pl.Cg, p.stride_w * pl.Cg};
        pick_tile<T>(kv, j1 - j0)(w, gb + v0 * L, xb + r * p.dil_h * pl.Wp * pl.Cg + j0,
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
  T* const rsc = thread_scratch<T>(kScratchPackA, size_t(part_size));             // the sums as (K, (r, s, c))
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
    weight_from_tap_sums(p, pl.Cg, pl.Kg, parts, rsc, gw);
  }
#else
  (void)p, (void)x, (void)gy, (void)gw;
#endif
}

template void conv_backward_weight_few_channels<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_few_channels<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
