// 16 x 16 float transpose in AVX-512 registers (unpack, 64-bit unpack, two 128-bit lane shuffles: 64
// shuffles for 256 elements), used where a scalar transpose touched one element per load and store: the
// GEMM's transposing B pack and the tiled transposes of weights and activations.
#pragma once

#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>

namespace fastconv {
namespace cpu {

// GCC 12 flags the _mm512_undefined_ps() inside its own shuffle intrinsics as used uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// r[i] holds row i on entry and column i on exit.
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + c], 128-bit lane L: column 4L + c of rows 4i .. 4i+3
  __m512 u[16];
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 a0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), a1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 b0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 b1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_f32x4(a0, b0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(a0, b0, 0xDD);
    r[4 + c] = _mm512_shuffle_f32x4(a1, b1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(a1, b1, 0xDD);
  }
}

// dst[j * d_rs + i] = src[i * s_rs + j] for i, j < 16.
inline void transpose_block16(const float* src, int64_t s_rs, float* dst, int64_t d_rs) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * s_rs);
  transpose16x16(r);
  for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + j * d_rs, r[j]);
}

// r[i] = the first cols (<= 16) values of row i of src for i < rows (<= 16), zeros elsewhere; nothing else
// is read (masked loads: safe at the end of a buffer).
inline void load_rows16_masked(const float* src, int64_t s_rs, int rows, int cols, __m512 r[16]) {
  const __mmask16 in = __mmask16((1u << cols) - 1);
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(in, src + i * s_rs) : _mm512_setzero_ps();
}

// The same for a rows x cols corner (rows, cols <= 16): dst[j * d_rs + i] = src[i * s_rs + j] for i < rows,
// j < cols, reading and writing nothing else (masked loads and stores: safe at the end of a buffer).
inline void transpose_block16_masked(const float* src, int64_t s_rs, float* dst, int64_t d_rs, int rows, int cols) {
  const __mmask16 out = __mmask16((1u << rows) - 1);
  __m512 r[16];
  load_rows16_masked(src, s_rs, rows, cols, r);
  transpose16x16(r);
  for (int j = 0; j < cols; ++j) _mm512_mask_storeu_ps(dst + j * d_rs, out, r[j]);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace cpu
}  // namespace fastconv

#endif
