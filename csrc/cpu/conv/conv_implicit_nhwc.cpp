// NHWC forward without a column matrix (direct convolution on the GEMM micro-kernel, "implicit GEMM"), and
// the input gradient as the same forward on grad_output, one output phase of gx at a time (phase_problem):
//   y[n, oh, ow, g*Kg + k] = bias + sum_{r,s,c} xp[oh*sh + r*dh, ow*sw + s*dw, c] * w[g*Kg + k, c, r, s]
// where xp is a band of input rows of one group's channels, padded (zeros or the padding mode's values) into a
// thread's scratch so every tap of every pixel is an in-bounds read. A tile of MR output pixels x NR output
// channels runs the micro-kernel over all R*S taps and all Cg channels with its accumulators in registers
// (MicroKernel::run_taps): consecutive pixels' operands are stride_w pixels apart in xp, and each tap is a
// fixed offset. Compared with im2col + GEMM this copies the input about once instead of R*S/(sh*sw) times,
// packs the weight once per call instead of once per band, and writes each output once.
// Threads take (job, image, group, band of output rows, group of column panels) items dynamically, the jobs
// being the forward or the input gradient's phases; every output element belongs to one item (race-free,
// deterministic).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "../../common/denormal_guard.h"
#include "../../common/output_phase.h"
#include "../../common/parallel.h"
#include "conv_implicit_nhwc.h"
#include "../gemm/gemm.h"  // kStreamBytes
#include "../gemm/gemm_microkernel.h"
#include "../gemm/gemm_scratch.h"
#include "../transpose.h"

namespace fastconv {
namespace cpu {
namespace {

// One column panel of the packed weight (all taps, all channels of a group) is re-read by every tile of a
// band, so it should stay in L2 (2 MB here; 1 MB leaves room for the band of input).
constexpr int64_t kMaxPanelBytes = int64_t(1) << 20;
constexpr int64_t kMaxBandRows = 8;

constexpr int64_t kMaxBandBytes = int64_t(16) << 20;

// Columns of a padded band: the input columns the output row reads, padding included.
int64_t padded_width(const ConvParams& p) { return (p.OW - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1; }

// Input rows a band of `band` output rows reads.

// Row stride, in elements, of one padded pixel: Cg, moved off a 1 KB multiple of the pixel-to-pixel step
// (stride_w pixels), which would crowd the 14 pixels a tile broadcasts from into a few L1 sets.
int64_t pixel_stride(const ConvParams& p, int64_t elem_size) {
  const int64_t cg = p.C_per_group();
  return broadcast_rows_alias(p.stride_w * cg, elem_size) ? cg + 64 / elem_size : cg;
}

// dst[(t*Cg + c)*NR + jj] = src[jj*depth + c*RS + t] for jj < nr, c < Cg, t < RS (depth = Cg*RS): one panel of
// NR rows of a (K, Cg, R, S) weight, zeros past nr. Floats in 16-channel, 16-row blocks go in one pass: a block's
// 16*RS source columns are RS register transposes whose 16 rows are stored straight to their (t, c) destination
// rows (whole 64-byte lines), and each 16-row stretch of source is read in one sweep. The rest goes through tmp
// (depth x NR): a tiled transpose into (c*RS + t, jj) order, then whole NR-wide rows moved to (t*Cg + c) order,
// written in order (taken in tmp's order, consecutive writes went Cg*NR*4 bytes apart: 32 KB at 256 channels,
// one L1 set). On this Zen 4 the one pass packs ResNet-18's 512x256x3x3 weight in 0.35-0.5 ms where the two took
// 0.7-0.8 ms (inside the convolution call, 2 threads, weight not in cache).
template <typename T>
void pack_kcrs_panel(int64_t nr, int64_t Cg, int64_t RS, const T* src, T* tmp, T* dst) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t depth = Cg * RS;
  if (nr < NR) std::fill(dst, dst + depth * NR, T(0));
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (Cg % 16 == 0 && nr % 16 == 0) {
      for (int64_t c0 = 0; c0 < Cg; c0 += 16)
        for (int64_t h = 0; h < nr; h += 16) {
          const float* s = src + h * depth + c0 * RS;
          int64_t c = c0, t = 0;  // the (channel, tap) of source column q0 + q
          for (int64_t q0 = 0; q0 < 16 * RS; q0 += 16) {
            __m512 r[16];
            for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + i * depth + q0);
            transpose16x16(r);
            for (int q = 0; q < 16; ++q) {
              _mm512_storeu_ps(dst + (t * Cg + c) * NR + h, r[q]);
              if (++t == RS) t = 0, ++c;
            }
          }
        }
      return;
    }
  }
#endif
  if (nr < NR) std::fill(tmp, tmp + depth * NR, T(0));
  transpose_serial(nr, depth, src, depth, 1, tmp, NR);
  for (int64_t t = 0; t < RS; ++t)
    for (int64_t c = 0; c < Cg; ++c) std::memcpy(dst + (t * Cg + c) * NR, tmp + (c * RS + t) * NR, sizeof(T) * size_t(NR));
}

// wp[((g*panels + j)*RS + t)*Cg + c)*NR + jj] = w[g*Kg + j*NR + jj, c, r, s] (t = r*S + s), zero past Kg, by
// pack_kcrs_panel (an element-wise gather read one cache line per element: a sixth of ResNet-50's 512-channel
// stride-2 forward). A channels_last weight (p.weight_rsc, rows in (t, c) order already) is transposed straight
// into place: its copy to (K, Cg, R, S) first cost as much again as the packing (ResNet-18's 256 -> 512 stride-2
// 3x3 in channels_last 1.92 -> 1.70 ms, torch 1.50).
template <typename T>
void pack_panel(const ConvParams& p, const T* w, int64_t gj, int64_t panels, T* tmp, T* dst) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S, depth = Cg * RS;
  const int64_t g = gj / panels, j = gj % panels, nr = std::min(NR, Kg - j * NR);
  if (p.weight_rsc) {
    if (nr < NR) std::fill(dst, dst + depth * NR, T(0));
    transpose_serial(nr, depth, w + (g * Kg + j * NR) * depth, depth, 1, dst, NR);
    return;
  }
  pack_kcrs_panel(nr, Cg, RS, w + (g * Kg + j * NR) * depth, tmp, dst);
}

template <typename T>
const T* pack_weight(const ConvParams& p, const T* w, int64_t panels) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t depth = p.C_per_group() * p.R * p.S;
  T* wp = thread_scratch<T>(kScratchWeight, size_t(p.groups * panels * depth * NR));
  const int64_t items = p.groups * panels;
  const int nt = threads_for_work(items * depth * NR, p.num_threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    T* tmp = thread_scratch<T>(kScratchPackB, size_t(depth * NR));
#pragma omp for schedule(static)
    for (int64_t gj = 0; gj < items; ++gj) pack_panel(p, w, gj, panels, tmp, wp + gj * depth * NR);
  }
  return wp;
}

// Input rows [ih0, ih0 + rows) of image n, group g, into xp: padded row a, column b holds input pixel
// (ih0 + a, b - pad_l) remapped by the padding mode, or zeros. Only the Cg channels of each pixel are written
// (the rest of the pixel stride is never read). planar: x is NCHW, and each row's Cg channel rows are transposed
// into pixels here (see DirectJob::planar_input).
template <typename T>
void gather_band(const ConvParams& p, const T* x, bool planar, int64_t n, int64_t g, int64_t ih0, int64_t rows,
                 int64_t Wp, int64_t Cp, T* xp) {
  const int64_t Cg = p.C_per_group();
  // Where channel c of input pixel (ih, iw) is: c * cs + iw * ps from the row's start.
  const int64_t cs = planar ? p.H * p.W : 1, ps = planar ? 1 : p.C;
  for (int64_t a = 0; a < rows; ++a) {
    T* dst = xp + a * Wp * Cp;
    const int64_t ih = remap_index(ih0 + a, p.H, p.mode);
    if (ih < 0) {
      std::fill(dst, dst + Wp * Cp, T(0));
      continue;
    }
    const T* src = planar ? x + ((n * p.C + g * Cg) * p.H + ih) * p.W : x + (n * p.H + ih) * p.W * p.C + g * Cg;
    // The interior columns (every padding mode maps them to themselves) in one copy or transpose.
    const int64_t lo = std::clamp<int64_t>(p.pad_l, 0, Wp), hi = std::clamp<int64_t>(p.pad_l + p.W, lo, Wp);
    if (hi > lo) {
      const T* s = src + (lo - p.pad_l) * ps;
      if (!planar && Cp == p.C)
        std::memcpy(dst + lo * Cp, s, sizeof(T) * size_t((hi - lo) * Cp));
      else if (!planar)
        for (int64_t b = lo; b < hi; ++b) std::memcpy(dst + b * Cp, s + (b - lo) * ps, sizeof(T) * size_t(Cg));
      else if (Cp != Cg || !interleave_few_rows(Cg, hi - lo, s, cs, dst + lo * Cp))
        transpose_serial(Cg, hi - lo, s, cs, int64_t(1), dst + lo * Cp, Cp);
    }
    for (int64_t b = 0; b < Wp; ++b) {
      if (b == lo && hi > lo) {
        b = hi - 1;
        continue;
      }
      const int64_t iw = remap_index(b - p.pad_l, p.W, p.mode);
      for (int64_t c = 0; c < Cg; ++c) dst[b * Cp + c] = iw < 0 ? T(0) : src[c * cs + iw * ps];
    }
  }
}

// One tile: the micro-kernel with R = mr rows (a single row runs as 2, the second reading slack and not
// stored) and one or two vectors of columns. Odd counts run exactly: a 7-pixel row computed as 8 wasted an
// eighth of the FMAs of every 7x7-output layer (ImageNet networks' last stage). On this Zen 4, 2 threads, A/B in
// one process: ResNet-18's 256 -> 512 3x3/2 at batch 4 in channels_last 0.91-0.94x -> 0.96-1.02x of torch,
// 512 -> 512 at batch 8 0.82-0.87x -> 0.94-0.98x, 256 -> 256 on 13x13 0.81-0.86x -> 0.90-0.94x, AlexNet's
// grouped 5x5 (27-wide rows, 14 + 13) 0.86-0.88x -> 0.90x.
template <typename T, int NV>
void tile(int64_t mr, int64_t RS, const int64_t* off, int64_t Cg, const T* a, int64_t lda, const T* b, T* c,
          const MicroTileView& v, const T* bcol) {
  using MK = MicroKernel<T>;
#if defined(__AVX512F__)
  switch (mr) {
    case 1:
    case 2: return MK::template run_taps<2, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 3: return MK::template run_taps<3, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 4: return MK::template run_taps<4, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 5: return MK::template run_taps<5, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 6: return MK::template run_taps<6, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 7: return MK::template run_taps<7, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 8: return MK::template run_taps<8, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 9: return MK::template run_taps<9, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 10: return MK::template run_taps<10, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 11: return MK::template run_taps<11, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 12: return MK::template run_taps<12, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 13: return MK::template run_taps<13, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    default: return MK::template run_taps<MK::MR, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
  }
#else
  (void)mr;
  MK::run_taps(RS, off, Cg, a, lda, b, c, v, bcol);
#endif
}

#if defined(__AVX512F__)
// Rows of at most kMaxStackedRowPixels output pixels are computed rh at a time (rh*W pixels per tile): a tile of one
// short row (4 pixels at 4x4 outputs) re-reads its weight panel from L2 for every 4 pixels, 8 FMAs per 128 bytes.
// On this Zen 4, 2 threads, A/B in one process, channels_last forwards vs torch: DCGAN's 256 -> 512 4x4/2 at 4x4
// outputs (its transposed layer's input gradient) 0.81-0.83x -> 0.88-0.92x, a 256 -> 512 3x3/2 at 4x4 0.96-1.10x ->
// 1.03-1.15x, a 512 -> 512 at 5x5 0.92-0.96x -> 0.90-1.04x. 7-pixel rows as 7 x 2 measured 2-4% slower than as
// single rows of 7 (the 14 pixels' addresses then take more registers): hence 5.
constexpr int64_t kMaxStackedRowPixels = 5;

// A tile of rh output rows of W pixels each (2 <= W <= kMaxStackedRowPixels, 2 <= rh <= MR / W), rows row_step
// apart in the padded band.
template <typename T, int NV>
void stacked_tile(int64_t W, int64_t rh, int64_t RS, const int64_t* off, int64_t Cg, const T* a, int64_t lda,
                  int64_t row_step, const T* b, T* c, const MicroTileView& v, const T* bcol) {
  using MK = MicroKernel<T>;
  switch (W * 8 + rh) {
    case 2 * 8 + 2: return MK::template run_taps<4, NV, 2>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 2 * 8 + 3: return MK::template run_taps<6, NV, 2>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 2 * 8 + 4: return MK::template run_taps<8, NV, 2>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 2 * 8 + 5: return MK::template run_taps<10, NV, 2>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 2 * 8 + 6: return MK::template run_taps<12, NV, 2>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 2 * 8 + 7: return MK::template run_taps<14, NV, 2>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 3 * 8 + 2: return MK::template run_taps<6, NV, 3>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 3 * 8 + 3: return MK::template run_taps<9, NV, 3>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 3 * 8 + 4: return MK::template run_taps<12, NV, 3>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 4 * 8 + 2: return MK::template run_taps<8, NV, 4>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    case 4 * 8 + 3: return MK::template run_taps<12, NV, 4>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);
    default: return MK::template run_taps<10, NV, 5>(RS, off, Cg, a, lda, b, c, v, bcol, row_step);  // 5 x 2
  }
}
#endif

#if defined(__AVX512F__)
// One vector of output channels (Kg <= 16 floats), stride 1, undilated columns, 2-7 taps per kernel row: M
// consecutive output pixels of a row, the taps of a kernel row sharing each broadcast input value. Input pixel
// p of the tile's span feeds outputs p - s through tap s, so per (kernel row, input channel) S weight vectors
// and M + S - 1 broadcasts feed M*S FMAs (120 for 33 loads at 5x5) where run_taps fed M for M + 1 (the input
// gradient of a 32 -> 16-channel 5x5 convolution, MNIST's and GoogLeNet's, was bound by those loads). The tile
// always computes M pixels, reading up to M - 1 pixels past the row (the next rows of the band, or its slack);
// only v.mr of them are stored. Not inlined: in the caller its 30 live vectors were spilled to the stack.
template <typename T, int M, int S>
__attribute__((noinline)) void row_taps_tile(int64_t R, const int64_t* off, int64_t Cg, const T* a, int64_t Cp, const T* b, T* y,
                   const MicroTileView& v, const T* bcol) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int64_t NR = MicroKernel<T>::NR;
  V acc[M];
#pragma GCC unroll 28
  for (int q = 0; q < M; ++q) acc[q] = Z::zero();
  for (int64_t r = 0; r < R; ++r) {
    const T* ar = a + off[r * S];
    const T* br = b + r * S * Cg * NR;
    for (int64_t c = 0; c < Cg; ++c) {
      V w[S];
#pragma GCC unroll 7
      for (int s = 0; s < S; ++s) w[s] = Z::load(br + (s * Cg + c) * NR);
#pragma GCC unroll 34
      for (int p = 0; p < M + S - 1; ++p) {
        const V xv = Z::set1(ar[p * Cp + c]);
#pragma GCC unroll 7
        for (int s = 0; s < S; ++s)
          if (p - s >= 0 && p - s < M) acc[p - s] = Z::fma(xv, w[s], acc[p - s]);
      }
    }
  }
  if (v.csC != 1) {  // an NCHW output (pixels consecutive, channels planes apart), 16 pixels at a time
#pragma GCC unroll 2
    for (int q0 = 0; q0 < M; q0 += 16) {
      if (q0 >= v.mr) break;
      V r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) r[i] = q0 + i < M ? acc[q0 + i] : Z::zero();
      MicroTileView h = v;
      h.mr = std::min<int64_t>(16, v.mr - q0);
      store_transposed<T>(r, y + q0, h, T(1), T(0), nullptr, bcol);
    }
    return;
  }
  const V bv = bcol ? Z::load_first(bcol, v.nr) : Z::zero();
  for (int q = 0; q < M && q < v.mr; ++q) Z::store_first(y + q * v.rsC, Z::add(acc[q], bv), v.nr);
}

#endif

// A row of OW pixels cut into tiles of equal even widths of at most `widest` pixels: (count, width). 14 + 14 for
// 28 pixels, and 8 + 8 for 16 rather than 14 + 2: a tile of 2 pixels has too few accumulators to hide the FMA
// latency (the last tile is narrower where OW is not a multiple of the width). DCGAN's 128 -> 64 4x4/2 transposed
// forward (16-wide output phases) 2.93 -> 2.64 ms in channels_last, 3.27 -> 2.99 in NCHW (torch 2.8-3.5); a
// 128 -> 128 3x3/2 forward on 16-wide outputs 1.60 -> 1.44 ms (torch 1.50); rows of 20-32 pixels measured even.
std::pair<int64_t, int64_t> even_tiles(int64_t OW, int64_t widest) {
  const int64_t count = (OW + widest - 1) / widest;
  return {count, std::min(widest, ((OW + count - 1) / count + 1) & ~int64_t(1))};
}

#if defined(__AVX512F__)
// Pixels per row_taps_tile at most: M accumulators + S weight vectors + a broadcast within 31 of the 32
// registers, even. A row is cut into tiles of equal even widths (14 + 14 for 28 pixels, not 24 + 4: every tile
// computes its M pixels), and none narrower than kMinRowTilePixels.
constexpr int row_tile_pixels(int s) { return (32 - s - 2) & ~1; }
constexpr int kMinRowTilePixels = 8;

template <typename T, int S, int M = row_tile_pixels(S)>
void row_taps_width(int64_t m, int64_t R, const int64_t* off, int64_t Cg, const T* a, int64_t Cp, const T* b, T* y,
                    const MicroTileView& v, const T* bcol) {
  if constexpr (M > kMinRowTilePixels) {
    if (m <= M - 2) return row_taps_width<T, S, M - 2>(m, R, off, Cg, a, Cp, b, y, v, bcol);
  }
  row_taps_tile<T, M, S>(R, off, Cg, a, Cp, b, y, v, bcol);
}

// Tiles of row_taps_tile along an output row of OW pixels: (count, width).
std::pair<int64_t, int64_t> row_tiles(int64_t OW, int64_t S) {
  const auto [count, width] = even_tiles(OW, row_tile_pixels(int(S)));
  return {count, std::max<int64_t>(width, kMinRowTilePixels)};
}

template <typename T>
void row_taps(int64_t S, int64_t m, int64_t R, const int64_t* off, int64_t Cg, const T* a, int64_t Cp, const T* b,
              T* y, const MicroTileView& v, const T* bcol) {
  switch (S) {
    case 3: return row_taps_width<T, 3>(m, R, off, Cg, a, Cp, b, y, v, bcol);
    case 5: return row_taps_width<T, 5>(m, R, off, Cg, a, Cp, b, y, v, bcol);
    default: return row_taps_width<T, 7>(m, R, off, Cg, a, Cp, b, y, v, bcol);
  }
}

// Whether a tile of one vector of output channels runs as row_taps (stride 1, undilated columns, 3, 5 or 7 taps
// per kernel row, rows of at least kMinRowTilePixels).
bool row_taps_applies(const ConvParams& p) {
  return p.stride_w == 1 && p.dil_w == 1 && (p.S == 3 || p.S == 5 || p.S == 7) && p.OW >= kMinRowTilePixels;
}
#endif

// Kernel rows [lo, hi) that reach an input row inside [0, H) for some output row of [oh, oh + rh). Under zero
// padding the other kernel rows multiply only the band's zero rows, so the tiles skip them: a 5x5 layer on 14x14
// outputs (pad 2) spent 8.6% of its products there, on 7x7 outputs 17%. Every row for the other padding modes,
// whose band rows hold real values.
std::pair<int64_t, int64_t> live_kernel_rows(const ConvParams& p, int64_t oh, int64_t rh) {
  if (p.mode != PaddingMode::Zeros) return {0, p.R};
  const int64_t first = oh * p.stride_h - p.pad_t, last = (oh + rh - 1) * p.stride_h - p.pad_t;  // input rows of tap 0
  // first kernel row with last + r*dil_h >= 0; one past the last with first + r*dil_h <= H - 1
  const int64_t lo = std::clamp<int64_t>(ceil_div(-last, p.dil_h), 0, p.R);
  const int64_t hi = std::clamp<int64_t>(ceil_div(p.H - first, p.dil_h), lo, p.R);
  return {lo, hi};
}

// run_direct's limits: one column panel of the packed weight within kMaxPanelBytes, a band of padded input
// within kMaxBandBytes.
bool direct_fits(const ConvParams& p, int64_t elem_size) {
  // A panel is RS*Cg rows of NR columns: 128 bytes per row for float (NR 32) and double (NR 16) alike.
  if (p.R * p.S * p.C_per_group() * 128 > kMaxPanelBytes) return false;
  // The padded band must fit a thread's scratch: huge paddings or dilations (a 'same' 1-d convolution with a
  // dilation of 2^31 - 1) leave the im2col path, which never materialises the padding.
  const int64_t Wp = padded_width(p), rows = band_input_rows(p, std::min(p.OH, kMaxBandRows));
  if (Wp > kMaxBandBytes || rows > kMaxBandBytes) return false;  // (keeps the product below in range)
  return rows * Wp * pixel_stride(p, elem_size) * elem_size <= kMaxBandBytes;
}

}  // namespace

bool implicit_forward_applies(const ConvParams& p, int64_t elem_size) {
  return p.layout == Layout::NHWC && p.R * p.S > 1 && direct_fits(p, elem_size);
}

namespace {

// Output panels of NR channels per group.
template <typename T>
int64_t column_panels(const ConvParams& p) {
  return (p.K_per_group() + MicroKernel<T>::NR - 1) / MicroKernel<T>::NR;
}

// Where run_direct writes channel k of output pixel (n, oh, ow): y + offset + n*image + oh*row + ow*pixel +
// k*channel. Dense for a forward; an output phase of a strided input gradient writes every stride-th pixel of gx;
// a forward whose caller wants NCHW writes planes (planar_output).
struct OutputPlacement {
  int64_t image, row, pixel, offset, channel = 1;
};

OutputPlacement dense_output(const ConvParams& p) { return {p.OH * p.OW * p.K, p.OW * p.K, p.K, 0}; }
OutputPlacement planar_output(const ConvParams& p) { return {p.K * p.OH * p.OW, p.OW, 1, 0, p.OH * p.OW}; }

// One direct convolution for run_direct: its problem, its weight packed as pack_weight lays it out, where its
// outputs go, and how it is cut into work items (image, group, band of output rows, group of column panels).
template <typename T>
struct DirectJob {
  ConvParams p;
  const T* x;
  const T* wp;
  const T* bias;
  T* y;
  OutputPlacement out;
  bool stream = false;  // full-width tiles go out as non-temporal stores (set_streaming)
  // x is NCHW (p says NHWC, the layout the band is gathered into): an NCHW forward run here transposes each band
  // of input rows as it gathers them, not the whole input into a buffer first (see conv_forward_implicit_nhwc).
  bool planar_input = false;
  int64_t band = 0, bands = 0, ppi = 0, pgroups = 0, items = 0;
  std::vector<int64_t> off;  // each tap's offset in the padded band
  // A kernel row's taps as one: with undilated columns and pixels packed without a gap (pixel stride Cg), tap
  // (r, s + 1) reads the Cg values right after tap (r, s), and the packed weight holds them in that order, so the
  // micro-kernel runs R taps S*Cg deep instead of R*S taps Cg deep (less loop overhead per FMA on few channels:
  // AlexNet's 3 -> 96 11x11/4 channels_last forward 2.58 -> 2.33 ms, ResNet-18's 256 -> 512 3x3/2 1.85 -> 1.77).
  // tile_off: the offsets the tiles run over (off, or each kernel row's first tap), each depth values deep.
  std::vector<int64_t> tile_off;
  int64_t depth = 0;

  DirectJob(const ConvParams& q, const T* x_, const T* wp_, const T* bias_, T* y_, const OutputPlacement& o, int64_t nt)
      : p(q), x(x_), wp(wp_), bias(bias_), y(y_), out(o), off(static_cast<size_t>(q.R * q.S)) {
    const int64_t Cp = pixel_stride(p, sizeof(T)), Wp = padded_width(p), panels = column_panels<T>(p);
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s) off[size_t(r * p.S + s)] = (r * p.dil_h * Wp + s * p.dil_w) * Cp;
    const bool merge = p.dil_w == 1 && Cp == p.C_per_group();
    depth = merge ? p.S * p.C_per_group() : p.C_per_group();
    if (merge)
      for (int64_t r = 0; r < p.R; ++r) tile_off.push_back(off[size_t(r * p.S)]);
    else
      tile_off = off;
    // Bands of up to kMaxBandRows output rows, fewer while that leaves under 4 items per thread; column panels
    // are split between items only when even one-row bands leave a thread idle.
    const int64_t per_band = p.N * p.groups;
    band = std::min(p.OH, kMaxBandRows);
    while (band > 1 && per_band * ((p.OH + band - 1) / band) < 4 * nt) band = (band + 1) / 2;
    bands = (p.OH + band - 1) / band;
    const int64_t psplit = std::clamp<int64_t>((2 * nt + per_band * bands - 1) / (per_band * bands), 1, panels);
    ppi = (panels + psplit - 1) / psplit, pgroups = (panels + ppi - 1) / ppi;
    items = per_band * bands * pgroups;
  }

  // A dense output of kStreamBytes or more bypasses the caches, as the GEMM's does (gemm.h): it cannot stay in
  // them, and ordinary stores first read every line they fill. VGG-16's 3 -> 64 channels_last forward at batch 4
  // (a 51 MB output) 2.84 -> 2.13 ms (torch 2.49). So does one of half that size whose values are each a sum of
  // fewer than 64 products (a few-channel stem): writing it, not computing it, is then the cost. VGG-16's 3 -> 64
  // at batch 1 (12.8 MB, 27 products) 0.74 -> 0.55 ms alone (torch 0.59); followed by its 64 -> 64 layer, which
  // then reads its input from memory, the pair took the same time either way. ResNet-18's 7x7 stem (12.8 MB, 147
  // products) gained nothing streamed.
  void set_streaming() {
    const int64_t bytes = p.N * p.OH * p.OW * p.K * int64_t(sizeof(T));
    const bool shallow = p.C_per_group() * p.R * p.S < 64;
    stream = out.channel == 1 && (bytes >= kStreamBytes || (shallow && 2 * bytes >= kStreamBytes)) &&
             nontemporal_stores();
  }

  // Scratch for one item's padded band, with slack past it: a tile rounded up to an even row count reads one
  // pixel past the last output column, a row_taps tile up to 29 pixels.
  int64_t slack() const { return (p.stride_w + 30) * pixel_stride(p, sizeof(T)) + p.C_per_group(); }
  int64_t scratch() const {
    return band_input_rows(p, band) * padded_width(p) * pixel_stride(p, sizeof(T)) + slack();
  }

  void run_item(int64_t item, T* xp) const {
    constexpr int64_t NR = MicroKernel<T>::NR;
    const int64_t Cg = p.C_per_group(), RS = p.R * p.S, panels = column_panels<T>(p);
    const int64_t pg = item % pgroups, b = (item / pgroups) % bands, g = (item / (pgroups * bands)) % p.groups;
    const int64_t n = item / (pgroups * bands * p.groups);
    const int64_t oh0 = b * band, oh1 = std::min(p.OH, oh0 + band);
    gather(n, g, oh0, oh1, slack(), xp);
    for (int64_t j = pg * ppi; j < std::min(panels, (pg + 1) * ppi); ++j)
      run_panel(n, g, oh0, oh1, xp, j, wp + (g * panels + j) * RS * Cg * NR);
  }

  // The padded input rows that output rows [oh0, oh1) of image n, group g read, into xp, then `zeros` zeros.
  void gather(int64_t n, int64_t g, int64_t oh0, int64_t oh1, int64_t zeros, T* xp) const {
    const int64_t Cp = pixel_stride(p, sizeof(T)), Wp = padded_width(p), rows = band_input_rows(p, oh1 - oh0);
    gather_band(p, x, planar_input, n, g, oh0 * p.stride_h - p.pad_t, rows, Wp, Cp, xp);
    std::fill(xp + rows * Wp * Cp, xp + rows * Wp * Cp + zeros, T(0));
  }

  // Output rows [oh0, oh1) of image n, group g, column panel j (packed at bj), from their band gathered at xp.
  void run_panel(int64_t n, int64_t g, int64_t oh0, int64_t oh1, const T* xp, int64_t j, const T* bj) const {
    constexpr int64_t MR = MicroKernel<T>::MR, NR = MicroKernel<T>::NR, L = NR / 2;
    [[maybe_unused]] const int64_t Cg = p.C_per_group();
    const int64_t Kg = p.K_per_group(), Cp = pixel_stride(p, sizeof(T)), lda = p.stride_w * Cp;
    const int64_t Wp = padded_width(p);
    const int64_t nr = std::min(NR, Kg - j * NR);
    const T* bcol = bias ? bias + g * Kg + j * NR : nullptr;
#if defined(__AVX512F__)
    const bool row_taps_tiles = nr <= L && row_taps_applies(p);
    // Short rows of a dense output (pixel i of a stack of rows lands at i*out.pixel) in stacks of rows split
    // evenly (a band of 4 rows of 4 pixels as 8 + 8, not 12 + 4); otherwise, and for a stack of one row, the
    // rows one at a time.
    const bool stack = p.OW >= 2 && p.OW <= kMaxStackedRowPixels && out.row == p.OW * out.pixel && !row_taps_tiles;
#else
    const bool stack = false;
#endif
    const int64_t band_rows = oh1 - oh0, max_rh = stack ? MR / p.OW : 1;
    const int64_t row_groups = (band_rows + max_rh - 1) / max_rh;
    for (int64_t t = 0; t < row_groups; ++t) {
      const int64_t oh = oh0 + band_rows * t / row_groups, rh = oh0 + band_rows * (t + 1) / row_groups - oh;
      const T* arow = xp + (oh - oh0) * p.stride_h * Wp * Cp;
      T* yrow = y + out.offset + n * out.image + oh * out.row + (g * Kg + j * NR) * out.channel;
      // the taps of the kernel rows these output rows reach (a kernel row is one merged tap or S taps)
      const auto [r_lo, r_hi] = live_kernel_rows(p, oh, rh);
      const int64_t row_taps_n = static_cast<int64_t>(tile_off.size()) / p.R, ntaps = (r_hi - r_lo) * row_taps_n;
      const int64_t* toff = tile_off.data() + r_lo * row_taps_n;
      const T* bt = bj + r_lo * row_taps_n * depth * NR;
#if defined(__AVX512F__)
      if (rh > 1) {
        const MicroTileView v{out.pixel, out.channel, rh * p.OW, nr, stream};
        const int64_t row_step = p.stride_h * Wp * Cp;
        if (nr <= L)
          stacked_tile<T, 1>(p.OW, rh, ntaps, toff, depth, arow, lda, row_step, bt, yrow, v, bcol);
        else
          stacked_tile<T, 2>(p.OW, rh, ntaps, toff, depth, arow, lda, row_step, bt, yrow, v, bcol);
        continue;
      }
      if (row_taps_tiles) {
        const auto [count, width] = row_tiles(p.OW, p.S);
        const T* br = bj + r_lo * p.S * Cg * NR;
        for (int64_t k = 0, ow0 = 0; k < count; ++k, ow0 += width) {
          const MicroTileView v{out.pixel, out.channel, std::min(width, p.OW - ow0), nr};
          row_taps(p.S, width, r_hi - r_lo, off.data() + r_lo * p.S, Cg, arow + ow0 * Cp, Cp, br,
                   yrow + ow0 * out.pixel, v, bcol);
        }
        continue;
      }
#else
      (void)rh;  // always 1: no stacks without the AVX-512 kernels
#endif
      const int64_t width = even_tiles(p.OW, MR).second;
      for (int64_t ow0 = 0; ow0 < p.OW; ow0 += width) {
        const MicroTileView v{out.pixel, out.channel, std::min(width, p.OW - ow0), nr, stream};
        const T* a = arow + ow0 * lda;
        if (nr <= L)
          tile<T, 1>(v.mr, ntaps, toff, depth, a, lda, bt, yrow + ow0 * out.pixel, v, bcol);
        else
          tile<T, 2>(v.mr, ntaps, toff, depth, a, lda, bt, yrow + ow0 * out.pixel, v, bcol);
      }
    }
  }
};

// The jobs' items in one parallel region, handed out dynamically; every output element belongs to one item.
template <typename T>
void run_direct(const std::vector<DirectJob<T>>& jobs, int64_t nt) {
  int64_t items = 0, scratch = 0;
  for (const DirectJob<T>& j : jobs) items += j.items, scratch = std::max(scratch, j.scratch());
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(nt, items)))
  {
    DenormalGuard guard;
    T* xp = thread_scratch<T>(kScratchCol, size_t(scratch));
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      int64_t i = item;
      size_t j = 0;
      while (i >= jobs[j].items) i -= jobs[j++].items;
      jobs[j].run_item(i, xp);
    }
  }
#if defined(__x86_64__) || defined(_M_X64)
  for (const DirectJob<T>& j : jobs)
    if (j.stream) return _mm_sfence();  // the non-temporal stores ordered before whatever reads the output next
#endif
}

// Elements of one image's padded input (all its rows), and between consecutive ones in run_weight_stationary
// (whole cache lines apart).
int64_t padded_image(const ConvParams& p, int64_t elem_size) {
  return band_input_rows(p, p.OH) * padded_width(p) * pixel_stride(p, elem_size);
}
int64_t stationary_image(const ConvParams& p, int64_t elem_size) {
  const int64_t lane = 64 / elem_size;
  return (padded_image(p, elem_size) + lane - 1) / lane * lane;
}

// A forward whose packed weight outweighs its input runs weight-stationary: every image's padded input is
// gathered once, then each thread packs one column panel at a time into its own buffer (which stays in its L2)
// and computes that panel's outputs for all images before the next. run_direct instead packs the whole weight
// into one buffer and each item (image, band) re-reads its panels, from L3 at best, and half of them from the
// other thread's cache: on this 2-vCPU VM the two vCPUs sometimes sit on different CCDs (a cache line's round
// trip between them 55 ns or 330-370 ns, changing from second to second), and then ResNet-18 layer4's
// 256 -> 512 3x3/2 NCHW forward took 4.5 ms instead of 3.0 (packing 1.0-1.5 ms instead of 0.4, the rest 2.7 ms
// instead of 2.1). Chosen when a group's packed weight exceeds L2 (else it stays there across items anyway:
// AlexNet's grouped 5x5 lost 5% weight-stationary), the padded input, read once per panel, is less traffic than
// the packed weight written and then read by every item, and within 2 MB: larger inputs come from L3 for every
// panel and gain little or nothing (2.6 MB: DCGAN's 256 -> 128 4x4/2 input gradient even; 3.7 MB: layer4 at
// batch 16 1.02-1.03x; 1.8 MB: at batch 8 1.06-1.18x). (An input gradient's phases the same way measured even
// on ResNet-18 layer4 and 0.73-0.92x on DCGAN's 256 -> 128 transposed forward.)
template <typename T>
bool weight_stationary(const DirectJob<T>& job, int64_t nt) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const ConvParams& p = job.p;
  const int64_t panels = column_panels<T>(p), items = p.groups * panels;
  if (nt < 2 || items < 2 * nt) return false;  // a panel per thread at least twice over, for balance
  const int64_t panel = p.R * p.S * p.C_per_group() * NR * int64_t(sizeof(T));
  const int64_t input = p.N * p.groups * stationary_image(p, sizeof(T)) * int64_t(sizeof(T));
  if (panels * panel <= kMaxPanelBytes || input > 2 * kMaxPanelBytes) return false;
  return panels * input < (job.items * job.ppi + items) * panel;
}

template <typename T>
void run_weight_stationary(const DirectJob<T>& job, const T* w) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const ConvParams& p = job.p;
  const int64_t panels = column_panels<T>(p), depth = p.C_per_group() * p.R * p.S;
  const int64_t images = p.N * p.groups, image = stationary_image(p, sizeof(T));
  const int64_t gap = image - padded_image(p, sizeof(T));
  // A tile's reads past an image's rows (see slack()) land in the next image, or past the last one in zeros.
  T* xall = thread_scratch<T>(kScratchStationaryInput, size_t(images * image + job.slack()));
  std::fill(xall + images * image, xall + images * image + job.slack(), T(0));
  const int nt = static_cast<int>(std::min<int64_t>(p.num_threads, p.groups * panels));
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t ng = 0; ng < images; ++ng) job.gather(ng / p.groups, ng % p.groups, 0, p.OH, gap, xall + ng * image);
    T* panel = thread_scratch<T>(kScratchPackA, size_t(depth * NR));
    T* tmp = thread_scratch<T>(kScratchPackB, size_t(depth * NR));
#pragma omp for schedule(dynamic)
    for (int64_t gj = 0; gj < p.groups * panels; ++gj) {
      const int64_t g = gj / panels, j = gj % panels;
      pack_panel(p, w, gj, panels, tmp, panel);
      for (int64_t n = 0; n < p.N; ++n) job.run_panel(n, g, 0, p.OH, xall + (n * p.groups + g) * image, j, panel);
    }
  }
#if defined(__x86_64__) || defined(_M_X64)
  if (job.stream) _mm_sfence();
#endif
}

// The input gradient, output phase by output phase. gx pixel (ih, iw) = (ph + sh*a, pw + sw*b) receives the taps
// r = r0 + sh*t (t < Rt) with r0 = (ph + pad_t) mod sh, from grad_output row oh = a + qh - t, qh =
// (ph + pad_t - r0) / sh (columns alike). So each phase is a stride-1 forward convolution of grad_output with
// the Rt x St kernel of its taps, transposed and flipped, whose outputs are every sh-th row and sw-th column
// of gx: no column matrix, no scatter-add, and no multiplication by the zeros a strided gradient would
// insert. Stride 1 is the one phase (0, 0) with every tap (dilation then stays in the phase's problem).
struct Phase {
  int64_t ph, pw, r0, s0, Rt, St, qh, qw, Ha, Wa;
};

Phase make_phase(const ConvParams& p, int64_t ph, int64_t pw) {
  const AxisPhase h = axis_phase(ph, p.pad_t, p.stride_h, p.R, p.H), w = axis_phase(pw, p.pad_l, p.stride_w, p.S, p.W);
  return {ph, pw, h.r0, w.r0, h.taps, w.taps, h.q, w.q, h.count, w.count};
}

// The phase's forward problem: input grad_output (its OH x OW, K channels), output the phase's Ha x Wa pixels
// of gx (C channels). Negative paddings crop; rows and columns past grad_output read zeros (gather_band).
ConvParams phase_problem(const ConvParams& p, const Phase& f) {
  ConvParams q = p;
  q.C = p.K, q.K = p.C, q.H = p.OH, q.W = p.OW, q.OH = f.Ha, q.OW = f.Wa, q.R = f.Rt, q.S = f.St;
  q.stride_h = q.stride_w = 1;
  q.pad_t = (f.Rt - 1) * p.dil_h - f.qh, q.pad_l = (f.St - 1) * p.dil_w - f.qw;
  q.pad_b = std::max<int64_t>(0, f.Ha - 1 + f.qh - (p.OH - 1)), q.pad_r = std::max<int64_t>(0, f.Wa - 1 + f.qw - (p.OW - 1));
  q.winograd_weight = nullptr;
  return q;
}

// tmp[t*NR + jj] = src[jj*RS + t] for jj < nr, t < RS: one output channel's (nr, RS) block of a (K, Cg, R, S)
// weight, contiguous, as tap rows. Floats with up to 16 taps by register transposes of 16 rows at a time (masked
// loads of RS values; rows past nr read as zeros, so tmp's tail is written as zeros too): a 3x3 kernel's 32 x 9
// blocks went element by element, a ninth of ResNet-18 layer4's NCHW stride-2 forward + input gradient (1.04-1.05x
// faster without it, A/B in one process on Zen 4).
template <typename T>
void taps_to_rows(int64_t nr, int64_t RS, const T* src, T* tmp) {
  constexpr int64_t NR = MicroKernel<T>::NR;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (RS <= 16) {
      for (int64_t h = 0; h < NR; h += 16) {
        __m512 r[16];
        load_rows16_masked(src + h * RS, RS, int(std::clamp<int64_t>(nr - h, 0, 16)), int(RS), r);
        transpose16x16(r);
        for (int64_t t = 0; t < RS; ++t) _mm512_storeu_ps(tmp + t * NR + h, r[t]);
      }
      return;
    }
  }
#endif
  transpose_serial(nr, RS, src, RS, 1, tmp, NR);
}

// The phases' weights for run_direct, packed straight from w into one buffer (output channels c, input channels
// k, each phase's taps flipped):
//   wp_f[((g*panels + j)*Rt*St + u*St + v)*Kg + k)*NR + jj] = w[g*Kg + k, j*NR + jj, r0 + sh*(Rt-1-u), s0 + sw*(St-1-v)]
// (zero past Cg). Per (group, panel) and k: the contiguous (NR, R*S) block of w as (tap, NR) rows (taps_to_rows),
// which are then copied to every phase's place for that tap (element by element, the strided reads
// took an eighth of DCGAN's 8 MB-weight layer); of a channels_last weight (p.weight_rsc) the block's rows are
// copied as they are.
template <typename T>
std::vector<const T*> pack_phase_weights(const ConvParams& p, const std::vector<Phase>& phases, const T* w) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S;
  const int64_t panels = (Cg + NR - 1) / NR, items = p.groups * panels;
  std::vector<int64_t> base(phases.size() + 1, 0);
  for (size_t f = 0; f < phases.size(); ++f) base[f + 1] = base[f] + items * phases[f].Rt * phases[f].St * Kg * NR;
  T* wp = thread_scratch<T>(kScratchWeight, size_t(base.back()));
  const int nt = threads_for_work(base.back(), p.num_threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    T* tmp = thread_scratch<T>(kScratchPackB, size_t(RS * NR));
#pragma omp for schedule(static)
    for (int64_t gj = 0; gj < items; ++gj) {
      const int64_t g = gj / panels, j = gj % panels, nr = std::min(NR, Cg - j * NR);
      if (nr < NR) std::fill(tmp, tmp + RS * NR, T(0));
      for (int64_t k = 0; k < Kg; ++k) {
        if (p.weight_rsc)  // (K, R, S, Cg): the block is (RS, nr) rows of w already
          for (int64_t t = 0; t < RS; ++t)
            std::memcpy(tmp + t * NR, w + ((g * Kg + k) * RS + t) * Cg + j * NR, sizeof(T) * size_t(nr));
        else
          taps_to_rows(nr, RS, w + ((g * Kg + k) * Cg + j * NR) * RS, tmp);
        for (size_t fi = 0; fi < phases.size(); ++fi) {
          const Phase& f = phases[fi];
          T* dst = wp + base[fi] + gj * f.Rt * f.St * Kg * NR;
          for (int64_t u = 0; u < f.Rt; ++u)
            for (int64_t v = 0; v < f.St; ++v) {
              const int64_t tap = (f.r0 + p.stride_h * (f.Rt - 1 - u)) * p.S + f.s0 + p.stride_w * (f.St - 1 - v);
              std::memcpy(dst + ((u * f.St + v) * Kg + k) * NR, tmp + tap * NR, sizeof(T) * size_t(NR));
            }
        }
      }
    }
  }
  std::vector<const T*> out(phases.size());
  for (size_t f = 0; f < phases.size(); ++f) out[f] = wp + base[f];
  return out;
}

// gx's pixels of a phase no tap reaches (a kernel smaller than the stride): zeros.
template <typename T>
void zero_phase(const ConvParams& p, const Phase& f, T* gx) {
  const int nt = threads_for_work(p.N * f.Ha * f.Wa * p.C, p.num_threads);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t na = 0; na < p.N * f.Ha; ++na) {
    const int64_t n = na / f.Ha, ih = f.ph + (na % f.Ha) * p.stride_h;
    for (int64_t b = 0; b < f.Wa; ++b) {
      T* px = gx + ((n * p.H + ih) * p.W + f.pw + b * p.stride_w) * p.C;
      std::fill(px, px + p.C, T(0));
    }
  }
}

}  // namespace

template <typename T>
void conv_forward_implicit_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, bool nchw) {
  std::vector<DirectJob<T>> job;
  job.emplace_back(p, x, nullptr, bias, y, nchw ? planar_output(p) : dense_output(p), p.num_threads);
  job.back().planar_input = nchw;
  job.back().set_streaming();
  if (weight_stationary(job.back(), p.num_threads)) return run_weight_stationary(job.back(), w);
  job.back().wp = pack_weight(p, w, column_panels<T>(p));
  run_direct(job, p.num_threads);
}

bool implicit_backward_input_applies(const ConvParams& p, int64_t elem_size) {
  const bool strided = p.stride_h > 1 || p.stride_w > 1;
  if (p.layout != Layout::NHWC || p.R * p.S <= 1 || p.mode != PaddingMode::Zeros) return false;
  if (strided && (p.dil_h != 1 || p.dil_w != 1 || p.stride_h > p.R || p.stride_w > p.S)) return false;
  // A phase's output channels are p's input channels, NR to a column panel: the strided phases take channel
  // counts that fill whole half panels, at least one whole panel (stems with 3 channels ran 3-4x slower than
  // im2col + GEMM + col2im, 24 channels 1.3x slower, 32 or more channels 1.0-1.2x faster).
  constexpr int64_t NRf = 32;  // float's NR; double's is half, for the same bytes
  const int64_t nr = NRf * 4 / elem_size, Cg = p.C_per_group();
  if (strided && (Cg < nr || Cg % (nr / 2) != 0)) return false;
  if (!strided && (p.pad_t > (p.R - 1) * p.dil_h || p.pad_l > (p.S - 1) * p.dil_w)) return false;
  for (int64_t ph = 0; ph < p.stride_h; ++ph)
    for (int64_t pw = 0; pw < p.stride_w; ++pw) {
      const Phase f = make_phase(p, ph, pw);
      if (f.Rt > 0 && f.St > 0 && f.Ha > 0 && f.Wa > 0 && !direct_fits(phase_problem(p, f), elem_size)) return false;
    }
  return true;
}

template <typename T>
void conv_backward_input_implicit_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx) {
  std::vector<Phase> phases;
  for (int64_t ph = 0; ph < p.stride_h; ++ph)
    for (int64_t pw = 0; pw < p.stride_w; ++pw) {
      const Phase f = make_phase(p, ph, pw);
      if (f.Ha == 0 || f.Wa == 0) continue;
      if (f.Rt == 0 || f.St == 0)
        zero_phase(p, f, gx);
      else
        phases.push_back(f);
    }
  const std::vector<const T*> wp = pack_phase_weights(p, phases, w);
  std::vector<DirectJob<T>> jobs;
  jobs.reserve(phases.size());
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& f = phases[i];
    const OutputPlacement out{p.H * p.W * p.C, p.stride_h * p.W * p.C, p.stride_w * p.C, (f.ph * p.W + f.pw) * p.C};
    jobs.emplace_back(phase_problem(p, f), gy, wp[i], static_cast<const T*>(nullptr), gx, out, p.num_threads);
  }
  run_direct(jobs, p.num_threads);
}

template void conv_backward_input_implicit_nhwc<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_implicit_nhwc<double>(const ConvParams&, const double*, const double*, double*);
template void conv_forward_implicit_nhwc<float>(const ConvParams&, const float*, const float*, const float*, float*,
                                               bool);
template void conv_forward_implicit_nhwc<double>(const ConvParams&, const double*, const double*, const double*,
                                                 double*, bool);

}  // namespace cpu
}  // namespace fastconv
