// NHWC weight gradient as implicit GEMM (one group, stride 1, zero padding):
//   gw_rs[k, c] = sum_p gyq[p, k] * xq[p + off_rs, c],     off_rs = r*dh*Wq + s*dw
// where p runs over the pixels of rows Wq = W + pad_l + pad_r wide: gyq is gy with its rows widened to
// Wq by zero columns, xq is x zero-padded on all sides (both built per segment of 8 output rows in the
// thread's scratch; a 1x1 without padding uses x and gy as they are). In that layout every tap is a
// constant pixel offset, so both operands are read in place (gyq broadcast along k, xq loaded as vectors
// along c) by a register-tiled kernel: MR output channels x NR input channels per tile, no im2col and no
// packing.
// Rows of the batch are cut into a fixed number of chunks (independent of the thread count) taken
// dynamically, each summing into its own (R*S, K, C) buffer; the buffers are added in chunk order, so the
// result does not depend on the threads or the schedule.
#include <algorithm>
#include <utility>
#include <cstring>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_gemm.h"  // is_identity_1x1
#include "conv_implicit_nhwc.h"
#include "../gemm/gemm_microkernel.h"  // Zmm<T>
#include "../gemm/gemm_scratch.h"

namespace fastconv {
namespace cpu {
namespace {

#if defined(__AVX512F__)
template <typename T>
constexpr int64_t kCols = 2 * Zmm<T>::L;  // NR: two vectors of input channels
#else
template <typename T>
constexpr int64_t kCols = 64 / sizeof(T);
#endif
constexpr int kRows = 14;  // MR: output channels per tile (28 accumulators + 2 B vectors + broadcast)
constexpr int64_t kPixelBlock = 256;
constexpr int64_t kPrefetchPixels = 8;  // how far ahead tile() asks for its operands' lines

// acc[i*ldc + j] += sum_{q<kc} a[q*lda + i] * b[q*ldb + j], i < M, j < NV vectors (kCols, or one vector for
// 16 input channels).
template <typename T, int M, int NV = 2>
void tile(int64_t kc, const T* __restrict a, int64_t lda, const T* __restrict b, int64_t ldb, T* acc, int64_t ldc) {
#if defined(__AVX512F__)
  using Z = Zmm<T>;
  using V = typename Z::V;
  V c0[M], c1[M];
#pragma GCC unroll 14
  for (int i = 0; i < M; ++i) c0[i] = c1[i] = Z::zero();
  for (int64_t q = 0; q < kc; ++q) {
    // Both operands' lines kPrefetchPixels pixels ahead: each pixel reads new lines of a and b rows K and C
    // values apart (512 B and 2 KB for ResNet-50's 512 -> 128), which the hardware prefetchers did not bring in
    // time (channels_last 1x1s, batch 8, A/B in one process: that one at 28x28 7.15 -> 6.60 ms, 64 -> 256 at
    // 56x56 6.56 -> 5.81; at 7x7 within 1-2%). A prefetch never faults: the last pixels may ask past the operands.
    __builtin_prefetch(b + (q + kPrefetchPixels) * ldb, 0, 3);
    if constexpr (NV == 2) __builtin_prefetch(b + (q + kPrefetchPixels) * ldb + Z::L, 0, 3);
    __builtin_prefetch(a + (q + kPrefetchPixels) * lda, 0, 3);
    __builtin_prefetch(a + (q + kPrefetchPixels) * lda + M - 1, 0, 3);
    const V b0 = Z::load(b + q * ldb), b1 = NV == 2 ? Z::load(b + q * ldb + Z::L) : b0;
#pragma GCC unroll 14
    for (int i = 0; i < M; ++i) {
      const V ai = Z::set1(a[q * lda + i]);
      c0[i] = Z::fma(ai, b0, c0[i]);
      if constexpr (NV == 2) c1[i] = Z::fma(ai, b1, c1[i]);
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < M; ++i) {
    T* row = acc + i * ldc;
    Z::store(row, Z::add(Z::load(row), c0[i]));
    if constexpr (NV == 2) Z::store(row + Z::L, Z::add(Z::load(row + Z::L), c1[i]));
  }
#else
  constexpr int64_t NR = kCols<T> * NV / 2;
  alignas(64) T c[M * NR] = {};
  for (int64_t q = 0; q < kc; ++q)
    for (int i = 0; i < M; ++i) {
      const T ai = a[q * lda + i];
#pragma omp simd
      for (int64_t j = 0; j < NR; ++j) c[i * NR + j] += ai * b[q * ldb + j];
    }
  for (int i = 0; i < M; ++i)
    for (int64_t j = 0; j < NR; ++j) acc[i * ldc + j] += c[i * NR + j];
#endif
}

#if defined(__AVX512F__)
// One vector of input channels (C = 16 floats) and ST adjacent taps of one kernel row sharing each broadcast of
// gq: acc_s[i*ldc + j] += sum_q a[q*lda + i] * b[(q + s*step)*ldb + j] for s < ST, i < M, over the pixels
// q = row * Wq + col of `rows` rows, col < OW: the zero columns that widen gq's rows to Wq are skipped (at 14x14
// with a 5x5 kernel they were 4 of every 18 pixels). Per pixel M broadcasts and ST loads feed M*ST FMAs (25 for
// 10 with 5 taps) where a tap at a time fed M for M + 1.
template <typename T, int M, int ST>
void tile_taps(int64_t rows, int64_t OW, int64_t Wq, const T* __restrict a, int64_t lda, const T* __restrict b,
               int64_t ldb, int64_t step, T* acc, int64_t ldc, int64_t tap_stride) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  V c[ST][M];
#pragma GCC unroll 5
  for (int s = 0; s < ST; ++s)
#pragma GCC unroll 14
    for (int i = 0; i < M; ++i) c[s][i] = Z::zero();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t q = r * Wq; q < r * Wq + OW; ++q) {
      V bs[ST];
#pragma GCC unroll 5
      for (int s = 0; s < ST; ++s) bs[s] = Z::load(b + (q + s * step) * ldb);
#pragma GCC unroll 14
      for (int i = 0; i < M; ++i) {
        const V ai = Z::set1(a[q * lda + i]);
#pragma GCC unroll 5
        for (int s = 0; s < ST; ++s) c[s][i] = Z::fma(ai, bs[s], c[s][i]);
      }
    }
#pragma GCC unroll 5
  for (int s = 0; s < ST; ++s)
#pragma GCC unroll 14
    for (int i = 0; i < M; ++i) {
      T* row = acc + s * tap_stride + i * ldc;
      Z::store(row, Z::add(Z::load(row), c[s][i]));
    }
}

// Output channels per tile_taps tile for ST taps: M*ST accumulators + ST loaded vectors + 1 broadcast <= 32.
constexpr int tap_rows(int st) { return st == 1 ? kRows : st == 2 ? 14 : st == 3 ? 9 : st == 4 ? 6 : 5; }

template <typename T, int ST, int M = tap_rows(ST)>
void tile_taps_rows(int m, int64_t rows, int64_t OW, int64_t Wq, const T* a, int64_t lda, const T* b, int64_t ldb,
                    int64_t step, T* acc, int64_t ldc, int64_t tap_stride) {
  if constexpr (M > 1) {
    if (m < M) return tile_taps_rows<T, ST, M - 1>(m, rows, OW, Wq, a, lda, b, ldb, step, acc, ldc, tap_stride);
  }
  tile_taps<T, M, ST>(rows, OW, Wq, a, lda, b, ldb, step, acc, ldc, tap_stride);
}

// The taps s0 .. s0 + st - 1 (st <= 5) of kernel row rr, one vector of input channels: K in tiles of even heights.
template <typename T>
void accumulate_tap_group(const ConvParams& p, int64_t rows, int64_t Wq, const T* a, const T* b, int st, T* at) {
  const int64_t K = p.K, C = p.C, step = p.dil_w, tap_stride = K * C;
  const int height = tap_rows(st);
  const int64_t k_tiles = (K + height - 1) / height;
  for (int64_t i = 0; i < k_tiles; ++i) {
    const int64_t k0 = K * i / k_tiles;
    const int m = int(K * (i + 1) / k_tiles - k0);
    T* dst = at + k0 * C;
    switch (st) {
      case 2: tile_taps_rows<T, 2>(m, rows, p.OW, Wq, a + k0, K, b, C, step, dst, C, tap_stride); break;
      case 3: tile_taps_rows<T, 3>(m, rows, p.OW, Wq, a + k0, K, b, C, step, dst, C, tap_stride); break;
      case 4: tile_taps_rows<T, 4>(m, rows, p.OW, Wq, a + k0, K, b, C, step, dst, C, tap_stride); break;
      default: tile_taps_rows<T, 5>(m, rows, p.OW, Wq, a + k0, K, b, C, step, dst, C, tap_stride); break;
    }
  }
}
#endif

template <typename T, int NV = 2, int M = kRows>
void tile_rows(int m, int64_t kc, const T* a, int64_t lda, const T* b, int64_t ldb, T* acc, int64_t ldc) {
  if constexpr (M > 1) {
    if (m < M) return tile_rows<T, NV, M - 1>(m, kc, a, lda, b, ldb, acc, ldc);
  }
  tile<T, M, NV>(kc, a, lda, b, ldb, acc, ldc);
}

// Rows [lo, hi) of the block's output rows [b0, b1) (counted from the segment's first output row oh0) whose
// kernel row rr reads an input row inside [0, H): the others read only xq's zero padding rows and add nothing
// (a 5x5 kernel, pad 2, on 14x14 planes: 8.6% of the products; on 7x7: 17%).
std::pair<int64_t, int64_t> live_rows(const ConvParams& p, int64_t oh0, int64_t b0, int64_t b1, int64_t rr) {
  const int64_t tap = rr * p.dil_h - p.pad_t;  // input row of output row oh: oh + tap
  const int64_t lo = std::max(b0, -tap - oh0), hi = std::min(b1, p.H - tap - oh0);
  return {lo, std::max(lo, hi)};
}

// acc[(rs*K + k)*C + c] += sum_{q < npix} gq[q*K + k] * xq[(q + r*dh*Wq + s*dw)*C + c] over the pixels of
// `rows` rows of Wq (output rows oh0, oh0 + 1, ...), in blocks of whole rows (the block's gq rows and xq rows stay
// in L2 while every tap and tile uses them), each kernel row over its live_rows only.
template <typename T>
void accumulate_taps(const ConvParams& p, int64_t oh0, int64_t rows, const T* gq, const T* xq, int64_t Wq, T* acc) {
  const int64_t K = p.K, C = p.C, NR = kCols<T>, k_tiles = (K + kRows - 1) / kRows;
  const int64_t block_rows = std::max<int64_t>(1, kPixelBlock / Wq);
  for (int64_t b0 = 0; b0 < rows; b0 += block_rows) {
    const int64_t b1 = std::min(rows, b0 + block_rows);
#if defined(__AVX512F__)
    if (C == NR / 2 && p.S > 1) {  // one vector of input channels: taps of a kernel row in groups of <= 5
      const int64_t groups = (p.S + 4) / 5;
      for (int64_t rr = 0; rr < p.R; ++rr) {
        const auto [lo, hi] = live_rows(p, oh0, b0, b1, rr);
        if (hi == lo) continue;
        for (int64_t g = 0; g < groups; ++g) {
          const int64_t s0 = p.S * g / groups, st = p.S * (g + 1) / groups - s0;
          const T* b = xq + ((lo + rr * p.dil_h) * Wq + s0 * p.dil_w) * C;
          accumulate_tap_group(p, hi - lo, Wq, gq + lo * Wq * K, b, int(st), acc + (rr * p.S + s0) * K * C);
        }
      }
      continue;
    }
#endif
    for (int64_t rr = 0; rr < p.R; ++rr) {
      const auto [lo, hi] = live_rows(p, oh0, b0, b1, rr);
      if (hi == lo) continue;
      const int64_t kc = (hi - lo) * Wq;
      const T* a = gq + lo * Wq * K;
      for (int64_t s = 0; s < p.S; ++s) {
        const T* b = xq + ((lo + rr * p.dil_h) * Wq + s * p.dil_w) * C;
        T* at = acc + (rr * p.S + s) * K * C;
        for (int64_t i = 0; i < k_tiles; ++i)  // tiles of even heights: 32 channels as 11 + 11 + 10, not 14 + 14 + 4
          for (int64_t c0 = 0; c0 < C; c0 += NR) {
            const int64_t k0 = K * i / k_tiles;
            const int m = int(K * (i + 1) / k_tiles - k0);
            if (C - c0 >= NR)
              tile_rows<T>(m, kc, a + k0, K, b + c0, C, at + k0 * C + c0, C);
            else  // C = NR / 2 (applies): one vector of input channels
              tile_rows<T, 1>(m, kc, a + k0, K, b + c0, C, at + k0 * C + c0, C);
          }
      }
    }
  }
}

}  // namespace

// C a multiple of the tile's 32 channels, or 16 (one vector): MNIST's and GoogLeNet's 16-channel 5x5 layers
// 0.61x -> 0.75-0.79x of torch here against im2col + GEMM (0.66x -> 0.82x and 0.68x -> 0.72x with the taps of a
// kernel row sharing broadcasts, tile_taps); 48 channels (32 + 16) measured 0.74x -> 0.39-0.58x.
template <typename T>
bool implicit_backward_weight_applies(const ConvParams& p) {
  return p.layout == Layout::NHWC && p.groups == 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.mode == PaddingMode::Zeros && (p.C % kCols<T> == 0 || p.C == kCols<T> / 2) &&
         p.OW + (p.S - 1) * p.dil_w <= p.W + p.pad_l + p.pad_r &&
         p.OH + (p.R - 1) * p.dil_h <= p.H + p.pad_t + p.pad_b;
}

template <typename T>
void conv_backward_weight_implicit_nhwc(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const int64_t K = p.K, C = p.C, RS = p.R * p.S;
  const int64_t Wq = p.W + p.pad_l + p.pad_r, halo = (p.R - 1) * p.dil_h;
  const int64_t slack = (p.S - 1) * p.dil_w + 1;  // pixels the last row's taps read past it
  const int64_t seg = 8;                            // output rows padded and processed together
  const bool identity = is_identity_1x1(p);
  // 16 chunks, fewer for weights so large that the chunk buffers would pass ~64 MB (at least 2).
  const int64_t rows = p.N * p.OH, per = RS * K * C;
  const int64_t chunks = std::min<int64_t>(
      rows, std::clamp<int64_t>((64 << 20) / std::max<int64_t>(1, per * int64_t(sizeof(T))), 2, 16));
  // Chunk buffers in the calling thread's reusable scratch (no page faults on every call).
  T* const bufs = thread_scratch<T>(kScratchAcc, size_t(chunks * per));
  std::fill(bufs, bufs + chunks * per, T(0));
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* xq = thread_scratch<T>(kScratchCol, size_t(((seg + halo) * Wq + slack) * C));
    T* gq = thread_scratch<T>(kScratchWeight, size_t(seg * Wq * K));
#pragma omp for schedule(dynamic)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      T* acc = bufs + ch * per;  // acc[(rs*K + k)*C + c]
      const int64_t r0 = rows * ch / chunks, r1 = rows * (ch + 1) / chunks;
      for (int64_t r = r0; r < r1;) {
        // Segment: output rows [oh0, oh1) of image n, zero-padded into xq (rows oh0 - pad_t + [0, oh1 - oh0 +
        // halo)) and gq (rows widened to Wq).
        const int64_t n = r / p.OH, oh0 = r % p.OH, oh1 = std::min({p.OH, oh0 + (r1 - r), oh0 + seg});
        r += oh1 - oh0;
        if (identity) {  // 1x1 without padding: x and gy rows are already the operands
          accumulate_taps(p, oh0, oh1 - oh0, gy + (n * p.OH + oh0) * p.OW * K, x + (n * p.H + oh0) * p.W * C, Wq,
                          acc);
          continue;
        }
        for (int64_t a = 0; a < oh1 - oh0 + halo; ++a) {
          const int64_t ih = oh0 + a - p.pad_t;
          T* dst = xq + a * Wq * C;
          if (ih < 0 || ih >= p.H) {
            std::fill(dst, dst + Wq * C, T(0));
            continue;
          }
          std::fill(dst, dst + p.pad_l * C, T(0));
          std::memcpy(dst + p.pad_l * C, x + (n * p.H + ih) * p.W * C, sizeof(T) * size_t(p.W * C));
          std::fill(dst + (p.pad_l + p.W) * C, dst + Wq * C, T(0));
        }
        T* xend = xq + (oh1 - oh0 + halo) * Wq * C;
        std::fill(xend, xend + slack * C, T(0));
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* dst = gq + (oh - oh0) * Wq * K;
          std::memcpy(dst, gy + (n * p.OH + oh) * p.OW * K, sizeof(T) * size_t(p.OW * K));
          std::fill(dst + p.OW * K, dst + Wq * K, T(0));
        }
        accumulate_taps(p, oh0, oh1 - oh0, gq, xq, Wq, acc);
      }
    }
    // gw[k, c, r, s] = sum over chunks of acc[(rs*K + k)*C + c], in chunk order: rows of C channels are
    // summed contiguously (vectorised over c), then scattered into gw's (K, C, R, S) order.
    std::vector<T> sum(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t e = 0; e < RS * K; ++e) {
      const int64_t rs = e / K, k = e % K;
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const T* src = bufs + ch * per + e * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) sum[c] += src[c];
      }
      for (int64_t c = 0; c < C; ++c) gw[(k * C + c) * RS + rs] = sum[c];
    }
  }
}

template bool implicit_backward_weight_applies<float>(const ConvParams&);
template bool implicit_backward_weight_applies<double>(const ConvParams&);
template void conv_backward_weight_implicit_nhwc<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_implicit_nhwc<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
