// Winograd weight gradient (Lavin & Gray), F(4x4, 3x3) and F(2x2, 5x5): with V the forward's input transform
// and E the transposed output transform of grad_output,
//   V[xi][t][c] = (B^T d_tc B)[xi]      6x6 input patch of tile t (the forward's)
//   E[xi][t][k] = (A dy_tk A^T)[xi]     m x m grad_output tile t (m = 4, 2)
//   M[xi][k][c] = sum_t E[xi][t][k] V[xi][t][c]     36 GEMMs reducing over every tile of the batch
//   gw[k][c]    = G^T M_kc G            R x R (3x3, 5x5)
// 36 multiplies per tile and channel pair instead of 144 (3x3) or 100 (5x5). The thread team works through blocks of
// tiles together: it transforms a block (threads over tiles), then runs the block's GEMMs (threads over points and
// 32-channel strips of M, each adding into its own part of M), so M exists once whatever the thread count and needs
// no reduction. After the last block the team transforms M into gw. Groups: V and E hold every channel; group g's
// GEMMs multiply its output channels' columns of E by its input channels' columns of V into its rows of M (a row of M
// holds the C / groups input channels of its output channel's group).
#include <algorithm>
#include <cstring>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "../gemm/gemm_microkernel.h"
#include "../gemm/gemm_scratch.h"
#include "winograd.h"
#include "winograd_tiles.h"
#include "winograd_transforms.h"

namespace fastconv {
namespace cpu {

using namespace winograd;

namespace {

// A block's V and E together: about this many bytes (shared by the team; they stay in the L3 cache).
constexpr int64_t kBlockBytes = int64_t(8) << 20;
// When M is larger than this, every block re-reads and re-writes it from memory: blocks of at least
// kMinTilesLargeM tiles keep that traffic small against the block's multiplies (a tile brings 2 flops per M
// element; M's 8 bytes of traffic per element cost about 40 flops at the machine's FMA rate).
constexpr int64_t kLargeMBytes = int64_t(16) << 20;
constexpr int64_t kMinTilesLargeM = 384;
constexpr int64_t kKC = 128;  // GEMM depth per pass: the V strip (kKC x NR) and the E strip stay in L1

template <typename T>
struct Plan : TileGrid {
  using MK = MicroKernel<T>;
  int64_t Cp, Kp;      // row strides of V and E (padded_row)
  int64_t Cg, Kg;      // channels per group
  int64_t Cm, Km;      // M: Km rows (K rounded to MR) of Cm values (Cg rounded to NR) per point
  int64_t TB, blocks;  // tiles per block, blocks

  explicit Plan(const ConvParams& p) : TileGrid(p) {
    Cp = padded_row<T>(p.C);
    Kp = padded_row<T>(p.K);
    Cg = p.C_per_group(), Kg = p.K_per_group();
    Cm = round_up(Cg, MK::NR);
    Km = round_up(p.K, MK::MR);
    const int64_t per_tile = kPoints * int64_t(sizeof(T)) * (Cp + Kp);
    TB = std::max<int64_t>(1, kBlockBytes / per_tile);
    if (kPoints * Km * Cm * int64_t(sizeof(T)) > kLargeMBytes) TB = std::max(TB, kMinTilesLargeM);
    if (const int64_t forced = winograd_block_tiles()) TB = forced;
    TB = std::min(TB, tiles);
    blocks = (tiles + TB - 1) / TB;
  }
  int64_t v_point() const { return TB * Cp; }
  int64_t e_point() const { return TB * Kp; }
  int64_t m_point() const { return Km * Cm; }
};

// grad_output's m x m tile (n, th, tw), output channels [k0, k0 + L) (zeros past K and past the output's
// edge), as dy[(r*m + c)*L + lane]. channels_last: a lane is one contiguous load; NCHW: 16 planes.
template <typename T, int R>
void gather_grad_output(const ConvParams& p, const T* gy, int64_t n, int64_t th, int64_t tw, int64_t k0, T* dy) {
  constexpr int L = kLanes<T>, m = kTileOut<R>;
  const int64_t oh0 = th * m, ow0 = tw * m, plane = p.OH * p.OW;
  const int64_t rows = std::min<int64_t>(m, p.OH - oh0), cols = std::min<int64_t>(m, p.OW - ow0);
  const int64_t lanes = std::min<int64_t>(L, p.K - k0);
  const bool nhwc = p.layout == Layout::NHWC;
  const T* gyn = gy + n * plane * p.K;
  if (lanes < L || rows < m || cols < m) std::fill(dy, dy + m * m * L, T(0));
  if (nhwc) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        std::memcpy(dy + (r * m + c) * L, gyn + ((oh0 + r) * p.OW + ow0 + c) * p.K + k0, lanes * sizeof(T));
    return;
  }
  for (int64_t l = 0; l < lanes; ++l) {
    const T* src = gyn + (k0 + l) * plane + oh0 * p.OW + ow0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) dy[(r * m + c) * L + l] = src[r * p.OW + c];
  }
}

// Tile `tile`'s transformed grad_output: point xi of output channel k to E[xi*e_point + k] (channels [0, Kp)).
template <typename T, int R>
void transform_grad_output_tile(const ConvParams& p, const Plan<T>& pl, int64_t tile, const T* gy, T* E,
                                int64_t e_point) {
  constexpr int L = kLanes<T>, m = kTileOut<R>;
  alignas(64) T dy[m * m * L];
  alignas(64) T tmp[kTileIn * m * L];
  for (int64_t k0 = 0; k0 < pl.Kp; k0 += L) {
    gather_grad_output<T, R>(p, gy, pl.image(tile), pl.row(tile), pl.col(tile), k0, dy);
    grad_output_tile_transform<T, R>(dy, tmp, E + k0, e_point);
  }
}

// Group g's M[xi][:, jr:jr+NR] (+)= E[xi][:, its output channels]^T V[xi][:, its input channels jr:jr+NR]
// over the block's `depth` tiles (jr counts within the group); first: M starts here.
template <typename T>
void strip_gemm(const Plan<T>& pl, int xi, int64_t g, int64_t jr, int64_t depth, bool first, const T* V,
                const T* E, T* M) {
  using MK = MicroKernel<T>;
  const int64_t k0 = g * pl.Kg;
  const T* Vx = V + xi * pl.v_point() + g * pl.Cg + jr;
  const T* Ex = E + xi * pl.e_point() + k0;
  T* Mx = M + xi * pl.m_point() + k0 * pl.Cm + jr;
  const int64_t nr = std::min<int64_t>(MK::NR, pl.Cg - jr);
  for (int64_t pc = 0; pc < depth; pc += kKC) {
    const int64_t kc = std::min(kKC, depth - pc);
    const T beta = first && pc == 0 ? T(0) : T(1);
    for (int64_t ir = 0; ir < pl.Kg; ir += MK::MR)
      MK::template run<false, true>(kc, Ex + pc * pl.Kp + ir, Vx + pc * pl.Cp, Mx + ir * pl.Cm,
                                    MicroTileView{pl.Cm, 1, std::min<int64_t>(MK::MR, pl.Kg - ir), nr}, T(1), beta,
                                    nullptr, nullptr, pl.Kp, pl.Cp);
  }
}

// gw[k][c0 + lane] = G^T M_kc G for the input channels [c0, c0 + L) (of its group) of output channel k.
template <typename T, int R>
void store_weight_gradient(const Plan<T>& pl, int64_t k, int64_t c0, const T* M, T* gw) {
  constexpr int L = kLanes<T>, RR = R * R;
  alignas(64) T tmp[R * kTileIn * L];
  alignas(64) T g[RR * L];
  weight_grad_tile_transform<T, R>(M + k * pl.Cm + c0, pl.m_point(), tmp, g);
  const int64_t lanes = std::min<int64_t>(L, pl.Cg - c0);
  for (int64_t l = 0; l < lanes; ++l) {
    T* dst = gw + (k * pl.Cg + c0 + l) * RR;
    for (int e = 0; e < RR; ++e) dst[e] = g[e * L + l];
  }
}

template <typename T, int R>
void backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw) {
  using MK = MicroKernel<T>;
  constexpr int L = kLanes<T>;
  const Plan<T> pl(p);
  // slack past the ends: the last GEMM strips read up to NR (V) and MR (E) values past the last row
  T* V = thread_scratch<T>(kScratchWinogradIn, size_t(kPoints * pl.v_point() + MK::NR));
  T* E = thread_scratch<T>(kScratchWinogradOut, size_t(kPoints * pl.e_point() + MK::MR));
  T* M = thread_scratch<T>(kScratchWinogradWeight, size_t(kPoints * pl.m_point()));
  const int64_t group_strips = pl.Cm / MK::NR, strips = p.groups * group_strips, c_groups = (pl.Cg + L - 1) / L;
#pragma omp parallel num_threads(std::max(p.num_threads, 1))
  {
    DenormalGuard guard;
    for (int64_t b = 0; b < pl.blocks; ++b) {
      const int64_t t0 = b * pl.TB, count = std::min(pl.TB, pl.tiles - t0);
#pragma omp for schedule(static)
      for (int64_t t = 0; t < count; ++t) {
        transform_input_tile(p, pl, pl.Cp, t0 + t, x, V + t * pl.Cp, pl.v_point());
        transform_grad_output_tile<T, R>(p, pl, t0 + t, gy, E + t * pl.Kp, pl.e_point());
      }
#pragma omp for schedule(static) collapse(2)
      for (int xi = 0; xi < kPoints; ++xi)
        for (int64_t s = 0; s < strips; ++s)
          strip_gemm(pl, xi, s / group_strips, s % group_strips * MK::NR, count, b == 0, V, E, M);
    }
#pragma omp for schedule(static) collapse(2)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t cg = 0; cg < c_groups; ++cg) store_weight_gradient<T, R>(pl, k, cg * L, M, gw);
  }
}

}  // namespace

// The forward's shapes, with at least 24 input and 16 output channels (per group): against the exact weight
// gradients, 1.2-2.0x at 24-64 input channels, about even at 16 (0.9-1.2x), 0.75-0.85x at 8 input or output
// channels (2 threads, batch 8, 28x28 and 56x56); AlexNet's 2 groups of 192 -> 192 and 192 -> 128 at 13x13
// 1.33-1.45x.
// Groups of 32 output channels (ResNeXt-50's layer4) stay exact: their GEMMs are one 32-column panel each, and
// Winograd measured 0.50-0.83x of the exact weight gradient (A/B in one process, 2 threads, 7x7 and 14x14).
bool use_winograd_backward_weight(const ConvParams& p, int64_t elem_size) {
  return use_winograd_forward(p, elem_size) &&
         (!winograd_size_rule() ||
          (p.C_per_group() >= 24 && p.K_per_group() >= 16 && (p.groups == 1 || p.K_per_group() > 32)));
}

template <typename T>
void conv_backward_weight_winograd(const ConvParams& p, const T* x, const T* gy, T* gw) {
  if (p.R == 5) return backward_weight<T, 5>(p, x, gy, gw);
  backward_weight<T, 3>(p, x, gy, gw);
}

template void conv_backward_weight_winograd<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_winograd<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
