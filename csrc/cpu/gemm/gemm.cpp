// Cache-blocked GEMM driver: the BLIS loop nest (jc: NC columns of B/C, pc: KC of the inner dimension,
// ic: MC rows of A/C, then NR x MR micro-tiles), packing A and B into contiguous micro-panels that are
// zero-padded to MR / NR so the micro-kernel never branches. Strides are arbitrary; a C with unit row
// stride is handled as the transposed problem so the fast epilogue (unit column stride) applies.
#include "gemm.h"

#include <algorithm>
#include <cstring>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif
#include <type_traits>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "gemm_microkernel.h"
#include "gemm_scratch.h"
#include "../simd_transpose.h"

namespace fastconv {
namespace cpu {
namespace {

template <typename T>
struct Blocking {
  // Float: up to 512 of the inner dimension per pass. Each further pass reads and writes all of C again; 256 cost
  // ResNet-50's deep 1x1s 3-7% (A/B in one process, batch 8: channels_last 1024 -> 256 at 14x14 forward 5.00 ->
  // 4.73 ms, 512 -> 128 at 28x28 4.81 -> 4.47, 2048 -> 512 at 7x7 input gradient 5.04 -> 4.72; NCHW 2048 -> 512
  // input gradient 5.36 -> 5.04), though the B micro-panel (KC*NR: 64 KB) no longer fits the L1.
  static constexpr int64_t KC = sizeof(T) == 4 ? 512 : 256;
  static constexpr int64_t NC = sizeof(T) == 4 ? 3072 : 1536;  // B block 3-6 MB in L3
  // Rows of A per block: ~230 KB in L2 for passes deeper than 256 (112 float rows at kc = 512); shallower passes
  // keep the rows of a 256-deep one (224 float, 112 double).
  static int64_t mc(int64_t kc) {
    constexpr int64_t kBlockBytes = 229376, MR = MicroKernel<T>::MR;
    return std::max<int64_t>(MR, kBlockBytes / (std::max<int64_t>(kc, 256) * int64_t(sizeof(T))) / MR * MR);
  }
};

// Ap[panel][p][ii] = A[i0 + ii, p0 + p], rows past mc are zero.
template <typename T>
void pack_a(const T* A, int64_t rsA, int64_t csA, int64_t mc, int64_t kc, T* Ap) {
  constexpr int MR = MicroKernel<T>::MR;
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t m = std::min<int64_t>(MR, mc - i0);
    T* dst = Ap + i0 * kc;
    const T* src = A + i0 * rsA;
    if (m == MR && rsA == 1) {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * MR, src + p * csA, MR * sizeof(T));
    } else if (csA == 1) {
      for (int64_t ii = 0; ii < m; ++ii) {
        const T* s = src + ii * rsA;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + ii] = s[p];
      }
      for (int64_t ii = m; ii < MR; ++ii)
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + ii] = T(0);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t ii = 0; ii < m; ++ii) dst[p * MR + ii] = src[ii * rsA + p * csA];
        for (int64_t ii = m; ii < MR; ++ii) dst[p * MR + ii] = T(0);
      }
    }
  }
}

// Bp[panel][p][jj] = B[p0 + p, j0 + jj], columns past nc are zero.
template <typename T>
void pack_b(const T* B, int64_t rsB, int64_t csB, int64_t kc, int64_t nc, T* Bp) {
  constexpr int NR = MicroKernel<T>::NR;
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - j0);
    T* dst = Bp + j0 * kc;
    const T* src = B + j0 * csB;
    if (n == NR && csB == 1) {
      for (int64_t p = 0; p < kc; ++p) std::memcpy(dst + p * NR, src + p * rsB, NR * sizeof(T));
    } else if (rsB == 1) {
      int64_t p0 = 0;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {  // columns are contiguous: 16 x 16 register transposes
        if (n == NR)
          for (; p0 + 16 <= kc; p0 += 16)
            for (int64_t h = 0; h < NR; h += 16) transpose_block16(src + h * csB + p0, csB, dst + p0 * NR + h, NR);
      }
#endif
      for (int64_t jj = 0; jj < n; ++jj) {
        const T* s = src + jj * csB;
        for (int64_t p = p0; p < kc; ++p) dst[p * NR + jj] = s[p];
      }
      for (int64_t jj = n; jj < NR; ++jj)
        for (int64_t p = 0; p < kc; ++p) dst[p * NR + jj] = T(0);
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t jj = 0; jj < n; ++jj) dst[p * NR + jj] = src[p * rsB + jj * csB];
        for (int64_t jj = n; jj < NR; ++jj) dst[p * NR + jj] = T(0);
      }
    }
  }
}

// C = beta*C + biases (the K == 0 case).
template <typename T>
void scale_c(const GemmArgs<T>& g) {
  for (int64_t i = 0; i < g.M; ++i)
    for (int64_t j = 0; j < g.N; ++j) {
      T* c = g.C + i * g.rsC + j * g.csC;
      T v = g.beta != T(0) ? g.beta * *c : T(0);
      if (g.bias_row) v += g.bias_row[i];
      if (g.bias_col) v += g.bias_col[j];
      *c = v;
    }
}

template <typename T>
GemmArgs<T> transposed(const GemmArgs<T>& g) {
  GemmArgs<T> t = g;
  t.M = g.N, t.N = g.M;
  t.A = g.B, t.rsA = g.csB, t.csA = g.rsB;
  t.B = g.A, t.rsB = g.csA, t.csB = g.rsA;
  t.rsC = g.csC, t.csC = g.rsC;
  t.bias_row = g.bias_col, t.bias_col = g.bias_row;
  return t;
}

// c_bytes: the size of the whole result this call writes part of (gemm_parallel's threads write blocks of one).
template <typename T>
void gemm_serial(const GemmArgs<T>& g, int64_t c_bytes) {
  using MK = MicroKernel<T>;
  using Bk = Blocking<T>;
  constexpr int64_t MR = MK::MR, NR = MK::NR;
  const int64_t ncmax = std::min<int64_t>(Bk::NC, (g.N + NR - 1) / NR * NR);
  const int64_t kcmax = std::min<int64_t>(Bk::KC, g.K);
  const int64_t MC = Bk::mc(kcmax);
  const int64_t mcmax = std::min<int64_t>(MC, (g.M + MR - 1) / MR * MR);
  T* Bp = thread_scratch<T>(kScratchPackB, size_t(kcmax * ncmax));
  // A row-major (unit column stride): the micro-kernel reads it in place, no packing. Except when its row
  // stride is a multiple of 4 KB (broadcast_rows_one_set): then the 14 rows a micro-tile broadcasts from fall
  // into one L1 set and the broadcasts miss L1 (ResNet-50's 1024-channel channels_last 1x1 ran at 40% of peak).
  // Such an A block is copied row by row to a stride that spreads over the sets (stride_off_512), once per
  // block and reused by every column panel.
  const bool direct_a = g.csA == 1 && g.rsA != 1;
  const bool restride_a = direct_a && broadcast_rows_one_set(g.rsA, sizeof(T));
  const int64_t lda_r = stride_off_512(kcmax, sizeof(T));
  // A result of kStreamBytes or more, written once (one pass over K, beta 0), bypasses the caches: it cannot stay
  // in them anyway, and ordinary stores first read every line they fill. MobileNet's 32->64 channels_last 1x1
  // at 112x112 (a 26 MB output of a 32-deep GEMM) 0.75x -> 0.84x of torch.
  const bool stream = g.beta == T(0) && g.K <= Bk::KC && g.csC == 1 && c_bytes >= kStreamBytes && nontemporal_stores();
  T* Ap = thread_scratch<T>(kScratchPackA, size_t(restride_a ? MR * kcmax + mcmax * lda_r : kcmax * mcmax));
  // B row-major with rows on cache-line boundaries: its full column panels are read in place (kc rows of NR
  // values, 2 lines each), and only the last, partial panel is packed. Packing copied the whole (kc, nc) block
  // once per call, which for an NCHW 1x1 (B is the input itself, 64-256 channels deep) cost as much as the block's
  // FMAs saved from streaming it: NCHW 1x1 forwards 1.04-1.36x faster (ResNet-50's 256 -> 64 at 56x56 1.25x,
  // 512 -> 128 at 28x28 1.09-1.36x), their input gradients 1.03-1.13x. Rows that straddle lines (a 14x14 plane:
  // 784 bytes) read 3 lines per panel row, and there packing measured the same or better (1024 -> 256 at 14x14:
  // 8% faster), so they keep it.
  const bool direct_b = g.csB == 1 && g.rsB != 1 && (g.rsB * int64_t(sizeof(T))) % 64 == 0 &&
                        reinterpret_cast<uintptr_t>(g.B) % 64 == 0;
  for (int64_t jc = 0; jc < g.N; jc += Bk::NC) {
    const int64_t nc = std::min<int64_t>(Bk::NC, g.N - jc);
    for (int64_t pc = 0; pc < g.K; pc += Bk::KC) {
      const int64_t kc = std::min<int64_t>(Bk::KC, g.K - pc);
      const bool first = pc == 0;
      const T beta = first ? g.beta : T(1);
      const int64_t full_cols = direct_b ? nc / NR * NR : 0;
      if (full_cols < nc) pack_b(g.B + pc * g.rsB + (jc + full_cols) * g.csB, g.rsB, g.csB, kc, nc - full_cols, Bp);
      for (int64_t ic = 0; ic < g.M; ic += MC) {
        const int64_t mc = std::min<int64_t>(MC, g.M - ic);
        const T* Ablk = g.A + ic * g.rsA + pc * g.csA;
        int64_t lda = g.rsA;
        // A row-major A is read in place, except its last, partial row panel (zero rows past M), packed
        // here once per block rather than once per column panel.
        const int64_t full_rows = mc / MR * MR;
        if (!direct_a) {
          pack_a(Ablk, g.rsA, g.csA, mc, kc, Ap);
        } else {
          if (full_rows < mc) pack_a(Ablk + full_rows * g.rsA, g.rsA, g.csA, mc - full_rows, kc, Ap);
          if (restride_a && full_rows > 0) {
            T* Ar = Ap + MR * kc;  // after the partial panel
            for (int64_t i = 0; i < full_rows; ++i) std::memcpy(Ar + i * lda_r, Ablk + i * g.rsA, kc * sizeof(T));
            Ablk = Ar, lda = lda_r;
          }
        }
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const T* bcol = first && g.bias_col ? g.bias_col + jc + jr : nullptr;
          const bool in_place_b = jr < full_cols;
          const T* bpan = in_place_b ? g.B + pc * g.rsB + jc + jr : Bp + (jr - full_cols) * kc;
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const MicroTileView v{g.rsC, g.csC, std::min<int64_t>(MR, mc - ir), std::min<int64_t>(NR, nc - jr), stream};
            // The next row panel's rows of an A read in place, on their first read (the block's first column
            // panel): a tile is too short for the hardware prefetcher to hide the misses of its 14 rows (ResNet-50's
            // 64 -> 64 channels_last 1x1 at 56x56 0.44 -> 0.30 ms, MobileNet-V2's 96 -> 24 0.64 -> 0.43 ms). Rows
            // of two cache lines or less are asked for here, at once; longer ones by the micro-kernel, one line per
            // k step (pf): 14 x kc/16 prefetches in one burst filled the miss queue and stalled on it (channels_last
            // 1x1 192 -> 32 at 28x28 0.34 -> 0.25 ms, 256 -> 128 at 56x56 2.66 -> 2.25 ms).
            const T* pf = nullptr;
            if (direct_a && jr == 0) {
              if (kc * int64_t(sizeof(T)) > 128) {
                if (ir + 2 * MR <= full_rows) pf = Ablk + (ir + MR) * lda;
              } else {
                for (int64_t i = MR; i < 2 * MR && ir + i < full_rows; ++i)
                  for (int64_t q = 0; q < kc; q += 64 / int64_t(sizeof(T))) __builtin_prefetch(Ablk + (ir + i) * lda + q, 0, 3);
              }
            }
            const T* brow = first && g.bias_row ? g.bias_row + ic + ir : nullptr;
            T* c = g.C + (ic + ir) * g.rsC + (jc + jr) * g.csC;
            // The vector epilogue (bias_col included) only runs on full-width tiles and only on their v.mr
            // rows, so partial tiles never read past the end of C or of the biases.
            const T* apan = direct_a ? (v.mr < MR ? Ap : Ablk + ir * lda) : Ap + ir * kc;
            if (in_place_b) {
              const T* pfb = ir == 0 && jr + NR < full_cols ? bpan + NR : nullptr;
              const int64_t ldb = g.rsB;
              if (v.mr < MR)
                MK::template run_partial<false, true>(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol, 0, ldb);
              else if (direct_a)
                MK::template run<true, false, MR, true>(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol, lda, ldb, pf,
                                                        pfb);
              else
                MK::template run<false, false, MR, true>(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol, 0, ldb,
                                                         nullptr, pfb);
            } else if (v.mr < MR) {  // last, partial row panel (of a row-major A: packed above)
              MK::run_partial(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol);
            } else if (2 * v.nr <= NR) {  // last column panel, at most half full (a 16-channel output)
              if (direct_a)
                MK::template run_narrow<true>(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol, lda, pf);
              else
                MK::run_narrow(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol);
            } else if (!direct_a) {
              MK::run(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol);
            } else {
              MK::template run<true>(kc, apan, bpan, c, v, g.alpha, beta, brow, bcol, lda, NR, pf);
            }
          }
        }
      }
    }
  }
#if defined(__x86_64__) || defined(_M_X64)
  if (stream) _mm_sfence();  // the non-temporal stores ordered before whatever reads C next
#endif
}

template <typename T>
void gemm_part(const GemmArgs<T>& g, int64_t c_bytes) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) return scale_c(g);
  if (g.csC != 1 && g.rsC == 1) return gemm_serial(transposed(g), c_bytes);
  gemm_serial(g, c_bytes);
}

template <typename T>
int64_t result_bytes(const GemmArgs<T>& g) {
  return std::max(g.M * g.N * int64_t(sizeof(T)), g.whole_result_bytes);
}

}  // namespace

template <typename T>
void gemm(const GemmArgs<T>& g) {
  gemm_part(g, result_bytes(g));
}

template <typename T>
void gemm_parallel(const GemmArgs<T>& g, int nthreads) {
  if (nthreads <= 1 || g.M <= 0 || g.N <= 0) return gemm(g);
  const bool split_n = g.N >= g.M;
  const int64_t len = split_n ? g.N : g.M;
  const int64_t unit = split_n ? MicroKernel<T>::NR : MicroKernel<T>::MR;
  const int64_t units = (len + unit - 1) / unit;
  const int nt = static_cast<int>(std::min<int64_t>(nthreads, units));
  if (nt <= 1) return gemm(g);
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    int64_t u0, u1;
    split_range(units, team_size(), thread_id(), u0, u1);  // the team may be smaller than nt
    const int64_t b = std::min(len, u0 * unit), e = std::min(len, u1 * unit);
    if (e > b) {
      GemmArgs<T> s = g;
      if (split_n) {
        s.N = e - b, s.B = g.B + b * g.csB, s.C = g.C + b * g.csC;
        if (g.bias_col) s.bias_col = g.bias_col + b;
      } else {
        s.M = e - b, s.A = g.A + b * g.rsA, s.C = g.C + b * g.rsC;
        if (g.bias_row) s.bias_row = g.bias_row + b;
      }
      gemm_part(s, result_bytes(g));
    }
  }
}

template void gemm<float>(const GemmArgs<float>&);
template void gemm<double>(const GemmArgs<double>&);
template void gemm_parallel<float>(const GemmArgs<float>&, int);
template void gemm_parallel<double>(const GemmArgs<double>&, int);

}  // namespace cpu
}  // namespace fastconv
