// Cache-tiled 2-d transpose on raw pointers, shared by the weight repacks and the NHWC <-> NCHW switch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../common/parallel.h"
#include "simd_transpose.h"

namespace fastconv {
namespace cpu {

// dst[j * d_rs + i] = src[i * s_rs + j * s_cs] for i < rows, j < cols, on the calling thread: 16 x 16 register
// transposes where float and a unit column stride allow, element by element for the rest. No OpenMP region, so
// it can run per small block inside a team's loop (a nested transpose_tiled there started a one-thread region
// per call: 4096 per call of MelGAN's transposed convolution, a third of its weight packing in malloc and futexes).
template <typename T>
inline void transpose_serial(int64_t rows, int64_t cols, const T* s, int64_t s_rs, int64_t s_cs, T* d, int64_t d_rs) {
  int64_t iv = 0, jv = 0;  // rows [0, iv) x columns [0, jv) by register transposes
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (s_cs == 1) iv = rows / 16 * 16, jv = iv > 0 ? cols / 16 * 16 : 0;
    // 16 source rows at a time, each read in one sweep: a 32-row panel of a 512x2304 weight packed in 0.08 ms
    // where taking both row blocks per column block took 0.15 ms (Zen 4, warm).
    for (int64_t i = 0; i < iv; i += 16)
      for (int64_t jb = 0; jb < jv; jb += 16) transpose_block16(s + i * s_rs + jb, s_rs, d + jb * d_rs + i, d_rs);
  }
#endif
  for (int64_t j = 0; j < cols; ++j)
    for (int64_t i = j < jv ? iv : 0; i < rows; ++i) d[j * d_rs + i] = s[i * s_rs + j * s_cs];
}

// dst[j * ROWS + i] = src[i * s_rs + j] for i < ROWS, j < cols: a few planes interleaved into dense pixels (a
// grayscale, RGB or RGBA NCHW image into channels_last). With ROWS a constant the compiler vectorises the
// interleave: 4 x 3 x 224 x 224 floats in 0.07 ms where 32 x 32 tiles, element by element for so few rows, took
// 0.36 ms (1 thread, Zen 4).
template <int ROWS, typename T>
__attribute__((noinline)) void interleave_rows(int64_t cols, const T* __restrict src, int64_t s_rs, T* __restrict dst) {
  for (int64_t j = 0; j < cols; ++j)
#pragma GCC unroll 4
    for (int i = 0; i < ROWS; ++i) dst[j * ROWS + i] = src[i * s_rs + j];
}

// The inverse, dst[j * d_rs + i] = src[i * COLS + j] for i < rows, j < COLS: dense pixels of a few values into
// planes (a 3-channel channels_last output into NCHW).
template <int COLS, typename T>
__attribute__((noinline)) void deinterleave_cols(int64_t rows, const T* __restrict src, T* __restrict dst, int64_t d_rs) {
  for (int64_t i = 0; i < rows; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) dst[j * d_rs + i] = src[i * COLS + j];
}

// interleave_rows for rows <= 4; false (nothing done) for more rows.
template <typename T>
bool interleave_few_rows(int64_t rows, int64_t cols, const T* src, int64_t s_rs, T* dst) {
  switch (rows) {
    case 1: return interleave_rows<1>(cols, src, s_rs, dst), true;
    case 2: return interleave_rows<2>(cols, src, s_rs, dst), true;
    case 3: return interleave_rows<3>(cols, src, s_rs, dst), true;
    case 4: return interleave_rows<4>(cols, src, s_rs, dst), true;
  }
  return false;
}

// deinterleave_cols for cols <= 4; false (nothing done) for more columns.
template <typename T>
bool deinterleave_few_cols(int64_t rows, int64_t cols, const T* src, T* dst, int64_t d_rs) {
  switch (cols) {
    case 1: return deinterleave_cols<1>(rows, src, dst, d_rs), true;
    case 2: return deinterleave_cols<2>(rows, src, dst, d_rs), true;
    case 3: return deinterleave_cols<3>(rows, src, dst, d_rs), true;
    case 4: return deinterleave_cols<4>(rows, src, dst, d_rs), true;
  }
  return false;
}

// threads_for_work counts multiply-adds; a moved element costs several (it is memory-bound, and whatever the layer
// before left in cache is not there for the layout switches). ResNet-18 layer4's 4x256x14x14 input transposed in
// 0.11 ms on two threads, 0.20 ms on one (out of cache; 200K elements, under the 256K threshold).
constexpr int64_t kTransposeWorkPerElement = 4;

// dst[b * d_bs + j * d_rs + i] = src[b * s_bs + i * s_rs + j * s_cs] for b < batch, i < rows, j < cols, in
// 32 x 32 tiles: an element-wise transpose of a multi-megabyte matrix reads one cache line per element
// (VGG-16's 512x512x3x3 weight gradient: about 5 ms of a 10 ms backward); a tile's lines stay in L1 while
// it is copied (16 x 16 tiles staged through an L1 buffer measured slower). All tiles of all matrices
// are shared among up to num_threads threads in one parallel region (a region per matrix doubled the
// cost of the conv_layout_switch transposes) when there are enough elements to pay for starting them.
template <typename T>
void transpose_tiled_batch(int64_t batch, int64_t rows, int64_t cols, const T* src, int64_t s_bs, int64_t s_rs,
                           int64_t s_cs, T* dst, int64_t d_bs, int64_t d_rs, int num_threads) {
  const int nt = threads_for_work(batch * rows * cols * kTransposeWorkPerElement, std::max(num_threads, 1));
  if (rows <= 4 && s_cs == 1 && d_rs == rows) {  // into dense pixels of up to 4 values: chunks of columns
    constexpr int64_t kChunk = 4096;
    const int64_t chunks = (cols + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t item = 0; item < batch * chunks; ++item) {
      const int64_t b = item / chunks, j0 = (item % chunks) * kChunk;
      interleave_few_rows(rows, std::min(kChunk, cols - j0), src + b * s_bs + j0, s_rs, dst + b * d_bs + j0 * rows);
    }
    return;
  }
  if (cols <= 4 && s_cs == 1 && s_rs == cols) {  // dense pixels of up to 4 values into planes: chunks of rows
    constexpr int64_t kChunk = 4096;
    const int64_t chunks = (rows + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t item = 0; item < batch * chunks; ++item) {
      const int64_t b = item / chunks, i0 = (item % chunks) * kChunk;
      deinterleave_few_cols(std::min(kChunk, rows - i0), cols, src + b * s_bs + i0 * cols, dst + b * d_bs + i0, d_rs);
    }
    return;
  }
  constexpr int64_t kTile = 32;
  const int64_t tile_rows = (rows + kTile - 1) / kTile, items = batch * tile_rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t b = item / tile_rows, i0 = (item % tile_rows) * kTile, ni = std::min(kTile, rows - i0);
    const T* s = src + b * s_bs + i0 * s_rs;
    T* d = dst + b * d_bs + i0;
    for (int64_t j0 = 0; j0 < cols; j0 += kTile)
      transpose_serial(ni, std::min(kTile, cols - j0), s + j0 * s_cs, s_rs, s_cs, d + j0 * d_rs, d_rs);
  }
}

// One matrix: dst[j * d_rs + i] = src[i * s_rs + j * s_cs].
template <typename T>
void transpose_tiled(int64_t rows, int64_t cols, const T* src, int64_t s_rs, int64_t s_cs, T* dst, int64_t d_rs,
                     int num_threads) {
  transpose_tiled_batch(1, rows, cols, src, 0, s_rs, s_cs, dst, 0, d_rs, num_threads);
}

#if defined(__AVX512F__)
// d[j * rows + i] = s[i * cols + j] for one rows x cols matrix, rows <= 16, 16 columns at a time through a
// register transpose. Each column goes out as a full 16-float store whose tail the next columns overwrite
// (masked stores of 9 floats, crossing cache lines, cost more than the transpose); only stores that would
// pass the end of d are masked. Returns the columns done (all of them).
inline int64_t transpose_short_rows(int64_t rows, int64_t cols, const float* s, float* d) {
  const int64_t m = rows * cols;
  const __mmask16 out = __mmask16((1u << rows) - 1);
  for (int64_t j0 = 0; j0 < cols; j0 += 16) {
    const int n = int(std::min<int64_t>(16, cols - j0));
    __m512 r[16];
    load_rows16_masked(s + j0, cols, int(rows), n, r);
    transpose16x16(r);
    for (int j = 0; j < n; ++j) {
      float* dst = d + (j0 + j) * rows;
      if ((j0 + j) * rows + 16 <= m)
        _mm512_storeu_ps(dst, r[j]);
      else
        _mm512_mask_storeu_ps(dst, out, r[j]);
    }
  }
  return cols;
}
#endif

// dst[b, j, i] = src[b, i, j] for each of `batch` small (rows x cols) matrices, the batch shared among the
// threads: a channels_last weight (K, R*S, C) -> (K, C, R*S). Compiled in the kernel library
// (transpose_batched.cpp), so the bindings, compiled for baseline x86-64, call its SIMD version.
template <typename T>
void batched_transpose(int64_t batch, int64_t rows, int64_t cols, const T* src, T* dst, int num_threads);

}  // namespace cpu
}  // namespace fastconv
