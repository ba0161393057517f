// The packed GEMM (csrc/cpu/gemm/gemm.cpp) and the tiled transpose (transpose.h) against plain loops, on the
// operand layouts that take special paths: B read as a transpose (16 x 16 register transposes with rows
// left over and a partial column panel), a row-major A with a 1 or 2 KB row stride (copied to another stride),
// partial row panels, several K blocks, biases and beta, a result large enough for non-temporal stores, one
// and two threads; and transposes with partial tiles in both directions. Sizes are small enough for the ASan
// build.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cpu/gemm/gemm.h"
#include "cpu/transpose.h"
#include "test_util.h"

using fastconv_test::max_rel_error;
using fastconv_test::random_vector;

namespace {

struct Layout {
  bool a_col_major;  // A stored (K, M): rsA = 1
  bool b_col_major;  // B stored (N, K): rsB = 1 (the transposing pack)
  int64_t lda_pad;   // extra elements per row of a row-major A (its stride is K + lda_pad)
  int64_t ldb_pad = 0;  // the same for a row-major B (stride N + ldb_pad)
};

// A copy of v starting on 64 bytes (as torch allocates): its storage and the aligned pointer into it.
template <typename T>
T* aligned_copy(const std::vector<T>& v, std::vector<T>& storage) {
  storage.assign(v.size() + 64 / sizeof(T), T(0));
  T* p = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64 / sizeof(T);
  std::copy(v.begin(), v.end(), p);
  return p;
}

template <typename T>
void check_gemm(int64_t M, int64_t N, int64_t K, const Layout& l, bool biases, T beta, int threads) {
  const int64_t lda = l.a_col_major ? M : K + l.lda_pad, ldb = l.b_col_major ? K : N + l.ldb_pad;
  const auto A = random_vector<T>(size_t(l.a_col_major ? K * lda : M * lda), 1 + M);
  const auto B = random_vector<T>(size_t(l.b_col_major ? N * ldb : K * ldb), 2 + N);
  std::vector<T> b_storage;
  const T* B0 = aligned_copy(B, b_storage);  // row-major B with 64-byte rows: read in place by the GEMM
  const auto brow = random_vector<T>(size_t(M), 3), bcol = random_vector<T>(size_t(N), 4);
  // C starts on 64 bytes, as torch allocates it (the non-temporal stores take rows that start on 64 bytes)
  auto Cbuf = random_vector<T>(size_t(M * N) + 64 / sizeof(T), 5);
  T* C0 = Cbuf.data() + (64 - reinterpret_cast<uintptr_t>(Cbuf.data()) % 64) % 64 / sizeof(T);
  std::vector<T> C(C0, C0 + M * N), ref(C.size());
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t p = 0; p < K; ++p) {
        const T a = l.a_col_major ? A[p * lda + i] : A[i * lda + p];
        const T b = l.b_col_major ? B[j * ldb + p] : B[p * ldb + j];
        s += double(a) * double(b);
      }
      if (beta != T(0)) s += double(beta) * double(C[i * N + j]);
      if (biases) s += double(brow[i]) + double(bcol[j]);
      ref[i * N + j] = T(s);
    }
  fastconv::cpu::GemmArgs<T> g;
  g.M = M, g.N = N, g.K = K, g.beta = beta;
  g.A = A.data(), g.rsA = l.a_col_major ? 1 : lda, g.csA = l.a_col_major ? lda : 1;
  g.B = B0, g.rsB = l.b_col_major ? 1 : ldb, g.csB = l.b_col_major ? ldb : 1;
  g.C = C0, g.rsC = N, g.csC = 1;
  if (biases) g.bias_row = brow.data(), g.bias_col = bcol.data();
  fastconv::cpu::gemm_parallel(g, threads);
  C.assign(C0, C0 + M * N);
  const double e = max_rel_error(C, ref);
  FC_CHECK(e <= fastconv_test::default_tolerance<T>(),
           "gemm<%s> M=%lld N=%lld K=%lld a_col=%d b_col=%d lda_pad=%lld ldb_pad=%lld biases=%d threads=%d: rel err %.3g",
           sizeof(T) == 4 ? "float" : "double", (long long)M, (long long)N, (long long)K, l.a_col_major,
           l.b_col_major, (long long)l.lda_pad, (long long)l.ldb_pad, biases, threads, e);
}

// Row strides of src and dst `s_pad` and `d_pad` elements past dense (0: dense, where up to 4 planes are
// interleaved into pixels or pixels of up to 4 values split into planes, transpose.h's chunked loops).
template <typename T>
void check_transpose(int64_t batch, int64_t rows, int64_t cols, int64_t s_cs, int threads, int64_t s_pad = 3,
                     int64_t d_pad = 2) {
  const int64_t s_rs = cols * s_cs + s_pad, s_bs = rows * s_rs + 5, d_rs = rows + d_pad, d_bs = cols * d_rs + 7;
  const auto src = random_vector<T>(size_t(batch * s_bs), 6);
  std::vector<T> dst(size_t(batch * d_bs), T(0)), ref(dst.size(), T(0));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) ref[b * d_bs + j * d_rs + i] = src[b * s_bs + i * s_rs + j * s_cs];
  fastconv::cpu::transpose_tiled_batch(batch, rows, cols, src.data(), s_bs, s_rs, s_cs, dst.data(), d_bs, d_rs,
                                       threads);
  FC_CHECK(dst == ref, "transpose_tiled_batch batch=%lld rows=%lld cols=%lld s_cs=%lld threads=%d", (long long)batch,
           (long long)rows, (long long)cols, (long long)s_cs, threads);
}

// transpose_serial on its own, rows and columns with remainders of 1-15 past the 16 x 16 register blocks (element by
// element), written into a destination whose other elements must survive.
template <typename T>
void check_transpose_serial(int64_t rows, int64_t cols) {
  const int64_t s_rs = cols + 3, d_rs = rows + 5;
  const auto src = random_vector<T>(size_t(rows * s_rs), 7);
  std::vector<T> dst(size_t(cols * d_rs), T(-1)), ref(dst);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) ref[j * d_rs + i] = src[i * s_rs + j];
  fastconv::cpu::transpose_serial(rows, cols, src.data(), s_rs, int64_t(1), dst.data(), d_rs);
  FC_CHECK(dst == ref, "transpose_serial rows=%lld cols=%lld", (long long)rows, (long long)cols);
}

template <typename T>
void run_all() {
  const int64_t row4kb = 4096 / int64_t(sizeof(T));  // a row stride of exactly 4 KB
  for (int threads : {1, 2}) {
    // B read as its transpose: K with 16-row blocks and rows left over (40; 300 and 600, past KC of double and
    // of float), N with a partial panel
    check_gemm<T>(30, 48, 40, {false, true, 0}, true, T(0), threads);
    check_gemm<T>(45, 96, 300, {false, true, 0}, false, T(0.5), threads);
    check_gemm<T>(45, 96, 600, {false, true, 0}, false, T(0.5), threads);
    check_gemm<T>(7, 33, 17, {true, true, 0}, true, T(0), threads);
    // row-major A with a 4 KB row stride: copied to another stride (full panels) next to a partial panel
    check_gemm<T>(30, 40, row4kb, {false, false, 0}, true, T(0), threads);
    check_gemm<T>(70, 64, row4kb - 100, {false, false, 100}, false, T(1), threads);
    check_gemm<T>(14, 32, 2 * row4kb, {false, true, 0}, true, T(0), threads);
    check_gemm<T>(31, 40, row4kb / 2, {false, false, 0}, true, T(0), threads);  // 2 KB: read in place
    // a last column panel at most half full (narrow tiles), from a packed and from a row-major A
    check_gemm<T>(29, 48, 70, {true, false, 0}, true, T(0), threads);
    check_gemm<T>(42, 16, 33, {false, false, 0}, true, T(0.25), threads);
    check_gemm<T>(28, 7, 300, {false, true, 0}, false, T(0), threads);
    // row-major B on 64-byte rows, its full column panels read in place: with a row-major and a packed A, a
    // partial row panel, a partial (packed) last column panel, a narrow one, K past KC, rows padded past N
    const int64_t line = 64 / int64_t(sizeof(T));
    check_gemm<T>(30, 96, 40, {false, false, 0, 0}, true, T(0), threads);
    check_gemm<T>(45, 100, 300, {false, false, 0, 12}, false, T(0.5), threads);
    check_gemm<T>(45, 100, 600, {false, false, 0, 12}, false, T(0.5), threads);
    check_gemm<T>(13, 64, 20, {true, false, 0, 2 * line}, true, T(0), threads);
    check_gemm<T>(29, 48, 70, {true, false, 0, line}, true, T(0), threads);
    check_gemm<T>(70, 64, row4kb, {false, false, 0, row4kb - 64}, false, T(1), threads);
    // plain layouts, partial row panels of every size class
    for (int64_t M : {1, 5, 13, 14, 16, 29})
      check_gemm<T>(M, 35, 20, {false, false, 0}, true, T(0), threads);
    check_gemm<T>(50, 70, 260, {true, false, 0}, false, T(0), threads);
    // a result of 16 MB or more written in one pass: non-temporal stores on rows that start on 64 bytes (rows of
    // 40 elements: some do, some do not), the partial column panel and the partial row panel stored as usual
    check_gemm<T>((int64_t(16) << 20) / (40 * int64_t(sizeof(T))) + 7, 40, 24, {false, false, 0}, true, T(0), threads);
    // transposes: partial 32-row tiles, columns not a multiple of 16, strided source columns
    for (int64_t rows : {1, 3, 4, 9, 15, 16, 17, 20, 32, 35, 47})
      for (int64_t cols : {1, 2, 4, 5, 9, 16, 19, 31, 36})
        if (threads == 1) check_transpose_serial<T>(rows, cols);
    check_transpose<T>(2, 49, 40, 1, threads);
    check_transpose<T>(1, 40, 49, 1, threads);
    check_transpose<T>(3, 16, 16, 1, threads);
    check_transpose<T>(1, 70, 33, 2, threads);
    check_transpose<T>(2, 5, 100, 1, threads);
    // 1-4 planes into dense pixels (chunks of 4096 columns and a tail) and back
    check_transpose<T>(2, 3, 5000, 1, threads, 3, 0);
    check_transpose<T>(3, 1, 70, 1, threads, 0, 0);
    check_transpose<T>(2, 4, 33, 1, threads, 0, 0);
    check_transpose<T>(2, 5000, 3, 1, threads, 0, 2);
    check_transpose<T>(1, 9000, 2, 1, threads, 0, 5);
    check_transpose<T>(2, 70, 4, 1, threads, 0, 0);
  }
}

}  // namespace

int main() {
  run_all<float>();
  run_all<double>();
  return fastconv_test::report("test_gemm");
}
