// GEMM micro-kernels: an MR x NR block of C from packed panels of A (MR values per k) and B (NR values
// per k), with the epilogue C = alpha*acc + beta*C + biases. AVX-512: 14 rows x 2 vectors (28 zmm
// accumulators + 2 for B + 1 broadcast of A = 31 of 32 registers): 14x32 for float, 14x16 for double.
// Without AVX-512 a portable kernel (plain loops the compiler vectorises for AVX2/SSE/NEON).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>

#include "../cpu_tuning.h"
#include "../simd_transpose.h"
#else
#include "../portable_vec.h"
#endif

namespace fastconv {
namespace cpu {

struct MicroTileView {  // where the tile lands in C, and which part of it exists
  int64_t rsC, csC;
  int64_t mr, nr;
  bool stream = false;  // full-width rows on 64-byte boundaries go out as non-temporal stores (beta == 0)
};

// A row stride of n elements for a matrix the micro-kernels read many rows of at once (14 broadcast rows, or a
// strip of B rows): n, moved one 64-byte vector further when n * elem_size is a multiple of 512 bytes, where the
// rows would share a few L1 sets (Winograd C = 256 ran at 0.75x of torch, 1.1x with the stride padded).
inline int64_t stride_off_512(int64_t n, int64_t elem_size) {
  return n * elem_size % 512 == 0 ? n + 64 / elem_size : n;
}

// Whether a row-major A with rows n elements apart, read in place by the micro-kernel (14 broadcast rows at
// once), crowds those rows into a few of the L1's 64 sets, where the B micro-panel streaming through every set
// evicts them: n * elem_size a multiple of 1 KB (2 KB: one or two sets, 1 KB: four). Such an A is given a
// stride_off_512 stride first (ResNet-50's 1024-channel channels_last 1x1 ran at 40% of peak; its 256-channel
// 1x1 at 56x56 went 0.89x -> 0.95x of torch when 1 KB rows were included).
inline bool broadcast_rows_alias(int64_t n, int64_t elem_size) { return n * elem_size % 1024 == 0; }

// A row stride for a row-major operand of n columns that a GEMM will read in place: n, moved one 64-byte vector
// further when broadcast_rows_alias(n).
inline int64_t unaliased_stride(int64_t n, int64_t elem_size) {
  return broadcast_rows_alias(n, elem_size) ? n + 64 / elem_size : n;
}

// Whether such rows all fall into one L1 set (n * elem_size a multiple of 4 KB: 14 rows in one 12-way set): the
// GEMM copies an A it would read in place to another stride only then. Rows 1-3 KB apart spread over 2-4 sets,
// where the copy cost more than the misses it saved once the next row panel's rows were prefetched (channels_last
// 1x1: 256 -> 64 at 56x56 0.97x -> 1.17x of torch without it, 512 -> 128 at 28x28 0.88x -> 1.05x, 768 -> 128 at
// 14x14 0.93x -> 1.05x; 1024 -> 256 at 14x14 0.93x with it, 0.64x without). DenseNet-121 channels_last batch 8,
// in one process: inference 1.06x faster, training step 1.03x.
inline bool broadcast_rows_one_set(int64_t n, int64_t elem_size) { return n * elem_size % 4096 == 0; }

// Scalar epilogue for partial tiles or non-unit column stride. acc is MR x NR row-major.
template <typename T, int MR, int NR>
inline void store_tile_generic(const T* acc, T* C, const MicroTileView& v, T alpha, T beta, const T* brow,
                               const T* bcol) {
  for (int64_t i = 0; i < v.mr; ++i)
    for (int64_t j = 0; j < v.nr; ++j) {
      T val = alpha * acc[i * NR + j];
      T* c = C + i * v.rsC + j * v.csC;
      if (beta != T(0)) val += beta * *c;
      if (brow) val += brow[i];
      if (bcol) val += bcol[j];
      *c = val;
    }
}

#if defined(__AVX512F__)

template <typename T>
struct Zmm;
template <>
struct Zmm<float> {
  using V = __m512;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  // c + broadcast(*a) * b, the broadcast embedded in the FMA's memory operand. For a value that feeds two FMAs
  // the compiler emits one vbroadcastss and two register FMAs; two embedded broadcasts (as oneDNN's kernels do)
  // measured 3-5% faster in the direct convolution's tiles on Zen 4 (run_taps) but 15-17% slower on Intel
  // (cpu_tuning.h chooses), and no different in the GEMM's (run) and the weight gradient's
  // (conv_implicit_nhwc_weight.cpp) on Zen 4, so only run_taps uses it.
  static V fma_bcast(const float* a, V b, V c) {
    asm("vfmadd231ps %1%{1to16%}, %2, %0" : "+v"(c) : "m"(*a), "v"(b));
    return c;
  }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void stream(float* p, V v) { _mm512_stream_ps(p, v); }
  // the first n <= L lanes
  static V load_first(const float* p, int64_t n) { return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p); }
  static void store_first(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v); }
};
template <>
struct Zmm<double> {
  using V = __m512d;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V fma_bcast(const double* a, V b, V c) {
    asm("vfmadd231pd %1%{1to8%}, %2, %0" : "+v"(c) : "m"(*a), "v"(b));
    return c;
  }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static void stream(double* p, V v) { _mm512_stream_pd(p, v); }
  static V load_first(const double* p, int64_t n) { return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p); }
  static void store_first(double* p, V v, int64_t n) { _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), v); }
};

// The 16 row vectors r of a tile whose rows are consecutive in C (v.rsC == 1) and whose columns are v.csC apart
// (the channels_last direct convolution writing an NCHW output: pixels along an output row, channels planes
// apart): C[j*csC + i] = alpha*r[i][j] + beta*C[j*csC + i] + brow[i] + bcol[j] for i < v.mr <= 16, j < v.nr <= L.
// Float: one 16 x 16 register transpose and a masked store per column; double element by element. r is the
// caller's copy of its accumulators (taking their own address kept them in memory through the k loop: 2x slower).
template <typename T>
inline void store_transposed(typename Zmm<T>::V* r, T* C, const MicroTileView& v, T alpha, T beta, const T* brow,
                             const T* bcol) {
  using Z = Zmm<T>;
  if constexpr (std::is_same_v<T, float>) {
    const __mmask16 m = __mmask16((1u << v.mr) - 1);
    transpose16x16(r);
    const __m512 va = Z::set1(alpha), vb = Z::set1(beta), br = brow ? _mm512_maskz_loadu_ps(m, brow) : Z::zero();
    for (int64_t j = 0; j < v.nr; ++j) {
      float* col = C + j * v.csC;
      __m512 out = Z::mul(va, r[j]);
      if (beta != 0.0f) out = Z::fma(vb, _mm512_maskz_loadu_ps(m, col), out);
      if (brow) out = Z::add(out, br);
      if (bcol) out = Z::add(out, Z::set1(bcol[j]));
      _mm512_mask_storeu_ps(col, m, out);
    }
  } else {
    alignas(64) T acc[16 * Z::L];
    for (int i = 0; i < 16; ++i) Z::store(acc + i * Z::L, r[i]);
    store_tile_generic<T, 16, Z::L>(acc, C, v, alpha, beta, brow, bcol);
  }
}

template <typename T>
struct MicroKernel {
  using Z = Zmm<T>;
  using V = typename Z::V;
  static constexpr int MR = 14;
  static constexpr int NR = 2 * Z::L;

  // Step p's share of prefetching R rows of a row-major panel (rows lda apart) into L1: with a cache line of LN
  // values, rows p % LN, p % LN + LN, ... at column p rounded down to LN, so over LN steps every row's line of
  // those columns is asked for once (float: one prefetch per step).
  template <int R>
  static void prefetch_panel_line(const T* pf, int64_t lda, int64_t p) {
    constexpr int64_t LN = 64 / int64_t(sizeof(T));
    const T* col = pf + (p & ~(LN - 1));
    for (int64_t r = p & (LN - 1); r < R; r += LN) __builtin_prefetch(col + r * lda, 0, 3);
  }

  // kDirectA: a is row-major with leading dimension lda (a[i*lda + p]) instead of a packed panel
  // (a[p*MR + i]); broadcasts from memory cost the same, and it saves packing a large row-major A.
  // kStrided: both operands in place with row strides: a[p*lda + i], b[p*ldb + j] (the Winograd weight
  // gradient reads two transformed matrices, tiles x channels, that way).
  // kDirectB: b is a row-major B read in place, b[p*ldb + j] (NR columns of rows ldb apart), not a packed panel.
  // R: rows of accumulators (MR, or fewer for a partial row panel: run_partial).
  // pf (kDirectA only; null: none): the next row panel of A, same lda, prefetched into L1 as the k loop runs
  // (prefetch_panel_line), so its misses overlap this tile's FMAs. pfb (kDirectB only; null: none): the same for
  // the next column panel of B, same ldb, both of its lines per k step.
  template <bool kDirectA = false, bool kStrided = false, int R = MR, bool kDirectB = false>
  static void run(int64_t kc, const T* __restrict a, const T* __restrict b, T* C, const MicroTileView& v,
                  T alpha, T beta, const T* brow, const T* bcol, int64_t lda = 0, int64_t ldb = NR,
                  const T* pf = nullptr, const T* pfb = nullptr) {
    static_assert(!(kDirectA && kStrided), "one layout of A");
    static_assert(!(kStrided && kDirectB), "one layout of B");
    static_assert(R >= 1 && R <= MR, "at most MR rows");
    V c0[R], c1[R];
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) c0[i] = c1[i] = Z::zero();
    // The tile's rows of C, fetched for writing while the loop runs: a freshly allocated output misses
    // every cache, and its read-for-ownership then stalled the epilogue (3-8% on channels_last 1x1 layers
    // with large outputs). A prefetch never faults, so a narrower tile may ask for a line past its end.
    // Not for a streamed result: its non-temporal stores need no line, and the prefetch read each one from
    // memory only to have it evicted (MobileNet-V2's 16 -> 96 channels_last 1x1 at 112x112 1.52 -> 1.14 ms).
    if (v.csC == 1 && !v.stream) {
      for (int i = 0; i < R && i < v.mr; ++i) {
        __builtin_prefetch(C + i * v.rsC, 1, 3);
        __builtin_prefetch(C + i * v.rsC + NR - 1, 1, 3);
      }
    }
    for (int64_t p = 0; p < kc; ++p) {
      const V b0 = Z::load(b), b1 = Z::load(b + Z::L);
      if constexpr (kDirectB) {
        if (pfb) __builtin_prefetch(pfb + p * ldb, 0, 3), __builtin_prefetch(pfb + p * ldb + Z::L, 0, 3);
      } else {
        __builtin_prefetch(b + 8 * (kStrided ? ldb : NR));
      }
      if (kDirectA && pf) prefetch_panel_line<R>(pf, lda, p);
#pragma GCC unroll 14
      for (int i = 0; i < R; ++i) {
        const V ai = Z::set1(kDirectA ? a[i * lda] : a[i]);
        c0[i] = Z::fma(ai, b0, c0[i]);
        c1[i] = Z::fma(ai, b1, c1[i]);
      }
      a += kDirectA ? 1 : kStrided ? lda : MR;
      b += kStrided || kDirectB ? ldb : NR;
    }
    store<R>(c0, c1, C, v, alpha, beta, brow, bcol);
  }

  // A column panel of at most L columns (the last panel of an N that is up to 16 past a multiple of 32, such
  // as a 16-channel output): one vector of accumulators per row, so it costs half the FMAs of a full tile.
  // b is still a packed panel of NR columns; only its first L are read.
  template <bool kDirectA = false>
  static void run_narrow(int64_t kc, const T* __restrict a, const T* __restrict b, T* C, const MicroTileView& v,
                         T alpha, T beta, const T* brow, const T* bcol, int64_t lda = 0, const T* pf = nullptr) {
    V c0[MR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) c0[i] = Z::zero();
    if (v.csC == 1)
      for (int i = 0; i < v.mr; ++i) __builtin_prefetch(C + i * v.rsC, 1, 3);
    for (int64_t p = 0; p < kc; ++p) {
      const V b0 = Z::load(b);
      if (kDirectA && pf) prefetch_panel_line<MR>(pf, lda, p);
#pragma GCC unroll 14
      for (int i = 0; i < MR; ++i) c0[i] = Z::fma(Z::set1(kDirectA ? a[i * lda] : a[i]), b0, c0[i]);
      a += kDirectA ? 1 : MR;
      b += NR;
    }
    if (v.csC == 1) {  // rows of v.nr <= L contiguous values: masked vector stores (the scalar epilogue below
                       // cost 2x on MobileNet-V2's 32->16 1x1 at 112x112, a 100352 x 16 result)
      const V va = Z::set1(alpha), vb = Z::set1(beta), bc = bcol ? Z::load_first(bcol, v.nr) : Z::zero();
#pragma GCC unroll 14
      for (int i = 0; i < MR; ++i) {
        if (i >= v.mr) break;
        T* row = C + i * v.rsC;
        V r = Z::mul(va, c0[i]);  // the order of the full tiles' epilogue (store)
        if (beta != T(0)) r = Z::fma(vb, Z::load_first(row, v.nr), r);
        if (brow) r = Z::add(r, Z::set1(brow[i]));
        if (bcol) r = Z::add(r, bc);
        Z::store_first(row, r, v.nr);
      }
      return;
    }
    alignas(64) T acc[MR * NR];
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) Z::store(acc + i * NR, c0[i]), Z::store(acc + i * NR + Z::L, Z::zero());
    store_tile_generic<T, MR, NR>(acc, C, v, alpha, beta, brow, bcol);
  }

  // Direct convolution on channels-last data ("implicit GEMM"): the tile's rows are output pixels, and
  // pixel i's operands for tap t are the kc contiguous values at a + off[t] + i*lda (the padded input);
  // b holds one packed (kc, NR) weight panel per tap, b + t*kc*NR. The accumulators stay in registers over
  // all taps, so a tile is written once, with no column matrix and no partial sums in memory.
  // R: pixels (rows) computed; NV: vectors of columns (1: a panel of at most L output channels). W > 0: the
  // pixels are R / W output rows of W pixels, row j's first at a + j*row_step (pixel i at
  // a + (i / W)*row_step + (i % W)*lda). The body (run_taps_as) is not inlined: inlined into a caller that
  // switches over many R, its accumulators were spilled (2x slower).
  template <int R = MR, int NV = 2, int W = 0>
  static void run_taps(int64_t ntaps, const int64_t* off, int64_t kc, const T* a, int64_t lda, const T* b, T* C,
                       const MicroTileView& v, const T* bcol, int64_t row_step = 0) {
    if (fma_embedded_broadcast())
      run_taps_as<R, NV, W, true>(ntaps, off, kc, a, lda, b, C, v, bcol, row_step);
    else
      run_taps_as<R, NV, W, false>(ntaps, off, kc, a, lda, b, C, v, bcol, row_step);
  }

  // run_taps with the input values broadcast inside the FMAs (kEmbedded) or into a register first.
  template <int R, int NV, int W, bool kEmbedded>
  __attribute__((noinline)) static void run_taps_as(int64_t ntaps, const int64_t* off, int64_t kc, const T* a,
                                                    int64_t lda, const T* b, T* C, const MicroTileView& v,
                                                    const T* bcol, int64_t row_step) {
    static_assert(R >= 1 && R <= MR && (NV == 1 || NV == 2), "tile shape");
    constexpr int kRowW = W > 0 ? W : 1;  // (a divisor for the W = 0 case too, which does not use it)
    V c0[R], c1[R];
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) c0[i] = c1[i] = Z::zero();
    if (v.csC == 1)
      for (int i = 0; i < R && i < v.mr; ++i) __builtin_prefetch(C + i * v.rsC, 1, 3);
    else  // an NCHW output (store_transposed): each channel's v.mr consecutive values
      for (int64_t j = 0; j < v.nr; ++j) {
        __builtin_prefetch(C + j * v.csC, 1, 3);
        __builtin_prefetch(C + j * v.csC + v.mr - 1, 1, 3);
      }
    for (int64_t t = 0; t < ntaps; ++t) {
      const T* at = a + off[t];
      const T* bt = b + t * kc * NR;
      for (int64_t p = 0; p < kc; ++p) {
        const V b0 = Z::load(bt + p * NR);
        const V b1 = NV == 2 ? Z::load(bt + p * NR + Z::L) : b0;
        __builtin_prefetch(bt + (p + 8) * NR);
#pragma GCC unroll 14
        for (int i = 0; i < R; ++i) {
          const int64_t ai_off = W > 0 ? (i / kRowW) * row_step + (i % kRowW) * lda : i * lda;
          if constexpr (kEmbedded) {
            c0[i] = Z::fma_bcast(at + ai_off + p, b0, c0[i]);
            if (NV == 2) c1[i] = Z::fma_bcast(at + ai_off + p, b1, c1[i]);
          } else {
            const V ai = Z::set1(at[ai_off + p]);
            c0[i] = Z::fma(ai, b0, c0[i]);
            if (NV == 2) c1[i] = Z::fma(ai, b1, c1[i]);
          }
        }
      }
    }
    if (NV == 1)
      for (int i = 0; i < R; ++i) c1[i] = Z::zero();
    store<R>(c0, c1, C, v, T(1), T(0), nullptr, bcol);
  }

  // A row panel of v.mr <= MR rows with only the accumulators of the next even row count, so an M of 16 or
  // 32 (14 + 2, 28 + 4 rows) does not pay for a second 14 rows. A packed A (a[p*MR + i]), or with kDirectA a
  // row-major A read in place (a[i*lda + p]), of which an odd v.mr reads one row more (the caller's A has it).
  // kDirectB: b is read in place, rows ldb apart (run).
  template <bool kDirectA = false, bool kDirectB = false>
  static void run_partial(int64_t kc, const T* a, const T* b, T* C, const MicroTileView& v, T alpha, T beta,
                          const T* brow, const T* bcol, int64_t lda = 0, int64_t ldb = NR) {
    switch ((v.mr + 1) / 2) {
      case 1: return run<kDirectA, false, 2, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
      case 2: return run<kDirectA, false, 4, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
      case 3: return run<kDirectA, false, 6, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
      case 4: return run<kDirectA, false, 8, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
      case 5: return run<kDirectA, false, 10, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
      case 6: return run<kDirectA, false, 12, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
      default: return run<kDirectA, false, MR, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
    }
  }

 private:
  // C = alpha*acc + beta*C + biases for the v.mr <= R rows that exist: vectors for full-width rows of unit
  // column stride, scalars otherwise (partial tiles never read past the end of C or of the biases). Always inlined:
  // called, it took the accumulators' address, and the kernels kept them in memory through their k loops.
  template <int R>
  __attribute__((always_inline)) static void store(const V* c0, const V* c1, T* C, const MicroTileView& v, T alpha, T beta, const T* brow,
                    const T* bcol) {
    if (v.nr == NR && v.csC == 1) {
      const V va = Z::set1(alpha), vb = Z::set1(beta);
      V bc0 = Z::zero(), bc1 = Z::zero();
      if (bcol) bc0 = Z::load(bcol), bc1 = Z::load(bcol + Z::L);
#pragma GCC unroll 14
      for (int i = 0; i < R; ++i) {
        if (i >= v.mr) break;
        T* row = C + i * v.rsC;
        V r0 = Z::mul(va, c0[i]), r1 = Z::mul(va, c1[i]);
        if (beta != T(0)) r0 = Z::fma(vb, Z::load(row), r0), r1 = Z::fma(vb, Z::load(row + Z::L), r1);
        if (brow) {
          const V br = Z::set1(brow[i]);
          r0 = Z::add(r0, br), r1 = Z::add(r1, br);
        }
        if (bcol) r0 = Z::add(r0, bc0), r1 = Z::add(r1, bc1);
        if (v.stream && beta == T(0) && (reinterpret_cast<uintptr_t>(row) & 63) == 0) {
          Z::stream(row, r0);
          Z::stream(row + Z::L, r1);
        } else {
          Z::store(row, r0);
          Z::store(row + Z::L, r1);
        }
      }
      return;
    }
    if constexpr (R <= 16) {
      if (v.rsC == 1 && v.csC != 1) {  // rows along C: columns 0..L-1 from c0, L.. from c1
        V r[16];
        MicroTileView h = v;
        h.nr = std::min<int64_t>(v.nr, Z::L);
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) r[i] = i < R ? c0[i] : Z::zero();
        store_transposed<T>(r, C, h, alpha, beta, brow, bcol);
        if (v.nr <= Z::L) return;
        h.nr = v.nr - Z::L;
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) r[i] = i < R ? c1[i] : Z::zero();
        return store_transposed<T>(r, C + Z::L * v.csC, h, alpha, beta, brow, bcol ? bcol + Z::L : nullptr);
      }
    }
    alignas(64) T acc[R * NR];
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) Z::store(acc + i * NR, c0[i]), Z::store(acc + i * NR + Z::L, c1[i]);
    store_tile_generic<T, R, NR>(acc, C, v, alpha, beta, brow, bcol);
  }
};

#else  // portable kernel: GCC vectors of one register of the library's capability (AVX2: 8 floats, baseline: 4)

// The tile keeps NR columns, as the AVX-512 kernel (packed layouts and panel widths depend on it), in NV vectors
// per row, and MR rows: MR * NV accumulators of the 16 registers with B read from memory (AVX2: 3 x 4). A first
// version kept the tile in an array (acc[MR * NR], MR = 6) the compiler left in memory: the avx2 library ran the
// quick suite's convolutions at 0.04-0.05x of torch.
template <typename T>
struct MicroKernel {
  using V = typename PortableVec<T>::V;
  static constexpr int VL = PortableVec<T>::L;
  static constexpr int NR = 64 / sizeof(T) * 2;
  static constexpr int NV = NR / VL;
  static constexpr int MR = NV <= 4 ? 3 : 1;

  // The AVX-512 kernel's interface (R, the accumulator rows of a partial panel, is only a hint here). A packed
  // A has MR rows per k (zero-padded); a row-major A read in place (kDirectA) and a strided one only v.mr.
  template <bool kDirectA = false, bool kStrided = false, int R = MR, bool kDirectB = false>
  static void run(int64_t kc, const T* __restrict a, const T* __restrict b, T* C, const MicroTileView& v,
                  T alpha, T beta, const T* brow, const T* bcol, int64_t lda = 0, int64_t ldb = NR,
                  const T* /*pf, pfb: prefetch hints, unused here*/ = nullptr, const T* = nullptr) {
    const int rows = kDirectA || kStrided ? static_cast<int>(v.mr < MR ? v.mr : MR) : MR;
    with_rows(rows, [&](auto rw) {
      run_rows<decltype(rw)::value, kDirectA, kStrided, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
    });
  }

  template <bool kDirectA = false, bool kDirectB = false>
  static void run_partial(int64_t kc, const T* a, const T* b, T* C, const MicroTileView& v, T alpha, T beta,
                          const T* brow, const T* bcol, int64_t lda = 0, int64_t ldb = NR) {
    run<kDirectA, false, MR, kDirectB>(kc, a, b, C, v, alpha, beta, brow, bcol, lda, ldb);
  }

  // v.mr <= MR pixels: rows of A at a[off[t] + i*lda + p].
  template <int R = MR, int NVU = 2>
  static void run_taps(int64_t ntaps, const int64_t* off, int64_t kc, const T* a, int64_t lda, const T* b, T* C,
                       const MicroTileView& v, const T* bcol) {
    with_rows(static_cast<int>(v.mr < MR ? v.mr : MR), [&](auto rw) {
      run_taps_rows<decltype(rw)::value>(ntaps, off, kc, a, lda, b, C, v, bcol);
    });
  }

  template <bool kDirectA = false>
  static void run_narrow(int64_t kc, const T* a, const T* b, T* C, const MicroTileView& v, T alpha, T beta,
                         const T* brow, const T* bcol, int64_t lda = 0, const T* /*pf*/ = nullptr) {
    run<kDirectA>(kc, a, b, C, v, alpha, beta, brow, bcol, lda);
  }

 private:
  // f(std::integral_constant<int, rows>) for rows in [1, MR]: the row count as a compile-time constant.
  template <class F>
  static void with_rows(int rows, F&& f) {
    if constexpr (MR >= 3) {
      if (rows == 3) return f(std::integral_constant<int, 3>{});
    }
    if constexpr (MR >= 2) {
      if (rows == 2) return f(std::integral_constant<int, 2>{});
    }
    f(std::integral_constant<int, 1>{});
  }

  // RW rows known at compile time, so that the RW x NV accumulators are registers (with the row count a
  // run-time bound the compiler kept them on the stack: the avx2 library's 5x5 convolutions at 30% of peak).
  template <int RW, bool kDirectA, bool kStrided, bool kDirectB>
  static void run_rows(int64_t kc, const T* __restrict a, const T* __restrict b, T* C, const MicroTileView& v,
                       T alpha, T beta, const T* brow, const T* bcol, int64_t lda, int64_t ldb) {
    V acc[RW][NV] = {};
    for (int64_t p = 0; p < kc; ++p) {
#pragma GCC unroll 3
      for (int i = 0; i < RW; ++i) {
        const T ai = kDirectA ? a[i * lda] : a[i];  // scalar * vector: a broadcast from memory
#pragma GCC unroll 8
        for (int j = 0; j < NV; ++j) acc[i][j] += ai * load(b + j * VL);
      }
      a += kDirectA ? 1 : kStrided ? lda : MR;
      b += kStrided || kDirectB ? ldb : NR;
    }
    finish<RW>(acc, C, v, alpha, beta, brow, bcol);
  }

  template <int RW>
  static void run_taps_rows(int64_t ntaps, const int64_t* off, int64_t kc, const T* a, int64_t lda, const T* b, T* C,
                            const MicroTileView& v, const T* bcol) {
    V acc[RW][NV] = {};
    for (int64_t t = 0; t < ntaps; ++t) {
      const T* at = a + off[t];
      const T* bt = b + t * kc * NR;
      for (int64_t p = 0; p < kc; ++p) {
        const T* bp = bt + p * NR;
#pragma GCC unroll 3
        for (int i = 0; i < RW; ++i) {
          const T ai = at[i * lda + p];
#pragma GCC unroll 8
          for (int j = 0; j < NV; ++j) acc[i][j] += ai * load(bp + j * VL);
        }
      }
    }
    finish<RW>(acc, C, v, T(1), T(0), nullptr, bcol);
  }

  static V load(const T* p) { return PortableVec<T>::load(p); }
  // The epilogue C = alpha*acc + beta*C + brow + bcol, by vectors along contiguous rows (the scalar one cost as
  // much as the 64-deep k loop of a 1x1 convolution's tile); the columns past the last whole vector and
  // strided C element by element.
  template <int RW>
  static void finish(const V (&acc)[RW][NV], T* C, const MicroTileView& v, T alpha, T beta, const T* brow,
                     const T* bcol) {
    if (v.csC == 1) {
      const int64_t rows = v.mr < RW ? v.mr : RW, vecs = v.nr / VL;
      for (int64_t i = 0; i < rows; ++i) {
        T* c = C + i * v.rsC;
        for (int64_t j = 0; j < vecs; ++j) {
          V r = alpha * acc[i][j];
          if (beta != T(0)) r += beta * load(c + j * VL);
          if (brow) r += brow[i];
          if (bcol) r += load(bcol + j * VL);
          PortableVec<T>::store(c + j * VL, r);
        }
        for (int64_t j = vecs * VL; j < v.nr; ++j) {
          T val = alpha * acc[i][j / VL][j % VL];
          if (beta != T(0)) val += beta * c[j];
          if (brow) val += brow[i];
          if (bcol) val += bcol[j];
          c[j] = val;
        }
      }
      return;
    }
    alignas(64) T tile[RW * NR];
    for (int i = 0; i < RW; ++i)
      for (int j = 0; j < NV; ++j) std::memcpy(tile + i * NR + j * VL, &acc[i][j], sizeof(V));
    store_tile_generic<T, RW, NR>(tile, C, v, alpha, beta, brow, bcol);
  }
};

#endif

// The widest register of the library's capability behind one interface (zero, load, store, fma, add): kernels
// written on it run in every library, the AVX-512 intrinsics in the avx512 one and GCC vectors in the others.
#if defined(__AVX512F__)
template <typename T>
using SimdVec = Zmm<T>;
#else
template <typename T>
using SimdVec = PortableVec<T>;
#endif

}  // namespace cpu
}  // namespace fastconv
