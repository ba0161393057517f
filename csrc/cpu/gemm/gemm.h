// Packed, cache-blocked GEMM (BLIS-style) on raw pointers, float and double:
//   C[i, j] = alpha * sum_p A[i, p] * B[p, j] + beta * C[i, j] + bias_row[i] + bias_col[j]
// Every operand has an arbitrary row stride (rs) and column stride (cs), so transposed operands need no
// copy. beta == 0 never reads C (it may hold garbage). bias_row / bias_col may be null.
#pragma once

#include <cstdint>

#include "../cpu_tuning.h"  // nontemporal_stores

namespace fastconv {
namespace cpu {

// A result this large, written once, bypasses the caches through non-temporal stores (half of a 32 MB L3: it
// cannot stay there anyway, and ordinary stores first read every line they fill). The GEMM's own results, and
// the patch input gradient's copy-out of its GEMM's rows (conv_patch_input.cpp). Where nontemporal_stores()
// allows them (AMD; not Intel, where they measured slower).
constexpr int64_t kStreamBytes = int64_t(16) << 20;

template <typename T>
struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  T alpha = T(1);
  const T* A = nullptr;
  int64_t rsA = 0, csA = 0;
  const T* B = nullptr;
  int64_t rsB = 0, csB = 0;
  T beta = T(0);
  T* C = nullptr;
  int64_t rsC = 0, csC = 0;
  const T* bias_row = nullptr;  // length M, added once
  const T* bias_col = nullptr;  // length N, added once
  // When C is one piece of a larger result written in the same pass (a convolution's per-image or per-band
  // GEMMs): that result's size, which decides the non-temporal stores (kStreamBytes) instead of C's own.
  int64_t whole_result_bytes = 0;
};

// Runs on the calling thread.
template <typename T>
void gemm(const GemmArgs<T>& g);

// Splits C into nthreads blocks (along its longer side) and runs them on an OpenMP team; each thread
// opens a DenormalGuard. nthreads <= 1 is gemm().
template <typename T>
void gemm_parallel(const GemmArgs<T>& g, int nthreads);

}  // namespace cpu
}  // namespace fastconv
