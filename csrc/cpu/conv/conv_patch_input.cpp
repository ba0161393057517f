// The input gradient of a convolution whose kernel tiles its input: R == stride_h, S == stride_w, no padding,
// no dilation, one group (the forward of U-Net's 2x2 stride-2 transposed convolutions), channels_last. Each
// grad_output pixel then reaches a disjoint R x S patch of the input, so the whole gradient is one GEMM,
// gy (N*OH*OW x K) times the weight (K x C*R*S), whose row m holds pixel m's patch, copied out into gx. Rows
// and columns of gx past the last patch (an output_padding) get zeros.
// It replaces a round trip through NCHW (both transposes, the column GEMM and col2im: U-Net up1's 1024 -> 512
// at 28x28 took 9.7 ms there against torch's 8.2).
#include <algorithm>
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../../common/denormal_guard.h"
#include "conv_patch_input.h"
#include "../gemm/gemm.h"
#include "../gemm/gemm_scratch.h"

namespace fastconv {
namespace cpu {

bool use_patch_backward_input(const ConvParams& p) {
  return p.layout == Layout::NHWC && p.groups == 1 && p.R == p.stride_h && p.S == p.stride_w &&
         (p.R > 1 || p.S > 1) && p.dil_h == 1 && p.dil_w == 1 && p.pad_t == 0 && p.pad_b == 0 && p.pad_l == 0 &&
         p.pad_r == 0 && p.mode == PaddingMode::Zeros && p.H >= p.OH * p.R && p.W >= p.OW * p.S;
}

namespace {

// Where pixel m's patch starts in gx: row oh * R, column ow * S of image n.
template <typename T>
T* patch_origin(const ConvParams& p, int64_t m, T* gx) {
  const int64_t ow = m % p.OW, oh = (m / p.OW) % p.OH, n = m / (p.OW * p.OH);
  return gx + ((n * p.H + oh * p.R) * p.W + ow * p.S) * p.C;
}

// Rows [m0, m1) of the GEMM result (row m - m0 of src holds pixel m's patch) into gx.
// Dense weight (K, C, R, S): a patch row is channel-major (c, r, s), the weight read as it is stored (repacking a
// 1024 x 512 x 2 x 2 weight cost 1.4 ms of U-Net up1's 10); kR, kS > 0 fix the kernel at compile time, so the
// compiler vectorises the interleaved reads (2x2: four output streams from one input stream).
template <typename T, int kR, int kS>
void copy_patches(const ConvParams& p, int64_t m0, int64_t m1, const T* __restrict src, T* __restrict gx) {
  const int64_t R = kR > 0 ? kR : p.R, S = kS > 0 ? kS : p.S, RS = R * S, C = p.C;
  for (int64_t m = m0; m < m1; ++m, src += RS * C) {
    T* base = patch_origin(p, m, gx);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) base[(r * p.W + s) * C + c] = src[c * RS + r * S + s];
  }
}

// n values from src to dst; with `stream` (gx of kStreamBytes or more), as non-temporal stores where dst and n
// allow whole aligned vectors: ordinary stores read every line before filling it (U-Net up4's 17 MB channels_last
// output: forward 3.21 -> 2.90-3.03 ms).
template <typename T>
void copy_run(T* __restrict dst, const T* __restrict src, int64_t n, bool stream) {
#if defined(__AVX512F__)
  constexpr int64_t L = 64 / int64_t(sizeof(T));
  if (stream && reinterpret_cast<uintptr_t>(dst) % 64 == 0 && n % L == 0) {
    for (int64_t i = 0; i < n; i += L)
      _mm512_stream_si512(reinterpret_cast<__m512i*>(dst + i), _mm512_loadu_si512(src + i));
    return;
  }
#endif
  (void)stream;
  std::memcpy(dst, src, sizeof(T) * size_t(n));
}

// channels_last weight (K, R, S, C): a patch row is pixel-major, R runs of S*C contiguous values.
template <typename T>
void copy_patch_rows(const ConvParams& p, int64_t m0, int64_t m1, const T* src, T* gx, bool stream) {
  const int64_t SC = p.S * p.C;
  for (int64_t m = m0; m < m1; ++m, src += p.R * SC) {
    T* base = patch_origin(p, m, gx);
    for (int64_t r = 0; r < p.R; ++r) copy_run(base + r * p.W * p.C, src + r * SC, SC, stream);
  }
}

template <typename T>
void copy_out(const ConvParams& p, int64_t m0, int64_t m1, const T* src, T* gx) {
  if (p.weight_rsc) {
    const bool stream = p.N * p.H * p.W * p.C * int64_t(sizeof(T)) >= kStreamBytes && nontemporal_stores();
    copy_patch_rows(p, m0, m1, src, gx, stream);
  }
  else if (p.R == 2 && p.S == 2)
    copy_patches<T, 2, 2>(p, m0, m1, src, gx);
  else
    copy_patches<T, 0, 0>(p, m0, m1, src, gx);
}

// Where no patch reaches (rows from OH*R, and columns from OW*S of the rows before them): zeros, or the bias.
template <typename T>
void fill_uncovered(const ConvParams& p, const T* bias, T* gx) {
  const int64_t covered_h = p.OH * p.R, covered_w = p.OW * p.S, row_len = p.W * p.C;
  if (covered_h == p.H && covered_w == p.W) return;
#pragma omp parallel for num_threads(p.num_threads) schedule(static)
  for (int64_t row = 0; row < p.N * p.H; ++row) {
    T* dst = gx + row * row_len;
    for (int64_t px = row % p.H < covered_h ? covered_w : 0; px < p.W; ++px) {
      if (bias)
        std::copy(bias, bias + p.C, dst + px * p.C);
      else
        std::fill(dst + px * p.C, dst + (px + 1) * p.C, T(0));
    }
  }
}

// GemmArgs for rows [m0, m1): A = gy rows, B = the weight as stored ((K, C*R*S) or (K, R*S*C)), C = dst, plus
// bias_col (one value per result column, or null).
template <typename T>
GemmArgs<T> patch_gemm(const ConvParams& p, int64_t m0, int64_t m1, const T* gy, const T* w, T* dst,
                       const T* bias_col) {
  const int64_t RSC = p.R * p.S * p.C;
  GemmArgs<T> g;
  g.bias_col = bias_col;
  g.M = m1 - m0, g.N = RSC, g.K = p.K;
  g.A = gy + m0 * p.K, g.rsA = p.K, g.csA = 1;
  g.B = w, g.rsB = RSC, g.csB = 1;
  g.C = dst, g.rsC = RSC, g.csC = 1;
  return g;
}

// A weight this small is packed again per chunk of rows at little cost; larger ones (U-Net up1's 8 MB) once.
constexpr int64_t kChunkedWeightBytes = 512 << 10;
// Result rows per chunk: a chunk's result stays in L2 until it is copied out.
constexpr int64_t kChunkBytes = 256 << 10;

}  // namespace

template <typename T>
void conv_backward_input_patches(const ConvParams& p, const T* gy, const T* w, T* gx, const T* bias) {
  const int64_t M = p.N * p.OH * p.OW, RS = p.R * p.S, RSC = RS * p.C;
  // The bias of each result column: its channel is the column's last index (r, s, c) or its first (c, r, s).
  T* bias_col = nullptr;
  if (bias) {
    bias_col = thread_scratch<T>(kScratchAcc, size_t(RSC));
    for (int64_t j = 0; j < RSC; ++j) bias_col[j] = bias[p.weight_rsc ? j % p.C : j / RS];
  }
  if (p.K * RSC * int64_t(sizeof(T)) <= kChunkedWeightBytes) {
    // Each thread: the GEMM of a chunk of rows into its own buffer, copied out while in cache (U-Net up4's
    // 128 -> 64 at 128x128 wrote and re-read a 17 MB result through memory).
    const int64_t rows = std::max<int64_t>(16, kChunkBytes / (RSC * int64_t(sizeof(T))));
    const int64_t chunks = (M + rows - 1) / rows;
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(p.num_threads, chunks)))
    {
      DenormalGuard guard;
      T* buf = thread_scratch<T>(kScratchCol, size_t(rows * RSC));
#pragma omp for schedule(dynamic)
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t m0 = ch * rows, m1 = std::min(M, m0 + rows);
        gemm(patch_gemm(p, m0, m1, gy, w, buf, bias_col));
        copy_out(p, m0, m1, buf, gx);
      }
#if defined(__AVX512F__)
      _mm_sfence();  // the non-temporal stores ordered before whatever reads gx next
#endif
    }
  } else {
    T* patches = thread_scratch<T>(kScratchCol, size_t(M * RSC));  // the calling thread's, filled by the team
    gemm_parallel(patch_gemm(p, 0, M, gy, w, patches, bias_col), p.num_threads);
    const int64_t blocks = std::min<int64_t>(M, 8 * std::max(p.num_threads, 1));
#pragma omp parallel for num_threads(p.num_threads) schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t m0 = M * b / blocks, m1 = M * (b + 1) / blocks;
      copy_out(p, m0, m1, patches + m0 * RSC, gx);
#if defined(__AVX512F__)
      _mm_sfence();
#endif
    }
  }
  fill_uncovered(p, bias, gx);
}

template void conv_backward_input_patches<float>(const ConvParams&, const float*, const float*, float*,
                                                  const float*);
template void conv_backward_input_patches<double>(const ConvParams&, const double*, const double*, double*,
                                                   const double*);

}  // namespace cpu
}  // namespace fastconv
