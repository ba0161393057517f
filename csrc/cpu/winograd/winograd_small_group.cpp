// Winograd F(4x4, 3x3) for grouped convolutions with 8, 16 or 32 channels per group in and out (ResNeXt-50 32x4d's
// layer2, layer3 and layer4; RegNet): the forward, the input gradient (the forward of the rotated, transposed
// kernel) and, for 16 channels per group, the weight gradient. The exact kernels for these spend 9 multiplies per
// output pixel and channel pair; here a 4x4 tile costs 36 / 16 per pixel and pair, plus the transforms (with so
// few channels per group they are a third of the work): about half the operations in all.
//
// A vector of 16 channels holds one group (CG = 16) or two (CG = 8); a group of 32 is two vectors. A work unit
// (kUnit) is one vector, or CG = 32 one group. Work items are (image, unit, band of tile rows), as in the exact
// kernels: the band's input rows of the unit's channels are copied to a buffer a vector at a time
// (small_group::copy_band: (row, column, channel) with the zero padding in place, NCHW rows transposed on the way),
// then blocks of up to kBlockTiles tiles go through
//   V[t][xi][c] = (B^T d_t B)[xi]                  input transform, channels as the vector lanes
//   M[t][xi][k] = sum_c V[t][xi][c] U[xi][c][k]      per point, a register block of tiles x the unit's output
//                                                    vectors, the group's input value c broadcast from memory
//                                                    (CG = 8: the two groups' values c as one 64-bit broadcast)
//   y_t = A^T M_t A + bias                         output transform, clipped at the band's edges
// M overwrites V in place (a tile's point is read in full before its result is stored), so a block of 8 tiles, 18 KB
// (CG = 32: 36 KB), stays in L1 or L2 beside the unit's transformed weight U[xi][c][k].
// CG = 8: lanes are interleaved, lane 2i + h holding channel i of the vector's group h (lane_channel), so that one
// 64-bit broadcast gives every lane its own group's input channel c: the band buffers are permuted so after the copy,
// the outputs back before the store.
#include "winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../conv/conv_small_group_kernel.h"
#include "../gemm/gemm_scratch.h"
#include "winograd_transforms.h"

namespace fastconv {
namespace cpu {
namespace {

#if defined(__AVX512F__)
constexpr int L = 16;           // float lanes: one group's channels, or two groups'
constexpr int kTile = 4;        // output tile edge of F(4x4, 3x3)
constexpr int kBlockTiles = 8;  // tiles per GEMM register block (8 accumulators: 4 FMA latencies' worth)
constexpr int64_t kTileFloats = kPoints * L;  // one tile's V or M of one vector of channels

// Channels per work unit (one vector, or CG = 32: one group of two vectors), per tile point of V and M.
template <int CG>
constexpr int kUnit = CG == 32 ? 2 * L : L;
template <int CG>
constexpr int64_t kUnitTile = kPoints * kUnit<CG>;  // one tile's V or M
template <int CG>
constexpr int64_t kUnitWeight = kPoints * CG * kUnit<CG>;  // one unit's U

// The channel (of the vector's 16) in lane l: itself, or for two groups per vector interleaved (see the top).
template <int CG>
constexpr int lane_channel(int l) {
  return CG != 8 ? l : (l & 1) * 8 + (l >> 1);
}

// The vector of channels in lane order (CG = 8: interleaved), and back.
template <int CG>
inline __m512 to_lanes(__m512 v) {
  if constexpr (CG != 8) return v;
  const __m512i idx = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  return _mm512_permutexvar_ps(idx, v);
}
template <int CG>
inline __m512 from_lanes(__m512 v) {
  if constexpr (CG != 8) return v;
  const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  return _mm512_permutexvar_ps(idx, v);
}

// acc + w * broadcast(*x), one FMA with a broadcast memory operand (asm: from intrinsics the compiler keeps the
// broadcasts that neighbouring tiles share in registers and spills the accumulators).
inline __m512 fma_broadcast(__m512 w, const float* x, __m512 acc) {
  asm("vfmadd231ps %1%{1to16%}, %2, %0" : "+v"(acc) : "m"(*x), "v"(w));
  return acc;
}

// acc + w * (every lane's group's input channel c of the lane-ordered point at v): CG = 16, 32 the value v[c]
// broadcast in the FMA; CG = 8 the pair (v[2c], v[2c + 1]) as one 64-bit broadcast (asm too: see fma_broadcast).
template <int CG>
inline __m512 fma_channel(__m512 w, const float* v, int c, __m512 acc) {
  if constexpr (CG != 8) {
    return fma_broadcast(w, v + c, acc);
  } else {
    __m512 b;
    asm("vbroadcastsd %1, %0" : "=v"(b) : "m"(*reinterpret_cast<const double*>(v + 2 * c)));
    return _mm512_fmadd_ps(w, b, acc);
  }
}

// The weight vector at u (asm: loaded by intrinsics, the compiler hoisted all of a point's weights into registers
// and spilled the accumulators).
inline __m512 load_weight(const float* u) {
  __m512 w;
  asm("vmovups %1, %0" : "=v"(w) : "m"(*reinterpret_cast<const __m512*>(u)));
  return w;
}

// M[t][xi] = sum_c V[t][xi][c] U[xi][c] for TB tiles of vm (tile t at vm + t * kUnitTile), in place: per point,
// TB tiles x the unit's one or two output vectors in registers.
template <int CG, int TB>
void block_points(float* vm, const float* U) {
  constexpr int NV = kUnit<CG> / L;
  for (int xi = 0; xi < kPoints; ++xi) {
    __m512 acc[NV][TB];
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j)
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) acc[j][t] = _mm512_setzero_ps();
    const float* u = U + xi * CG * kUnit<CG>;
    float* v = vm + xi * kUnit<CG>;
#pragma GCC unroll 32
    for (int c = 0; c < CG; ++c) {
      __m512 w[NV];
#pragma GCC unroll 2
      for (int j = 0; j < NV; ++j) w[j] = load_weight(u + c * kUnit<CG> + j * L);
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t)
#pragma GCC unroll 2
        for (int j = 0; j < NV; ++j) acc[j][t] = fma_channel<CG>(w[j], v + t * kUnitTile<CG>, c, acc[j][t]);
    }
#pragma GCC unroll 2
    for (int j = 0; j < NV; ++j)
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) _mm512_storeu_ps(v + t * kUnitTile<CG> + j * L, acc[j][t]);
  }
}

template <int CG>
void block_points(int64_t tiles, float* vm, const float* U) {
  switch (tiles) {
    case 1: return block_points<CG, 1>(vm, U);
    case 2: return block_points<CG, 2>(vm, U);
    case 3: return block_points<CG, 3>(vm, U);
    case 4: return block_points<CG, 4>(vm, U);
    case 5: return block_points<CG, 5>(vm, U);
    case 6: return block_points<CG, 6>(vm, U);
    case 7: return block_points<CG, 7>(vm, U);
    default: return block_points<CG, 8>(vm, U);
  }
}

// U[((u*36 + xi)*CG + c)*U + l] = (G w(k, c) G^T)[xi] for every unit u of output channels (U = kUnit of them),
// k = U u + 16 (l / 16) + lane_channel(l % 16), with wt(k, c, e) the weight of output channel k, its group's input
// channel c, tap e = 3*row + col (the forward's, or the input gradient's rotated, transposed one).
template <int CG, class Weight>
void transform_weight(int64_t units, Weight wt, float* U, int num_threads) {
  constexpr int NV = kUnit<CG> / L;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (num_threads > 1 && units > 1)
  for (int64_t uc = 0; uc < units * CG; ++uc) {
    const int64_t u = uc / CG, c = uc % CG;
    alignas(64) float taps[9 * L];
    alignas(64) float tmp[kTileIn * 3 * L];
    for (int j = 0; j < NV; ++j) {
      for (int e = 0; e < 9; ++e)
        for (int l = 0; l < L; ++l) taps[e * L + l] = wt(u * kUnit<CG> + j * L + lane_channel<CG>(l), c, e);
      weight_tile_transform<float, L, 3>(taps, tmp, U + u * kUnitWeight<CG> + c * kUnit<CG> + j * L,
                                         CG * kUnit<CG>);
    }
  }
}

// Output rows per band: the band's input rows (kTile per tile row, plus 2) of wb columns within kBandBytes, and
// enough items for 4 per thread.
int64_t band_tile_rows(const ConvParams& q, int64_t tile_rows, int64_t wb, int64_t unit) {
  int64_t rows = tile_rows;
  const int64_t row_bytes = wb * unit * int64_t(sizeof(float));
  while (rows > 1 && (rows * kTile + 2) * row_bytes > small_group::kBandBytes) rows = (rows + 1) / 2;
  while (rows > 1 && q.N * (q.K / unit) * ((tile_rows + rows - 1) / rows) < 4 * q.num_threads) rows = (rows + 1) / 2;
  return rows;
}

// Rows [r0, r0 + nrows) of q's input (image n, channels [k0, k0 + 16)) as buf's (row, column, lane) rows of wb
// columns from -pad_l, zeros outside the image.
template <int CG>
void copy_rows(const ConvParams& q, const float* x, int64_t n, int64_t k0, int64_t r0, int64_t nrows, int64_t wb,
               float* buf) {
  for (int64_t i = 0; i < nrows; ++i)  // (copy_band fills the rows inside the image)
    if (r0 + i < 0 || r0 + i >= q.H) std::memset(buf + i * wb * L, 0, size_t(wb * L) * sizeof(float));
  small_group::copy_band(q, x, n, k0, r0, nrows, wb, buf);
  if constexpr (CG == 8)
    for (int64_t i = std::max<int64_t>(0, -r0); i < nrows && r0 + i < q.H; ++i)
      for (int64_t j = 0; j < wb; ++j) {
        float* px = buf + (i * wb + j) * L;
        _mm512_storeu_ps(px, to_lanes<CG>(_mm512_loadu_ps(px)));
      }
}

// The 6x6 input patch of the tile at (tile row th, tile column tw) of a band buffer (wb columns), transformed into
// V[xi*point_stride + c].
inline void transform_patch(const float* buf, int64_t wb, int64_t th, int64_t tw, float* patch, float* tmp, float* V,
                            int64_t point_stride) {
  const float* src = buf + (th * kTile * wb + tw * kTile) * L;
  for (int i = 0; i < kTileIn; ++i) std::memcpy(patch + i * kTileIn * L, src + i * wb * L, kTileIn * L * sizeof(float));
  input_tile_transform<float>(patch, tmp, V, point_stride);
}

// The forward convolution q (the shape of small_group_winograd_applies) with U transformed. Items are (image, unit of
// output channels, band of tile rows); a unit's input channels are copied a vector at a time.
template <int CG>
void forward_groups(const ConvParams& q, const float* x, const float* U, const float* bias, float* y) {
  using small_group::RowOutput;
  constexpr int NV = kUnit<CG> / L;
  const int64_t units = q.K / kUnit<CG>, TH = (q.OH + kTile - 1) / kTile, TW = (q.OW + kTile - 1) / kTile;
  const int64_t wb = TW * kTile + 2;  // buffer columns, from -pad_l
  const int64_t band = band_tile_rows(q, TH, wb, kUnit<CG>), bands = (TH + band - 1) / band;
  const int64_t items = q.N * units * bands, buf_size = (band * kTile + 2) * wb * L, rows_size = band * kTile * q.OW * L;
  const RowOutput<float> out(q.layout, y, q.K, q.OH, q.OW);
#pragma omp parallel num_threads(q.num_threads)
  {
    DenormalGuard guard;
    float* buf = thread_scratch<float>(kScratchCol, size_t(NV * buf_size));
    float* vm = thread_scratch<float>(kScratchWinogradIn, size_t(kBlockTiles * kUnitTile<CG>));
    float* rows_out = thread_scratch<float>(kScratchAcc, size_t(NV * rows_size));  // (NCHW)
    alignas(64) float patch[kTileFloats], tmp[kTileFloats], tile_out[kTile * kTile * L];
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t b = item % bands, u = (item / bands) % units, n = item / (bands * units), k0 = u * kUnit<CG>;
      const int64_t th0 = b * band, th1 = std::min(TH, th0 + band), ih0 = th0 * kTile - q.pad_t;
      const int64_t nrows = (th1 - th0) * kTile + 2, oh0 = th0 * kTile, oh1 = std::min(q.OH, th1 * kTile);
      for (int j = 0; j < NV; ++j) copy_rows<CG>(q, x, n, k0 + j * L, ih0, nrows, wb, buf + j * buf_size);
      const float* Uu = U + u * kUnitWeight<CG>;
      const int64_t tiles = (th1 - th0) * TW;
      for (int64_t t0 = 0; t0 < tiles; t0 += kBlockTiles) {
        const int64_t nt = std::min<int64_t>(kBlockTiles, tiles - t0);
        for (int64_t t = 0; t < nt; ++t)
          for (int j = 0; j < NV; ++j)
            transform_patch(buf + j * buf_size, wb, (t0 + t) / TW, (t0 + t) % TW, patch, tmp,
                            vm + t * kUnitTile<CG> + j * L, kUnit<CG>);
        block_points<CG>(nt, vm, Uu);
        for (int64_t t = 0; t < nt; ++t)
          for (int j = 0; j < NV; ++j) {
            const int64_t th = th0 + (t0 + t) / TW, tw = (t0 + t) % TW, kj = k0 + j * L;
            const __m512 bv = bias ? _mm512_loadu_ps(bias + kj) : _mm512_setzero_ps();
            output_tile_transform<float, 3>(vm + t * kUnitTile<CG> + j * L, kUnit<CG>, tmp, tile_out);
            for (int64_t r = 0; r < kTile && th * kTile + r < q.OH; ++r) {
              const int64_t oh = th * kTile + r;
              float* row = out.row(n, oh, kj, rows_out + j * rows_size + (oh - oh0) * q.OW * L);
              for (int64_t c = 0; c < kTile && tw * kTile + c < q.OW; ++c) {
                const __m512 o = _mm512_add_ps(from_lanes<CG>(_mm512_load_ps(tile_out + (r * kTile + c) * L)), bv);
                float* dst = row + (tw * kTile + c) * out.step;
                if (out.stream) _mm512_stream_ps(dst, o);
                else _mm512_storeu_ps(dst, o);
              }
            }
          }
      }
      for (int j = 0; j < NV; ++j)
        for (int64_t oh = oh0; oh < oh1; ++oh)
          out.finish(n, oh, k0 + j * L, rows_out + j * rows_size + (oh - oh0) * q.OW * L);
    }
    out.fence();
  }
}

// P[xi][c][k] += sum over the tiles t of V[t][xi][c] * D[t][xi][k] (the tiles' transformed inputs and grad_outputs,
// kTileFloats apart): per point, the CG accumulators of P[xi] in registers while the tiles go by.
template <int CG>
void accumulate_points(int64_t tiles, const float* V, const float* D, float* P) {
  for (int xi = 0; xi < kPoints; ++xi) {
    __m512 acc[CG];
    float* pp = P + xi * CG * L;
#pragma GCC unroll 16
    for (int c = 0; c < CG; ++c) acc[c] = _mm512_loadu_ps(pp + c * L);
    for (int64_t t = 0; t < tiles; ++t) {
      const __m512 d = load_weight(D + t * kTileFloats + xi * L);
      const float* v = V + t * kTileFloats + xi * L;
#pragma GCC unroll 16
      for (int c = 0; c < CG; ++c) acc[c] = fma_channel<CG>(d, v, c, acc[c]);
    }
#pragma GCC unroll 16
    for (int c = 0; c < CG; ++c) _mm512_storeu_ps(pp + c * L, acc[c]);
  }
}

// The weight gradient of p: dW_g(k, c) = G^T [sum over tiles (B^T d B)[c] . (A dy A^T)[k]] G. A thread takes whole
// vectors of groups (each gradient element summed by one thread in a fixed order: the same result on any thread
// count); per image, bands of tile rows of the input and of grad_output (zeros past its edge: clipped outputs add
// nothing).
template <int CG>
void backward_weight_groups(const ConvParams& p, const float* x, const float* gy, float* gw) {
  const int64_t TH = (p.OH + kTile - 1) / kTile, TW = (p.OW + kTile - 1) / kTile, wb = TW * kTile + 2;
  const int64_t wd = TW * kTile;  // grad_output buffer columns
  int64_t band = TH;
  while (band > 1 && band * TW * 2 * kTileFloats * int64_t(sizeof(float)) > (256 << 10)) band = (band + 1) / 2;
  ConvParams src = p;  // grad_output as copy_band's input: K channels, OH x OW, no padding
  src.C = p.K, src.H = p.OH, src.W = p.OW, src.pad_t = src.pad_b = src.pad_l = src.pad_r = 0;
  const int64_t vectors = p.K / L;
  const int nt = static_cast<int>(std::min<int64_t>(p.num_threads, vectors));
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    float* buf = thread_scratch<float>(kScratchCol, size_t((band * kTile + 2) * wb * L));
    float* dbuf = thread_scratch<float>(kScratchAcc, size_t(band * kTile * wd * L));
    float* V = thread_scratch<float>(kScratchWinogradIn, size_t(2 * band * TW * kTileFloats));
    float* D = V + band * TW * kTileFloats;
    float* P = thread_scratch<float>(kScratchWinogradOut, size_t(kUnitWeight<CG>));
    alignas(64) float patch[kTileFloats], tmp[kTileFloats], dy[kTile * kTile * L], g9[9 * L];
#pragma omp for schedule(dynamic)
    for (int64_t v = 0; v < vectors; ++v) {
      const int64_t k0 = v * L;
      std::fill(P, P + kUnitWeight<CG>, 0.f);
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t th0 = 0; th0 < TH; th0 += band) {
          const int64_t th1 = std::min(TH, th0 + band), tiles = (th1 - th0) * TW;
          copy_rows<CG>(p, x, n, k0, th0 * kTile - p.pad_t, (th1 - th0) * kTile + 2, wb, buf);
          copy_rows<CG>(src, gy, n, k0, th0 * kTile, (th1 - th0) * kTile, wd, dbuf);
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t th = t / TW, tw = t % TW;
            transform_patch(buf, wb, th, tw, patch, tmp, V + t * kTileFloats, L);
            for (int r = 0; r < kTile; ++r)
              std::memcpy(dy + r * kTile * L, dbuf + ((th * kTile + r) * wd + tw * kTile) * L,
                          kTile * L * sizeof(float));
            grad_output_tile_transform<float, 3>(dy, tmp, D + t * kTileFloats, L);
          }
          accumulate_points<CG>(tiles, V, D, P);
        }
      // P[xi][c][l] -> gw[k][c][e], k = k0 + lane_channel(l)
      for (int64_t c = 0; c < CG; ++c) {
        weight_grad_tile_transform<float, 3>(P + c * L, CG * L, tmp, g9);
        for (int e = 0; e < 9; ++e)
          for (int l = 0; l < L; ++l) gw[((k0 + lane_channel<CG>(l)) * CG + c) * 9 + e] = g9[e * L + l];
      }
    }
  }
}
#endif

bool shape_applies(const ConvParams& p, int64_t elem_size) {
#if defined(__AVX512F__)
  const int64_t cg = p.C_per_group();
  return winograd_allowed() && elem_size == 4 && p.groups > 1 && (cg == 8 || cg == 16 || cg == 32) &&
         p.K_per_group() == cg &&
         p.K % L == 0 &&
         p.R == 3 && p.S == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         p.mode == PaddingMode::Zeros && p.N > 0 && p.OH > 0 && p.OW > 0 && p.H > 0 && p.W > 0;
#else
  (void)p, (void)elem_size;
  return false;
#endif
}

}  // namespace

bool small_group_winograd_applies(const ConvParams& p, int64_t elem_size) { return shape_applies(p, elem_size); }

// 8 channels per group measured 0.90-1.31x of the exact weight gradient (conv_small_group.cpp, already 1.8-3x
// torch's there): only 16 take this one.
bool small_group_winograd_backward_weight_applies(const ConvParams& p, int64_t elem_size) {
  return shape_applies(p, elem_size) && p.C_per_group() == 16;
}

bool small_group_winograd_backward_input_applies(const ConvParams& p, int64_t elem_size) {
  return shape_applies(p, elem_size) && p.pad_t <= 2 && p.pad_b <= 2 && p.pad_l <= 2 && p.pad_r <= 2 && p.H > 0 &&
         p.W > 0;
}

#if defined(__AVX512F__)
namespace {

template <int CG>
void forward(const ConvParams& p, const float* x, const float* w, const float* bias, float* y) {
  const int64_t units = p.K / kUnit<CG>;
  float* U = thread_scratch<float>(kScratchWinogradWeight, size_t(units * kUnitWeight<CG>));
  transform_weight<CG>(units, [&](int64_t k, int64_t c, int e) { return w[(k * CG + c) * 9 + e]; }, U,
                       p.num_threads);
  forward_groups<CG>(p, x, U, bias, y);
}

// grad_input = grad_output through the kernel rotated by 180 degrees, each group's input and output channels
// swapped, padded by 2 - p's padding
template <int CG>
void backward_input(const ConvParams& p, const float* gy, const float* w, float* gx) {
  ConvParams q = p;
  q.C = p.K, q.K = p.C, q.H = p.OH, q.W = p.OW, q.OH = p.H, q.OW = p.W;
  q.pad_t = 2 - p.pad_t, q.pad_b = 2 - p.pad_b, q.pad_l = 2 - p.pad_l, q.pad_r = 2 - p.pad_r;
  const int64_t units = p.C / kUnit<CG>;
  float* U = thread_scratch<float>(kScratchWinogradWeight, size_t(units * kUnitWeight<CG>));
  // output lane channel cx (of grad_input) from its group's grad_output channel c
  transform_weight<CG>(units, [&](int64_t cx, int64_t c, int e) {
    return w[((cx / CG * CG + c) * CG + cx % CG) * 9 + 8 - e];
  }, U, p.num_threads);
  forward_groups<CG>(q, gy, U, nullptr, gx);
}

}  // namespace
#endif

void small_group_winograd_forward(const ConvParams& p, const float* x, const float* w, const float* bias, float* y) {
#if defined(__AVX512F__)
  if (p.C_per_group() == 8) return forward<8>(p, x, w, bias, y);
  if (p.C_per_group() == 32) return forward<32>(p, x, w, bias, y);
  forward<16>(p, x, w, bias, y);
#else
  (void)p, (void)x, (void)w, (void)bias, (void)y;
#endif
}

void small_group_winograd_backward_input(const ConvParams& p, const float* gy, const float* w, float* gx) {
#if defined(__AVX512F__)
  if (p.C_per_group() == 8) return backward_input<8>(p, gy, w, gx);
  if (p.C_per_group() == 32) return backward_input<32>(p, gy, w, gx);
  backward_input<16>(p, gy, w, gx);
#else
  (void)p, (void)gy, (void)w, (void)gx;
#endif
}

void small_group_winograd_backward_weight(const ConvParams& p, const float* x, const float* gy, float* gw) {
#if defined(__AVX512F__)
  backward_weight_groups<16>(p, x, gy, gw);
#else
  (void)p, (void)x, (void)gy, (void)gw;
#endif
}

}  // namespace cpu
}  // namespace fastconv
