// Winograd forward convolution, F(4x4, 3x3) and F(2x2, 5x5) (see winograd.h for the scheme; R, the kernel size,
// is a template parameter of the functions that run a transform). Work is split into blocks of TB
// tiles (TB a multiple of the micro-kernel's MR, so every GEMM row panel is full and the micro-kernel reads
// the transformed input in place), in one of three regimes (Plan):
// - Private: a thread transforms a block's input into its own V, runs the 36 GEMMs into its own M and
//   transforms M into the output; V and M stay in its L2, the transformed weight U is read once per block;
// - Panels (few tiles): one block; threads take output-channel panels, each transforming its own part of U;
// - Team (U too large to re-read per small block): the team shares large blocks and splits each phase
//   (input transforms, GEMMs by point and panel, output transforms), so U is read once per large block.
#include <algorithm>
#include <atomic>
#include <cstring>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "../conv/conv_threads.h"
#include "../gemm/gemm_microkernel.h"
#include "../gemm/gemm_scratch.h"
#include "../simd_transpose.h"
#include "winograd.h"
#include "winograd_tiles.h"
#include "winograd_transforms.h"

namespace fastconv {
namespace cpu {
using namespace winograd;

namespace {

std::atomic<bool> g_allowed{true};
std::atomic<bool> g_size_rule{true};  // tests turn it off to reach the kernel with any channel count
std::atomic<int> g_forced_regime{0};  // set_winograd_forward_regime
std::atomic<int64_t> g_block_tiles{0};  // set_winograd_block_tiles

// Where the Winograd path beats the exact ones (measured on the 2-core AVX-512 machine, 2 threads, against
// fastconv's exact paths):
// - at least 16 input and 8 output channels: forward 1.2-2.4x faster at 16-128 channels (batch 1-8, 14x14 to
//   112x112; 1.0-1.4x at 8 input channels); below, the transforms (O(C + K) per tile) outweigh the multiplies
//   saved (O(C * K)). The weight gradient has its own rule (use_winograd_backward_weight);
// - at least one tile per 16384 weights (C * K): the weight transform is per call, the savings per tile;
//   512 -> 512 channels on 4 tiles (7x7, batch 1) ran at 0.57x, on 16 tiles at 1.2x, 256 -> 256 on 16 tiles
//   at 1.5x. 5x5 kernels count their 2x2 tiles: 256 -> 256 at 7x7, batch 1 (16 tiles) 0.79-0.89x of the exact
//   forward, 512 -> 512 1.75-2.3x, 128 -> 128 at 14x14 (49 tiles) 1.27-1.43x.
constexpr int64_t kMinInChannels = 16;
constexpr int64_t kMinOutChannels = 8;
// 5x5 kernels (F(2x2, 5x5): a 6x6 patch's transforms serve 4 outputs, not 16) need more channels: at least 32
// input and 24 output channels (measured, 2 threads, against the exact paths, both layouts: 32 -> 64 at 28x28
// and 128 -> 128 at 14x14 1.3-1.65x faster, 24 -> 48 at 28x28 0.97-0.99x, 16 -> 32 at 28x28 and 14x14 0.94-1.17x,
// and as input gradients, which swap the two counts, 48 -> 24 1.13-1.49x, 32 -> 16 0.68-0.75x).
constexpr int64_t kMinInChannels5 = 32;
constexpr int64_t kMinOutChannels5 = 24;
constexpr int64_t kWeightsPerTile = 16384;
constexpr int64_t kMinDirectNchwPlane = 2048;  // winograd_direct_nchw: between 28x28 and 56x56
// V and M of one block together: about this many bytes (they stream through L2 once per block).
constexpr int64_t kBlockBytes = int64_t(1) << 20;
constexpr int64_t kKC = 256;  // GEMM depth per pass: a B panel (kKC x NR) stays in L1
// Input channels per fused weight transform of the panel regime (run_panel): 36 x 128 x NR floats, 590 KB,
// stay in a 1 MB L2 between the transform and the GEMMs.
constexpr int64_t kFusedKC = 128;
// Added to the distance between two points of a transformed weight (that buffer, 16 KB a point, and the
// whole U): one cache line, so that the 36 stores of one transformed kernel do not all fall in one L1 set
// (at a multiple of 4 KB they did, and the weight transform of a 512 -> 512 layer ran 1.6x slower).
constexpr int64_t kPointPad = 16;

// Values between two points of a transformed weight of `rows` input channels and `cols` output columns.
int64_t point_stride(int64_t rows, int64_t cols) { return rows * cols + kPointPad; }
// The panel regime's transformed input (all tiles) at most this large: it is read by every panel.
constexpr int64_t kPanelInputBytes = int64_t(8) << 20;
// Transformed weights at least this large take the panel regime whenever its transformed input fits, however
// many tiles (measured, 2 threads, channels_last, weight transformed per call: AlexNet's 256 -> 384 and
// 2 x 192 -> 192 at 13x13 and ResNet-18's 256 -> 256 at 14x14 on 64-128 tiles, and VGG-16's 256 -> 256 at
// 56x56 on 196, 1.15-1.45x faster than private blocks or the team; U of 4.6 MB and below (128 -> 128 at 28x28,
// 96 -> 128) ran 1.3-1.5x slower as panels).
constexpr int64_t kPanelUBytes = int64_t(6) << 20;
// Transformed weights larger than this take the team regime (measured, 2 threads: 512 -> 512 channels, U of
// 36 MB, on 64-392 tiles 1.25-1.45x faster than private blocks; 256 -> 256, U of 9 MB, 0.85-0.95x).
constexpr int64_t kTeamUBytes = int64_t(16) << 20;

// The team regime's V and M of one block together at most this large (shared by the team, in the L3 cache).
constexpr int64_t kTeamBlockBytes = int64_t(16) << 20;

enum class Regime {
  Private,  // each thread its own blocks of tiles (V and M in its L2), reading all of U per block
  Panels,   // few tiles: all in one block, threads over output-channel panels (each transforms its own U)
  Team,     // large U: the team shares big blocks, threads over (point, panel) GEMMs: U read once per block
};

// A group's columns of the transformed weight U and of M: its output channels rounded to whole GEMM column panels
// (so that no panel spans two groups; columns past the group's channels hold zero weights).
template <typename T>
int64_t group_columns(const ConvParams& p) {
  return round_up(p.K_per_group(), MicroKernel<T>::NR);
}

// Columns of U and row stride of M: every group's group_columns.
template <typename T>
int64_t weight_columns(const ConvParams& p) {
  return p.groups * group_columns<T>(p);
}

template <typename T>
struct Plan : TileGrid {
  using MK = MicroKernel<T>;
  int64_t Cp, Kp;         // row strides of V (padded_row) and M (weight_columns)
  int64_t Cg, Kg;         // channels per group: the GEMM depth, and the output channels of one group
  int64_t KgP;            // a group's columns of U and M (group_columns)
  int64_t TB, blocks;     // tiles per block, blocks
  Regime regime;
  // Tiles per block come in whole row panels of the micro-kernel, and in even numbers: the team regime
  // transforms round_up(count, 2) rows (the AVX-512 kernel reads an odd panel's next row). The portable
  // kernel's MR of 3 made odd blocks whose extra row overwrote the next point's first one.
  static constexpr int64_t kRows = MK::MR % 2 == 0 ? MK::MR : 2 * MK::MR;

  // The first input channel of the group whose output channels panel jr is in (groups: the transformed
  // weight is block diagonal, so a panel's GEMMs read only its group's channels of V).
  int64_t channel0(int64_t jr) const { return jr / KgP * Cg; }
  // M's column of output channel k.
  int64_t m_column(int64_t k) const { return k / Kg * KgP + k % Kg; }
  // The output channel of M's column col, or -1 for a column past its group's channels.
  int64_t out_channel(int64_t col) const { return col % KgP < Kg ? col / KgP * Kg + col % KgP : -1; }

  Plan(const ConvParams& p) : TileGrid(p) {
    Cg = p.C_per_group(), Kg = p.K_per_group();
    Cp = padded_row<T>(p.C);
    KgP = group_columns<T>(p), Kp = weight_columns<T>(p);
    const int64_t per_tile = kPoints * int64_t(sizeof(T)) * (Cp + Kp);
    TB = std::clamp<int64_t>(kBlockBytes / per_tile / kRows * kRows, kRows, 16 * kRows);
    // enough blocks for every thread
    const int64_t fair = round_up((tiles + p.num_threads - 1) / p.num_threads, kRows);
    TB = std::max<int64_t>(kRows, std::min(TB, fair));
    blocks = (tiles + TB - 1) / TB;
    const int forced = g_forced_regime.load(std::memory_order_relaxed);
    regime = Regime::Private;
    // Few tiles: split by tiles, every thread would stream the whole transformed weight (4x the weight) for
    // a handful of rows; split by output channels, each transforms and reads only its own panels.
    const int64_t all_rows = round_up(tiles, kRows), u_bytes = kPoints * Cg * Kp * int64_t(sizeof(T));
    if (forced ? forced == 2
               : kPoints * all_rows * Cp * int64_t(sizeof(T)) <= kPanelInputBytes && Kp / MK::NR >= p.num_threads &&
                     (blocks <= 2 * p.num_threads || u_bytes >= kPanelUBytes)) {
      regime = Regime::Panels, TB = all_rows, blocks = 1;
      return;
    }
    if (forced ? forced == 3 : u_bytes > kTeamUBytes) {
      regime = Regime::Team;
      TB = std::clamp<int64_t>(kTeamBlockBytes / per_tile / kRows * kRows, kRows, all_rows);
      if (const int64_t b = winograd_block_tiles()) TB = round_up(b, kRows);
      blocks = (tiles + TB - 1) / TB;
    }
  }
};

// Element e (tap R*row + col) of the R x R kernel of output channel k and input channel c of p (both counted
// within their group), rotated by 180 degrees when flipped: w is then the weight of the convolution whose
// input gradient p computes, (p.C, p.K / groups, R, R), whose kernel (c, k) is p's (k, c). p.weight_rsc: w is
// stored with the taps before the input channels ((K, R, R, C / groups), a channels_last weight; flipped:
// (p.C, R, R, p.K / groups)). Group g's kernels start group_elems * g values into w (either way).
struct KernelIndex {
  int64_t taps;                          // R * R
  int64_t k_stride, c_stride, e_stride;  // element (k, c, e) at k*k_stride + c*c_stride + tap(e)*e_stride
  int64_t group_elems;
  bool flipped;
  KernelIndex(const ConvParams& p, bool flip) : taps(p.R * p.S), flipped(flip) {
    const int64_t Cg = p.C_per_group(), Kg = p.K_per_group();
    group_elems = taps * Cg * Kg;
    // w's dimensions: (outer, inner, R, R) dense or (outer, R, R, inner) channels_last, with (outer, inner) =
    // (k, c) unflipped and (c, k) flipped
    const int64_t inner = flip ? Kg : Cg;
    const int64_t outer_stride = taps * inner, inner_stride = p.weight_rsc ? 1 : taps;
    e_stride = p.weight_rsc ? inner : 1;
    k_stride = flip ? inner_stride : outer_stride;
    c_stride = flip ? outer_stride : inner_stride;
  }
  int64_t tap(int e) const { return flipped ? taps - 1 - e : e; }
  int64_t at(int64_t k, int64_t c, int e) const { return k * k_stride + c * c_stride + tap(e) * e_stride; }
};

// The R x R kernels (jr + j, c) for j < width, j-major (g[e*NR + j]; kernels past width stay as they are).
template <typename T>
void gather_kernels(const KernelIndex& ix, const T* w, int64_t jr, int64_t width, int64_t c, T* g) {
  constexpr int64_t NR = MicroKernel<T>::NR;
#if defined(__AVX512F__)
  // 16 kernels a vector: a gather at the kernels' stride (the scalar copy cost 18% of a 256-channel layer)
  if constexpr (sizeof(T) == 4) {
    if (ix.k_stride * 16 < (int64_t(1) << 31)) {
      const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(int(ix.k_stride)));
      for (int64_t h = 0; h < width; h += 16) {
        const __mmask16 m = __mmask16((1u << std::min<int64_t>(16, width - h)) - 1);
        for (int e = 0; e < ix.taps; ++e)
          _mm512_store_ps(g + e * NR + h,
                          _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, w + ix.at(jr + h, c, e), 4));
      }
      return;
    }
  }
#endif
  for (int64_t j = 0; j < width; ++j)
    for (int e = 0; e < ix.taps; ++e) g[e * NR + j] = w[ix.at(jr + j, c, e)];
}

// Transformed kernels of output channels [jr, jr + NR) (zeros past K; all in one group) and input channels
// [c_begin, c_end) of their group, as rows of the micro-kernel's B panels: point xi of input channel c goes to
// U + xi*xi_stride + (c - c_begin)*NR (NR values). The NR kernels of one input channel are transformed at once
// (they are the vector lanes); they are staged as g[e*NR + j] by whichever copy suits the weight's layout.
template <typename T, int R>
void transform_weight_panel(const ConvParams& p, const T* w, bool flipped, int64_t jr, int64_t c_begin,
                            int64_t c_end, int64_t xi_stride, T* U) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  constexpr int RR = R * R;
  const KernelIndex ix(p, flipped);
  const int64_t Kg = p.K_per_group(), KgP = group_columns<T>(p), group = jr / KgP;
  w += group * ix.group_elems, jr -= group * KgP;  // from here on, jr counts within the group
  const int64_t width = std::min(NR, Kg - jr);
  alignas(64) T g[RR * NR];
  alignas(64) T tmp[kTileIn * R * NR];
  int64_t c = c_begin;
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    if (width == NR && ix.k_stride == 1) {
      // the NR kernels' taps are contiguous rows (a flipped channels_last weight): plain copies
      for (; c < c_end; ++c) {
        for (int e = 0; e < RR; ++e)
          for (int64_t h = 0; h < NR; h += 16)
            _mm512_store_ps(g + e * NR + h, _mm512_loadu_ps(w + ix.at(jr + h, c, e)));
        weight_tile_transform<T, NR, R>(g, tmp, U + (c - c_begin) * NR, xi_stride);
      }
    } else if (width == NR && !flipped) {
      // 16 input channels at a time: 16 x 16 register transposes of the NR kernels' rows (16 * R * R contiguous
      // taps each; channels_last: 16 channels of one tap) into the kernels-as-lanes layout. The per-tap
      // gathers they replace (16 rows 18 KB apart per vector, at 512 channels) cost twice the GEMMs.
      alignas(64) T staged[16 * RR * NR];
      for (; c + 16 <= c_end; c += 16) {
        for (int64_t h = 0; h < NR; h += 16) {
          if (p.weight_rsc) {
            for (int e = 0; e < RR; ++e)
              transpose_block16(w + ix.at(jr + h, c, e), ix.k_stride, staged + e * NR + h, RR * NR);
          } else {
            for (int64_t b = 0; b < RR; ++b)
              transpose_block16(w + ix.at(jr + h, c, 0) + b * 16, ix.k_stride, staged + b * 16 * NR + h, NR);
          }
        }
        for (int64_t i = 0; i < 16; ++i)
          weight_tile_transform<T, NR, R>(staged + i * RR * NR, tmp, U + (c + i - c_begin) * NR, xi_stride);
      }
    } else if (width == NR && !p.weight_rsc) {
      // flipped, the NR kernels of channel c are NR contiguous rows of R * R taps: two masked 16 x RR
      // transposes, written from the last tap row up (the 180-degree rotation), replace RR gathers
      for (; c < c_end; ++c) {
        for (int64_t h = 0; h < NR; h += 16)
          for (int e0 = 0; e0 < RR; e0 += 16)  // (a 5x5 kernel's 25 taps in two)
            transpose_block16_masked(w + ix.at(jr + h, c, RR - 1) + e0, RR, g + (RR - 1 - e0) * NR + h, -NR, 16,
                                     std::min(16, RR - e0));
        weight_tile_transform<T, NR, R>(g, tmp, U + (c - c_begin) * NR, xi_stride);
      }
    }
  }
#endif
  for (int64_t e = 0; e < RR * NR; ++e) g[e] = T(0);  // kernels past K stay zero
  for (; c < c_end; ++c) {
    gather_kernels(ix, w, jr, width, c, g);
    weight_tile_transform<T, NR, R>(g, tmp, U + (c - c_begin) * NR, xi_stride);
  }
}

// U for all output channels, packed as the micro-kernel's B panels: for point xi, depth block pc (kc =
// min(kKC, C - pc) rows of the C = Cg channels of a group), column panel jr (NR columns of K): kc x NR values
// at xi*point_stride(C, Kp) + pc*Kp + jr*kc.
template <typename T, int R>
void transform_weights(const ConvParams& p, const Plan<T>& pl, const T* w, bool flipped, T* U) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t C = pl.Cg, K = p.K, Kp = pl.Kp;
  const int64_t panels = Kp / NR, cblocks = (C + kKC - 1) / kKC;
  const int nt = static_cast<int>(std::min<int64_t>(threads_for_work(K * C * kPoints * 4, p.num_threads),
                                                     panels * cblocks));
#pragma omp parallel for num_threads(std::max(nt, 1)) schedule(static) collapse(2)
  for (int64_t cb = 0; cb < cblocks; ++cb)
    for (int64_t jp = 0; jp < panels; ++jp) {
      const int64_t pc = cb * kKC, kc = std::min(kKC, C - pc), jr = jp * NR;
      transform_weight_panel<T, R>(p, w, flipped, jr, pc, pc + kc, point_stride(C, Kp), U + pc * Kp + jr * kc);
    }
}

// Output channels [k0, k0 + L) of tile `tile`: y = A^T M A + bias, clipped to the output; M holds the 36
// points at stride m_point.
template <typename T, int R>
void store_output_tile(const ConvParams& p, const Plan<T>& pl, int64_t tile, int64_t k0, const T* M,
                       int64_t m_point, const T* bias, T* y) {
  constexpr int L = kLanes<T>, m = kTileOut<R>;
  alignas(64) T tmp[kTileIn * m * L];
  alignas(64) T out[m * m * L];
  const int64_t n = pl.image(tile), th = pl.row(tile), tw = pl.col(tile);
  const int64_t oh0 = th * m, ow0 = tw * m;
  const int64_t rows_out = std::min<int64_t>(m, p.OH - oh0), cols_out = std::min<int64_t>(m, p.OW - ow0);
  output_tile_transform<T, R>(M, m_point, tmp, out);
  const int64_t lanes = std::min<int64_t>(L, p.K - k0);
  if (p.layout == Layout::NCHW) {  // lane l is plane k0 + l: rows of up to m outputs
    const int64_t npix = p.OH * p.OW;
    for (int64_t l = 0; l < lanes; ++l) {
      T* plane = y + (n * p.K + k0 + l) * npix + oh0 * p.OW + ow0;
      const T b = bias ? bias[k0 + l] : T(0);
      for (int64_t r = 0; r < rows_out; ++r)
        for (int64_t c = 0; c < cols_out; ++c) plane[r * p.OW + c] = out[(r * m + c) * L + l] + b;
    }
    return;
  }
  for (int64_t r = 0; r < rows_out; ++r)
    for (int64_t c = 0; c < cols_out; ++c) {
      const T* src = out + (r * m + c) * L;
      T* dst = y + ((n * p.OH + oh0 + r) * p.OW + ow0 + c) * p.K + k0;
      if (bias) {
        for (int64_t l = 0; l < lanes; ++l) dst[l] = src[l] + bias[k0 + l];
      } else {
        for (int64_t l = 0; l < lanes; ++l) dst[l] = src[l];
      }
    }
}

// M (rows x NR, rows of ldm) = A (rows x kc, rows of lda, read in place: the micro-kernel's row-major A) times
// B (one packed kc x NR panel) + beta * M. The rows are cut into ceil(rows / MR) row panels of even sizes, each
// with just its accumulators: 16 tiles (a 14x14 image, or four 7x7 ones) ran as 14 + 14 rows, 12 of them
// zeros, and now run as 8 + 8. A must hold round_up(rows, 2) rows (an odd panel reads one more).
template <typename T>
void rows_gemm(int64_t rows, int64_t kc, const T* A, int64_t lda, const T* B, T* M, int64_t ldm, T beta) {
  using MK = MicroKernel<T>;
  const int64_t row_panels = (rows + MK::MR - 1) / MK::MR;
  for (int64_t i = 0; i < row_panels; ++i) {
    const int64_t r0 = rows * i / row_panels, mr = rows * (i + 1) / row_panels - r0;
    MK::template run_partial<true>(kc, A + r0 * lda, B, M + r0 * ldm, MicroTileView{ldm, 1, mr, MK::NR}, T(1), beta,
                                   nullptr, nullptr, lda);
  }
}

// One transform-domain GEMM panel: M[xi] (rows x NR) = V[xi][:, c0:c0+C] (rows x C) U[xi][:, jr:jr+NR] for
// point xi, with V[xi] at V + xi*v_point (rows of Cp), U holding W columns packed as the micro-kernel's B
// panels (transform_weights: W = Kp) and M[xi] at M + xi*m_point (rows of ldm); W a multiple of NR.
template <typename T>
void panel_gemm(const T* V, int64_t v_point, int64_t Cp, int64_t rows, int64_t c0, int64_t C, const T* U, int64_t W,
                int64_t jr, T* M, int64_t m_point, int64_t ldm, int xi) {
  for (int64_t pc = 0; pc < C; pc += kKC) {
    const int64_t kc = std::min(kKC, C - pc);
    rows_gemm(rows, kc, V + xi * v_point + c0 + pc, Cp, U + xi * point_stride(C, W) + pc * W + jr * kc,
              M + xi * m_point, ldm, pc == 0 ? T(0) : T(1));
  }
}

template <typename T, int R>
void run_block(const ConvParams& p, const Plan<T>& pl, int64_t block, const T* x, const T* U, const T* bias,
               T* y, T* V, T* M) {
  using MK = MicroKernel<T>;
  constexpr int L = kLanes<T>;
  const int64_t TB = pl.TB, Cp = pl.Cp, Kp = pl.Kp;
  const int64_t t0 = block * TB, count = std::min(TB, pl.tiles - t0);
  const int64_t v_point = TB * Cp, m_point = TB * Kp;  // distance between two points' matrices

  // 1. input transform: V[xi][t][c] (zero rows past the last tile)
  for (int64_t t = 0; t < TB; ++t) transform_input_tile(p, pl, Cp, t0 + t, x, V + t * Cp, v_point);

  // 2. the 36 GEMMs
  for (int xi = 0; xi < kPoints; ++xi)
    for (int64_t jr = 0; jr < Kp; jr += MK::NR)
      panel_gemm(V, v_point, Cp, count, pl.channel0(jr), pl.Cg, U, Kp, jr, M + jr, m_point, Kp, xi);

  // 3. output transform: y = A^T M A + bias, clipped to the output
  for (int64_t t = 0; t < count; ++t)
    for (int64_t k0 = 0; k0 < p.K; k0 += L)
      store_output_tile<T, R>(p, pl, t0 + t, k0, M + t * Kp + pl.m_column(k0), m_point, bias, y);
}

// Output channels [jr, jr + NR) of every tile, for few tiles (Regime::Panels): the 36 GEMMs of the panel
// read the shared transformed input V (all tiles, rows of Cp) and either the given transformed weight
// (Ugiven, W = Kp) or the panel's own, transformed here kFusedKC input channels at a time into the thread's
// buffer U and used at once, while it is in L2: transformed whole, a 512-channel panel's U (2.4 MB) went
// out to memory and back, and a 512 -> 512 layer's weight transform cost as much as its GEMMs. Then the
// panel's outputs are written.
template <typename T, int R>
void run_panel(const ConvParams& p, const Plan<T>& pl, int64_t jr, const T* V, const T* w, bool flipped,
               const T* Ugiven, const T* bias, T* y, T* U, T* M) {
  using MK = MicroKernel<T>;
  constexpr int64_t NR = MK::NR;
  constexpr int L = kLanes<T>;
  const int64_t C = pl.Cg, c0 = pl.channel0(jr), Cp = pl.Cp, rows = pl.TB, v_point = rows * Cp, m_point = rows * NR;
  if (Ugiven) {
    for (int xi = 0; xi < kPoints; ++xi)
      panel_gemm(V, v_point, Cp, pl.tiles, c0, C, Ugiven, pl.Kp, jr, M, m_point, NR, xi);
  } else {
    for (int64_t pc = 0; pc < C; pc += kFusedKC) {
      const int64_t kc = std::min(kFusedKC, C - pc), u_point = point_stride(kc, NR);
      transform_weight_panel<T, R>(p, w, flipped, jr, pc, pc + kc, u_point, U);
      for (int xi = 0; xi < kPoints; ++xi)
        rows_gemm(pl.tiles, kc, V + xi * v_point + c0 + pc, Cp, U + xi * u_point, M + xi * m_point, NR,
                  pc == 0 ? T(0) : T(1));
    }
  }
  for (int64_t t = 0; t < pl.tiles; ++t)
    for (int64_t k0 = 0; k0 < NR; k0 += L) {
      const int64_t k = pl.out_channel(jr + k0);
      if (k < 0) break;  // the panel's columns past its group's channels
      store_output_tile<T, R>(p, pl, t, k, M + t * NR + k0, m_point, bias, y);
    }
}

}  // namespace

bool winograd_allowed() { return g_allowed.load(std::memory_order_relaxed); }
void set_winograd_allowed(bool allowed) { g_allowed.store(allowed, std::memory_order_relaxed); }

bool set_winograd_size_rule(bool on) { return g_size_rule.exchange(on); }
bool winograd_size_rule() { return g_size_rule.load(std::memory_order_relaxed); }

int set_winograd_forward_regime(int regime) { return g_forced_regime.exchange(regime); }
int64_t set_winograd_block_tiles(int64_t tiles) { return g_block_tiles.exchange(tiles); }
int64_t winograd_block_tiles() { return g_block_tiles.load(std::memory_order_relaxed); }

bool winograd_direct_nchw(int64_t out_plane) { return out_plane >= kMinDirectNchwPlane; }

bool use_winograd_forward(const ConvParams& p, int64_t elem_size) {
  if (!winograd_allowed() || elem_size != 4 || (p.R != 3 && p.R != 5) || p.S != p.R || p.stride_h != 1 ||
      p.stride_w != 1 || p.dil_h != 1 || p.dil_w != 1 || p.groups < 1 || p.N <= 0 || p.OH <= 0 || p.OW <= 0)
    return false;
  // groups: each group's output channels in whole vectors (an output vector lies in one group), at least a GEMM
  // column panel of them (a group's columns are rounded up to whole panels: 48 -> 64, AlexNet's 2 groups of
  // 128-192 fit; 16 would compute as many zero columns as real ones)
  if (p.groups > 1 && (p.K_per_group() % kLanes<float> != 0 || p.K_per_group() < MicroKernel<float>::NR))
    return false;
  if (!g_size_rule.load(std::memory_order_relaxed)) return true;
  const int64_t m = tile_out(p.R), tiles = p.N * tiles_along(p.OH, m) * tiles_along(p.OW, m), Cg = p.C_per_group();
  const bool channels = p.R == 5 ? Cg >= kMinInChannels5 && p.K_per_group() >= kMinOutChannels5
                                 : Cg >= kMinInChannels && p.K_per_group() >= kMinOutChannels;
  return channels && tiles * kWeightsPerTile >= Cg * p.K;
}

namespace {

// The input gradient of p as the forward convolution it is: grad_output through the rotated, transposed
// kernel, padded by R - 1 - p's padding on each side.
ConvParams input_gradient_problem(const ConvParams& p) {
  ConvParams q = p;
  q.C = p.K, q.K = p.C;
  q.H = p.OH, q.W = p.OW, q.OH = p.H, q.OW = p.W;
  const int64_t e = p.R - 1;
  q.pad_t = e - p.pad_t, q.pad_b = e - p.pad_b, q.pad_l = e - p.pad_l, q.pad_r = e - p.pad_r;
  return q;
}

template <typename T, int R>
void winograd_forward_panels(const ConvParams& p, const Plan<T>& pl, const T* x, const T* w, bool flipped,
                             const T* Ugiven, const T* bias, T* y) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t v_point = pl.TB * pl.Cp;
  T* V = thread_scratch<T>(kScratchWinogradIn, size_t(kPoints * v_point));  // shared: the calling thread's
  const int nt = static_cast<int>(std::min<int64_t>(p.num_threads, pl.Kp / NR));
#pragma omp parallel num_threads(std::max(nt, 1))
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t t = 0; t < pl.TB; ++t) transform_input_tile(p, pl, pl.Cp, t, x, V + t * pl.Cp, v_point);
    T* U = Ugiven ? nullptr
                  : thread_scratch<T>(kScratchWinogradWeight, size_t(kPoints * point_stride(kFusedKC, NR)));
    T* M = thread_scratch<T>(kScratchWinogradOut, size_t(kPoints * pl.TB * NR));
#pragma omp for schedule(dynamic)
    for (int64_t jr = 0; jr < pl.Kp; jr += NR) run_panel<T, R>(p, pl, jr, V, w, flipped, Ugiven, bias, y, U, M);
  }
}

// Regime::Team: U transformed once; the team transforms a block's input (threads over tiles), runs its GEMMs
// (threads over points and NR-column panels: each U panel is read once per block) and its output transforms.
template <typename T, int R>
void winograd_forward_team(const ConvParams& p, const Plan<T>& pl, const T* x, const T* U, const T* bias, T* y) {
  using MK = MicroKernel<T>;
  constexpr int L = kLanes<T>;
  const int64_t v_point = pl.TB * pl.Cp, m_point = pl.TB * pl.Kp;
  const int64_t panels = pl.Kp / MK::NR, k_groups = (p.K + L - 1) / L;
  T* V = thread_scratch<T>(kScratchWinogradIn, size_t(kPoints * v_point));
  T* M = thread_scratch<T>(kScratchWinogradOut, size_t(kPoints * m_point));
#pragma omp parallel num_threads(std::max(p.num_threads, 1))
  {
    DenormalGuard guard;
    for (int64_t b = 0; b < pl.blocks; ++b) {
      const int64_t t0 = b * pl.TB, count = std::min(pl.TB, pl.tiles - t0), rows = round_up(count, 2);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < rows; ++t) transform_input_tile(p, pl, pl.Cp, t0 + t, x, V + t * pl.Cp, v_point);
#pragma omp for schedule(static) collapse(2)
      for (int xi = 0; xi < kPoints; ++xi)
        for (int64_t jp = 0; jp < panels; ++jp)
          panel_gemm(V, v_point, pl.Cp, count, pl.channel0(jp * MK::NR), pl.Cg, U, pl.Kp, jp * MK::NR, M + jp * MK::NR,
                     m_point, pl.Kp, xi);
#pragma omp for schedule(static) collapse(2)
      for (int64_t t = 0; t < count; ++t)
        for (int64_t kg = 0; kg < k_groups; ++kg)
          store_output_tile<T, R>(p, pl, t0 + t, kg * L, M + t * pl.Kp + pl.m_column(kg * L), m_point, bias, y);
    }
  }
}

// Ugiven: w already through winograd_transform_weight (the forward's, never flipped), or null.
template <typename T, int R>
void winograd_forward(const ConvParams& p, const T* x, const T* w, bool flipped, const T* Ugiven, const T* bias,
                      T* y) {
  const Plan<T> pl(p);
  if (pl.regime == Regime::Panels) return winograd_forward_panels<T, R>(p, pl, x, w, flipped, Ugiven, bias, y);
  const T* U = Ugiven;
  if (!U) {
    T* scratch = thread_scratch<T>(kScratchWinogradWeight, size_t(winograd_weight_elems(p, sizeof(T))));
    transform_weights<T, R>(p, pl, w, flipped, scratch);
    U = scratch;
  }
  if (pl.regime == Regime::Team) return winograd_forward_team<T, R>(p, pl, x, U, bias, y);
  const int nt = static_cast<int>(std::min<int64_t>(p.num_threads, pl.blocks));
#pragma omp parallel num_threads(std::max(nt, 1))
  {
    DenormalGuard guard;
    T* V = thread_scratch<T>(kScratchWinogradIn, size_t(kPoints * pl.TB * pl.Cp));
    T* M = thread_scratch<T>(kScratchWinogradOut, size_t(kPoints * pl.TB * pl.Kp));
#pragma omp for schedule(dynamic)
    for (int64_t b = 0; b < pl.blocks; ++b) run_block<T, R>(p, pl, b, x, U, bias, y, V, M);
  }
}

// winograd_forward for p's kernel size (use_winograd_forward: 3 or 5).
template <typename T>
void winograd_forward_sized(const ConvParams& p, const T* x, const T* w, bool flipped, const T* Ugiven, const T* bias,
                            T* y) {
  if (p.R == 5) return winograd_forward<T, 5>(p, x, w, flipped, Ugiven, bias, y);
  winograd_forward<T, 3>(p, x, w, flipped, Ugiven, bias, y);
}

}  // namespace

template <typename T>
void conv_forward_winograd(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  winograd_forward_sized(p, x, w, false, static_cast<const T*>(p.winograd_weight), bias, y);
}

bool winograd_forward_fuses_weight_transform(const ConvParams& params, int64_t elem_size) {
  const ConvParams p = sized_threads(params);  // the thread count the dispatch will plan with
  if (!use_winograd_forward(p, elem_size)) return false;
  return elem_size == 4 ? Plan<float>(p).regime == Regime::Panels : Plan<double>(p).regime == Regime::Panels;
}

int64_t winograd_weight_elems(const ConvParams& p, int64_t elem_size) {
  return kPoints *
         point_stride(p.C_per_group(), elem_size == 4 ? weight_columns<float>(p) : weight_columns<double>(p));
}

template <typename T>
void winograd_transform_weight(const ConvParams& p, const T* w, T* U) {
  if (p.R == 5) return transform_weights<T, 5>(p, Plan<T>(p), w, false, U);
  transform_weights<T, 3>(p, Plan<T>(p), w, false, U);
}

template <typename T>
void conv_backward_input_winograd(const ConvParams& p, const T* gy, const T* w, T* gx) {
  ConvParams q = input_gradient_problem(p);
  q.winograd_weight = nullptr;  // the forward's transformed weight is not this one's
  winograd_forward_sized(q, gy, w, true, static_cast<const T*>(nullptr), static_cast<const T*>(nullptr), gx);
}

bool use_winograd_backward_input(const ConvParams& p, int64_t elem_size) {
  // zero padding of at most R - 1 (the transposed problem's padding is R - 1 - p's), and the whole input
  // reached (an output cropped below the formula's size leaves input rows no output row sees)
  if (p.mode != PaddingMode::Zeros || std::max({p.pad_t, p.pad_b, p.pad_l, p.pad_r}) > p.R - 1) return false;
  if (p.OH != conv_out_size(p.H, p.pad_t, p.pad_b, p.R, 1, 1) ||
      p.OW != conv_out_size(p.W, p.pad_l, p.pad_r, p.S, 1, 1))
    return false;
  return use_winograd_forward(input_gradient_problem(p), elem_size);
}

template void conv_backward_input_winograd<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_winograd<double>(const ConvParams&, const double*, const double*, double*);
template void winograd_transform_weight<float>(const ConvParams&, const float*, float*);
template void winograd_transform_weight<double>(const ConvParams&, const double*, double*);
template void conv_forward_winograd<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void conv_forward_winograd<double>(const ConvParams&, const double*, const double*, const double*,
                                            double*);

}  // namespace cpu
}  // namespace fastconv
