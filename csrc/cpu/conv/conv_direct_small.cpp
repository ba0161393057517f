// Direct forward convolution for few input channels (see conv_direct_small.h).
//
// Each work item (image, group, band of output rows) first copies the input rows of its band into a
// padded buffer (padding of every mode resolved there with remap_index, so the kernel sees an unpadded
// convolution). With stride_w > 1 each buffered row is split into stride_w phases (columns ph, ph + sw,
// ...), so the inputs of consecutive output columns are consecutive in memory for every tap. No column
// matrix, no packing of the activations. Two register-block orientations (make_geometry picks one):
//   columns: KB output channels x NV vectors of output columns (two rows when a row fits one vector);
//            per tap (c, r, s) NV input-vector loads and KB*NV FMAs with broadcast weights.
//   channels (kvec): P pixels of a row x NK vectors of output channels; per tap NK weight-vector loads
//            and P*NK FMAs with broadcast inputs. Fills every lane when K is a multiple of the vector
//            width however narrow the rows are, and NHWC outputs are stored as whole vectors.
// Vectors are GCC/Clang vector extensions of 64 bytes (one AVX-512 register; two AVX2 registers
// elsewhere, with fewer accumulators); only the broadcast FMA uses AVX-512 intrinsics (with a portable
// fallback), see conv_direct_small_band.h.
#include "conv_direct_small.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_direct_small_band.h"
#include "conv_implicit_nhwc.h"  // implicit_forward_applies
#include "../gemm/gemm_scratch.h"

namespace fastconv {
namespace cpu {
namespace {

using namespace small_direct;

// Pixel blocks the channel-vector kernel is instantiated for (P * NK accumulators).
constexpr int kPixelBlocks[] = {4, 5, 6, 7, 8, 10, 12, 14, 16, 24};

// Pixel block for a row of OW outputs: fewest blocks * (P + 1) (the +1: the weight loads of a tap);
// 0 when no block fits the registers.
int64_t pick_pixels(int64_t OW, int64_t NK) {
  int64_t best = INT64_MAX, P = 0;
  for (int pb : kPixelBlocks) {
    if (pb * NK > kMaxAcc) break;
    const int64_t cost = (OW + pb - 1) / pb * (pb + 1);
    if (cost <= best) best = cost, P = pb;
  }
  return P;
}

Geometry make_geometry(const ConvParams& p, int64_t elem_size) {
  Geometry g;
  g.Cg = p.C_per_group(), g.Kg = p.K_per_group(), g.lanes = 64 / elem_size;
  // Fewest computed (padded) output columns; on a tie two vectors (each weight broadcast feeds two FMAs).
  g.NV = round_up(p.OW, 2 * g.lanes) <= round_up(p.OW, g.lanes) ? 2 : 1;
  g.row_pairs = g.NV == 1 && p.OH >= 2;
  if (g.row_pairs) g.NV = 2;
  // Output-channel block minimising blocks * (KB + 2): the +2 models the per-tap loads shared by a block.
  g.KB = 1;
  int64_t best = INT64_MAX;
  for (int kb : kBlockSizes) {
    if (kb * g.NV > kMaxAcc) break;
    const int64_t blocks = (g.Kg + kb - 1) / kb, cost = blocks * (kb + 2);
    if (cost <= best) best = cost, g.KB = kb;
  }
  g.kblocks = (g.Kg + g.KB - 1) / g.KB;
  g.OWv = round_up(p.OW, g.row_pairs ? g.lanes : g.NV * g.lanes);
  // The other orientation: vectors over output channels (NK of them), P pixels of a row in registers.
  // Taken when it leaves fewer idle lanes (K a multiple of the vector width, narrow rows: LeNet C3).
  const int64_t NK = g.Kg > g.lanes ? 2 : 1, P = pick_pixels(p.OW, NK);
  if (P > 0) {
    const double used_w = double(p.OW) / g.OWv * g.Kg / (g.kblocks * g.KB);
    const double used_k = double(g.Kg) / round_up(g.Kg, NK * g.lanes) * p.OW / round_up(p.OW, P);
    // Measured (small_conv_check.py, 1 thread): better for LeNet C3 (both layouts) and the NHWC stem, where
    // NHWC stores become whole channel vectors; in NCHW worse with few taps per output (MNIST 1->16: the
    // per-pixel work is too short for the scattered stores) and for the stem (channel-major stores are
    // scattered there, and the column orientation already fills all its lanes). In NHWC, whose pixels go
    // from the registers straight to the output, MNIST's 1->16 too (A/B, 2 threads: 1.12-1.16x faster).
    // In NHWC a tie goes to it (the stem: both orientations fill every lane).
    const bool better = p.layout == Layout::NHWC ? used_k >= used_w : used_k > 1.2 * used_w;
    if (better && (g.Cg * p.R * p.S >= 64 || p.layout == Layout::NHWC)) {
      g.kvec = true, g.row_pairs = false, g.P = P;
      g.NV = NK, g.KB = NK * g.lanes, g.kblocks = (g.Kg + g.KB - 1) / g.KB;
      g.OWv = round_up(p.OW, P);
    }
  }
  g.PW = g.OWv + ((p.S - 1) * p.dil_w) / p.stride_w;
  g.row_len = p.stride_w * g.PW;
  // Band (an even number of rows with row pairs): keep the buffered input of one item around 64 KB (L2-resident while the K blocks reuse it) ...
  const int64_t per_row = std::max<int64_t>(1, g.Cg * p.stride_h * g.row_len * elem_size);
  g.band_rows = std::clamp<int64_t>((64 << 10) / per_row, 1, p.OH);
  // ... and give every thread a few items when the batch alone does not.
  const int nt = std::max(1, p.num_threads);
  while (nt > 1 && g.band_rows > 1 && p.N * p.groups * ((p.OH + g.band_rows - 1) / g.band_rows) < 4 * nt)
    g.band_rows = (g.band_rows + 1) / 2;
  if (g.row_pairs && g.band_rows > 1) g.band_rows &= ~int64_t(1);
  g.bands = (p.OH + g.band_rows - 1) / g.band_rows;
  g.buf_rows = band_input_rows(p, g.band_rows);
  return g;
}



// Where a register block's accumulators go straight into the output (instead of through the tile): a block
// holds rows of NV vectors (register_block: a row per output channel; kvec_block: a row per pixel); vector v of
// row i goes to y + i*row_stride + v*v_stride, its first lanes[v] values, for the first `rows` rows.
template <typename T>
struct BlockOut {
  T* y = nullptr;
  int64_t row_stride = 0, v_stride = 0, rows = 0;
  int64_t lanes[2] = {0, 0};
};

// The first n values of v to dst (n <= lanes of V).
template <typename T, typename V>
inline void store_lanes(const V& v, int64_t n, T* dst) {
  constexpr int L = Simd<T>::kLanes;
  if (n >= L) {
    std::memcpy(dst, &v, sizeof(V));
    return;
  }
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) return _mm512_mask_storeu_ps(dst, __mmask16((1u << n) - 1), (__m512)v);
  else return _mm512_mask_storeu_pd(dst, __mmask8((1u << n) - 1), (__m512d)v);
#else
  std::memcpy(dst, &v, size_t(n) * sizeof(T));
#endif
}

// A register block's ROWS x NV accumulators into the output as `out` says.
template <typename T, int ROWS, int NV, typename V>
inline void store_block(const V (&acc)[ROWS][NV], const BlockOut<T>& out) {
  for (int i = 0; i < ROWS; ++i)
    if (i < out.rows)
      for (int v = 0; v < NV; ++v)
        if (out.lanes[v] > 0) store_lanes(acc[i][v], out.lanes[v], out.y + i * out.row_stride + v * out.v_stride);
}

// One register block: KB output channels x NV vectors of output columns (of one row, or of two rows).
//   x: buffered row of channel 0, tap r = 0, first output column of the block; vector v reads from
//   x + voff[v]; wp: (Cg, R, S, KB) weights of the block followed by KB biases; result: into out->y when out
//   is given (NCHW: rows of the output planes), else into tile as (KB, NV*lanes). A tile copied out again
//   cost a third of MNIST's 1 -> 16 5x5 forward.
template <typename T, int KB, int NV>
void register_block(const T* x, const int64_t* voff, int64_t c_stride, int64_t r_stride, const int64_t* tap_off, int64_t Cg, int64_t R,
                    int64_t S, const T* wp, T* tile, const BlockOut<T>* out) {
  using V = typename Simd<T>::Vec;
  constexpr int L = Simd<T>::kLanes;
  const T* bias = wp + Cg * R * S * KB;
  V acc[KB][NV];
  for (int k = 0; k < KB; ++k)
    for (int v = 0; v < NV; ++v) acc[k][v] = V{} + bias[k];
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + c * c_stride + r * r_stride;
      for (int64_t s = 0; s < S; ++s, wp += KB) {
        V xv[NV];
        for (int v = 0; v < NV; ++v) std::memcpy(&xv[v], xr + tap_off[s] + voff[v], sizeof(V));
        for (int k = 0; k < KB; ++k)
          for (int v = 0; v < NV; ++v) fma_bcast(wp + k, xv[v], acc[k][v]);
      }
    }
  if (out) return store_block<T>(acc, *out);
  for (int k = 0; k < KB; ++k)
    for (int v = 0; v < NV; ++v) std::memcpy(tile + (k * NV + v) * L, &acc[k][v], sizeof(V));
}

// Channel-vector register block: P consecutive pixels of one output row x NK*lanes output channels.
//   x: buffered row of channel 0, tap r = 0, first pixel; wp: (Cg, R, S, NK*lanes) weights of the block
//   followed by NK*lanes biases; tile: (P, NK*lanes) result. Per tap: NK weight-vector loads, then for
//   every pixel one broadcast input value (folded into the FMA) times each weight vector.
template <typename T, int NK, int P>
void kvec_block(const T* x, const int64_t*, int64_t c_stride, int64_t r_stride, const int64_t* tap_off, int64_t Cg,
                int64_t R, int64_t S, const T* wp, T* tile, const BlockOut<T>* out) {
  using V = typename Simd<T>::Vec;
  constexpr int L = Simd<T>::kLanes;
  V acc[P][NK];
  for (int k = 0; k < NK; ++k) {
    V b;
    std::memcpy(&b, wp + Cg * R * S * NK * L + k * L, sizeof(V));
    for (int q = 0; q < P; ++q) acc[q][k] = b;
  }
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < R; ++r) {
      const T* xr = x + c * c_stride + r * r_stride;
      for (int64_t s = 0; s < S; ++s, wp += NK * L) {
        const T* xs = xr + tap_off[s];
        V wv[NK];
        for (int k = 0; k < NK; ++k) std::memcpy(&wv[k], wp + k * L, sizeof(V));
        for (int q = 0; q < P; ++q)
          for (int k = 0; k < NK; ++k) fma_bcast(xs + q, wv[k], acc[q][k]);
      }
    }
  if (out) return store_block<T>(acc, *out);
  for (int q = 0; q < P; ++q)
    for (int k = 0; k < NK; ++k) std::memcpy(tile + (q * NK + k) * L, &acc[q][k], sizeof(V));
}

template <typename T>
using BlockFn = void (*)(const T*, const int64_t*, int64_t, int64_t, const int64_t*, int64_t, int64_t, int64_t,
                         const T*, T*, const BlockOut<T>*);

template <typename T, int NV>
BlockFn<T> pick_kb(int64_t kb) {
  switch (kb) {
    case 1: return register_block<T, 1, NV>;
    case 2: return register_block<T, 2, NV>;
    case 3: return register_block<T, 3, NV>;
    case 4: return register_block<T, 4, NV>;
    case 6: return register_block<T, 6, NV>;
#if defined(__AVX512F__)
    case 8: return register_block<T, 8, NV>;
    case 12: return register_block<T, 12, NV>;
#endif
  }
#if defined(__AVX512F__)
  if constexpr (NV == 1) {  // make_geometry keeps KB * NV <= kMaxAcc
    if (kb == 16) return register_block<T, 16, 1>;
    if (kb == 24) return register_block<T, 24, 1>;
  }
#endif
  return nullptr;
}

template <typename T, int NK>
BlockFn<T> pick_pixel_block(int64_t P) {
  switch (P) {
    case 4: return kvec_block<T, NK, 4>;
    case 5: return kvec_block<T, NK, 5>;
    case 6: return kvec_block<T, NK, 6>;
  }
#if defined(__AVX512F__)
  switch (P) {
    case 7: return kvec_block<T, NK, 7>;
    case 8: return kvec_block<T, NK, 8>;
    case 10: return kvec_block<T, NK, 10>;
    case 12: return kvec_block<T, NK, 12>;
  }
  if constexpr (NK == 1) {  // pick_pixels keeps P * NK <= kMaxAcc
    if (P == 14) return kvec_block<T, 1, 14>;
    if (P == 16) return kvec_block<T, 1, 16>;
    if (P == 24) return kvec_block<T, 1, 24>;
  }
#endif
  return nullptr;
}

template <typename T>
BlockFn<T> pick_block(const Geometry& g) {
  if (g.kvec) return g.NV == 2 ? pick_pixel_block<T, 2>(g.P) : pick_pixel_block<T, 1>(g.P);
  return g.NV == 2 ? pick_kb<T, 2>(g.KB) : pick_kb<T, 1>(g.KB);
}

// Weights of every (group, block) as (Cg, R, S, KB) followed by KB biases; channels past Kg are zero.
template <typename T>
void pack_weights(const ConvParams& p, const Geometry& g, const T* w, const T* bias, T* wp) {
  const int64_t crs = g.Cg * p.R * p.S, block = (crs + 1) * g.KB;
  for (int64_t gr = 0; gr < p.groups; ++gr)
    for (int64_t b = 0; b < g.kblocks; ++b) {
      T* dst = wp + (gr * g.kblocks + b) * block;
      for (int64_t k = 0; k < g.KB; ++k) {
        const int64_t kg = b * g.KB + k, kk = gr * g.Kg + kg;
        const bool real = kg < g.Kg;
        for (int64_t t = 0; t < crs; ++t) dst[t * g.KB + k] = real ? w[kk * crs + t] : T(0);
        dst[crs * g.KB + k] = real && bias ? bias[kk] : T(0);
      }
    }
}

}  // namespace

bool use_direct_small(const ConvParams& p, int64_t elem_size) {
  if (!small_direct::kDirectSmallKernels) return false;
  const int64_t lanes = 16;  // float32: the thresholds were measured there
  const int64_t OWv = std::min(round_up(p.OW, lanes), round_up(p.OW, 2 * lanes));
  const int64_t crs = p.C_per_group() * p.R * p.S, Kg = p.K_per_group();
  // Most vector lanes doing real work (OW = 10 of 16 still pays: LeNet-5's C3) ...
  if (3 * OWv > 4 * p.OW + lanes) return false;
  // ... and a short GEMM K dimension (C/groups * R * S), where im2col + packing dominate the GEMM. NHWC
  // keeps the GEMM (whose output rows are pixels) for longer C*R*S. Measured on Zen5, 1 thread,
  // benchmarks/small_conv_check.py: direct faster for LeNet C1/C3, MNIST 1->16 / 1->32 and the ResNet
  // stem (both layouts) and MNIST 16->32 in NCHW; about even for MNIST 16->32 in NHWC (GEMM kept).
  // A 1x1 kernel with 8+ input channels is a plain GEMM (no column matrix to build): 1.1-1.8x faster than
  // the direct kernel in NCHW, 1.7-4x in NHWC (C = 8-512, K = 32-64, 14x14-56x56 planes, batch 4-8, 2 threads)
  if (p.R * p.S == 1 && p.C_per_group() >= 8) return false;
  // A kernel of one row (1-d convolutions) reuses no input row across kernel rows: there the GEMM took over from
  // C*R*S = 96 up (NCHW, 2 threads, each pass alone: 32 -> 32 k3 on 4000 samples 1.23x faster, 64 -> 64 k3 1.38x,
  // WaveNet's 128 -> 64 k2 1.40-1.48x, a 64 -> 8 k8 1.18x); 16 -> 64 k3 and 8 -> 64 k8 (48, 64) stay direct (1.16x,
  // 1.30x faster than the GEMM).
  if (p.layout == Layout::NCHW) return crs <= (p.R == 1 ? 64 : 512) && Kg <= 64;
  // channels_last: the direct convolution on channel-blocked tiles (conv_implicit_nhwc.cpp) wherever it applies.
  // Both alternated call by call in one process (Zen 4, 2 threads, forward): ResNet's 3 -> 64 7x7/2 stem 1.23x
  // faster there at batch 4, 1.29x at 8, 1.12x at 1; 3 -> 32 5x5 and 7x7 1.15x; LeNet-5's C1 and C3, MNIST's
  // 1 -> 6/8/16 5x5 and 3x3 1.03-1.10x; a 3 -> 16 3x3 on 224x224 2% slower.
  if (implicit_forward_applies(p, elem_size)) return false;
  // Else 3x3 and smaller kernels with more than 16 output channels: the GEMM, 1.2-1.65x faster (VGG's 3 -> 64 stem
  // at 224x224, CIFAR-style 3 -> 32 and 8 -> 64 first layers, 2 threads); 5x5+ and few outputs stay direct (LeNet).
  return crs <= 160 && Kg <= 64 && (p.R * p.S > 9 || Kg <= 16);
}

template <typename T>
void conv_forward_direct_small(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const Geometry g = make_geometry(p, sizeof(T));
  const ColumnMap m = make_column_map(p, g);
  const BlockFn<T> block_fn = pick_block<T>(g);
  const int64_t crs = g.Cg * p.R * p.S, wblock = (crs + 1) * g.KB;
  std::vector<T> wp(size_t(p.groups * g.kblocks * wblock));
  pack_weights(p, g, w, bias, wp.data());
  std::vector<int64_t> tap_off(p.S);
  for (int64_t s = 0; s < p.S; ++s)
    tap_off[s] = ((s * p.dil_w) % p.stride_w) * g.PW + (s * p.dil_w) / p.stride_w;
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t items = p.N * p.groups * g.bands, L = g.lanes, cols = g.NV * L;
  const int nt = items >= 2 ? std::max(1, p.num_threads) : 1;
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    T* buf = thread_scratch<T>(kScratchCol, size_t(g.Cg * g.buf_rows * g.row_len));
    T* tile = thread_scratch<T>(kScratchAcc, size_t(g.KB * std::max(cols, g.P)));
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t band = item % g.bands, gr = (item / g.bands) % p.groups, n = item / (g.bands * p.groups);
      const int64_t oh0 = band * g.band_rows, oh1 = std::min(p.OH, oh0 + g.band_rows);
      const T* xg = nhwc ? x + n * p.H * p.W * p.C + gr * g.Cg : x + (n * p.C + gr * g.Cg) * p.H * p.W;
      fill_band(p, g, m, xg, oh0, oh1, buf);
      for (int64_t b = 0; b < g.kblocks; ++b) {
        const T* wb = wp.data() + (gr * g.kblocks + b) * wblock;
        const int64_t k0 = gr * g.Kg + b * g.KB, kn = std::min(g.KB, g.Kg - b * g.KB);
        if (g.kvec) {
          for (int64_t oh = oh0; oh < oh1; ++oh) {
            const T* xrow = buf + (oh - oh0) * p.stride_h * g.row_len;
            for (int64_t ow0 = 0; ow0 < p.OW; ow0 += g.P) {
              const int64_t np = std::min(g.P, p.OW - ow0);
              if (nhwc) {  // a pixel's channel vectors straight to its row of channels
                BlockOut<T> out;
                out.y = y + ((n * p.OH + oh) * p.OW + ow0) * p.K + k0;
                out.row_stride = p.K, out.v_stride = L, out.rows = np;
                for (int64_t v = 0; v < 2; ++v) out.lanes[v] = v < g.NV ? std::clamp<int64_t>(kn - v * L, 0, L) : 0;
                block_fn(xrow + ow0, nullptr, g.buf_rows * g.row_len, p.dil_h * g.row_len, tap_off.data(), g.Cg, p.R,
                         p.S, wb, tile, &out);
                continue;
              }
              // NCHW: each channel's np values to its plane
              block_fn(xrow + ow0, nullptr, g.buf_rows * g.row_len, p.dil_h * g.row_len, tap_off.data(), g.Cg, p.R,
                       p.S, wb, tile, nullptr);
              for (int64_t k = 0; k < kn; ++k) {
                T* yk = y + ((n * p.K + k0 + k) * p.OH + oh) * p.OW + ow0;
                for (int64_t q = 0; q < np; ++q) yk[q] = tile[q * g.KB + k];
              }
            }
          }
          continue;
        }
        for (int64_t oh = oh0; oh < oh1; oh += g.row_pairs ? 2 : 1) {
          const T* xrow = buf + (oh - oh0) * p.stride_h * g.row_len;
          // Row pairs: the second vector is row oh + 1 (or row oh again, not stored, past the band's end).
          const bool two = g.row_pairs && oh + 1 < oh1;
          const int64_t voff[2] = {0, g.row_pairs ? (two ? p.stride_h * g.row_len : 0) : L};
          const int64_t rows_out = two ? 2 : 1, width = g.row_pairs ? L : cols;
          for (int64_t ow0 = 0; ow0 < p.OW; ow0 += width) {
            const int64_t nw = std::min(width, p.OW - ow0);
            if (!nhwc) {  // NCHW: the vectors go straight to their rows
              BlockOut<T> out;
              out.y = y + ((n * p.K + k0) * p.OH + oh) * p.OW + ow0;
              out.row_stride = p.OH * p.OW, out.rows = kn;
              out.v_stride = g.row_pairs ? p.OW : L;
              for (int64_t v = 0; v < 2; ++v)
                out.lanes[v] = g.row_pairs ? (v < rows_out ? nw : 0) : std::clamp<int64_t>(nw - v * L, 0, L);
              block_fn(xrow + ow0, voff, g.buf_rows * g.row_len, p.dil_h * g.row_len, tap_off.data(), g.Cg, p.R, p.S,
                       wb, tile, &out);
              continue;
            }
            block_fn(xrow + ow0, voff, g.buf_rows * g.row_len, p.dil_h * g.row_len, tap_off.data(), g.Cg, p.R, p.S,
                     wb, tile, nullptr);
            for (int64_t v = 0; v < rows_out; ++v) {  // NHWC: transposed into pixels of channels
              const T* t = tile + v * (g.row_pairs ? L : 0);  // channel k's values at t[k * cols + o]
              T* yp = y + ((n * p.OH + oh + v) * p.OW + ow0) * p.K + k0;
              for (int64_t o = 0; o < nw; ++o)
                for (int64_t k = 0; k < kn; ++k) yp[o * p.K + k] = t[k * cols + o];
            }
          }
        }
      }
    }
  }
}

template void conv_forward_direct_small<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void conv_forward_direct_small<double>(const ConvParams&, const double*, const double*, const double*,
                                                double*);

}  // namespace cpu
}  // namespace fastconv
