// The Winograd transforms on six interpolation points (0, 1, -1, 2, -2 and infinity; Lavin & Gray), for two
// kernel sizes R with the same 6x6 input patch: F(4x4, 3x3) and F(2x2, 5x5) (output tiles of m = 7 - R).
// B^T depends only on the points, so both share the input transform; A^T (m x 6) holds the points' powers 0 ..
// m - 1, G (6 x R) the powers 0 .. R - 1 divided by N_j = prod_{l != j} (p_j - p_l) (4, -6, -6, 24, 24), with
// infinity's column / row the unit vector:
//
//   B^T = | 4  0 -5  0  1  0 |    F(4x4, 3x3):  G = |  1/4     0     0 |    A^T = | 1  1  1  1  1  0 |
//         | 0 -4 -4  1  1  0 |                      | -1/6  -1/6  -1/6 |          | 0  1 -1  2 -2  0 |
//         | 0  4 -4 -1  1  0 |                      | -1/6   1/6  -1/6 |          | 0  1  1  4  4  0 |
//         | 0 -2 -1  2  1  0 |                      | 1/24  1/12   1/6 |          | 0  1 -1  8 -8  1 |
//         | 0  2 -1 -2  1  0 |                      | 1/24 -1/12   1/6 |
//         | 0  4  0 -5  0  1 |                      |    0     0     1 |
//
//   F(2x2, 5x5):  G = |  1/4     0     0     0     0 |    A^T = | 1  1  1  1  1  0 |
//                     | -1/6  -1/6  -1/6  -1/6  -1/6 |          | 0  1 -1  2 -2  1 |
//                     | -1/6   1/6  -1/6   1/6  -1/6 |
//                     | 1/24  1/12   1/6   1/3   2/3 |
//                     | 1/24 -1/12   1/6  -1/3   2/3 |
//                     |    0     0     0     0     1 |
//
// Input and output transforms work on L lanes at once (L = one 64-byte vector of channels; the loops over
// lanes are what the compiler vectorises); the weight transform on L kernels (output channels) at once.
#pragma once

#include <cstdint>

namespace fastconv {
namespace cpu {

constexpr int kTileIn = 6;  // input patch edge (m + R - 1)
template <int R>
constexpr int kTileOut = kTileIn - R + 1;  // output tile edge m: 4 for 3x3 kernels, 2 for 5x5
constexpr int kPoints = kTileIn * kTileIn;  // transform-domain points, one GEMM each
template <typename T>
constexpr int kLanes = 64 / int(sizeof(T));

// out[r] = (B^T in)[r] for six values in[0..5] at stride is, six results at stride os; L lanes each.
template <typename T, int L>
inline void input_1d(const T* __restrict in, int64_t is, T* __restrict out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    const T d0 = in[l], d1 = in[is + l], d2 = in[2 * is + l], d3 = in[3 * is + l], d4 = in[4 * is + l],
            d5 = in[5 * is + l];
    out[l] = T(4) * d0 - T(5) * d2 + d4;
    out[os + l] = d3 + d4 - T(4) * (d1 + d2);
    out[2 * os + l] = T(4) * (d1 - d2) - d3 + d4;
    out[3 * os + l] = T(2) * (d3 - d1) - d2 + d4;
    out[4 * os + l] = T(2) * (d1 - d3) - d2 + d4;
    out[5 * os + l] = T(4) * d1 - T(5) * d3 + d5;
  }
}

// out[r] = (A^T in)[r] for six values in[0..5] at stride is, kTileOut<R> results at stride os; L lanes each.
template <typename T, int L, int R>
inline void output_1d(const T* __restrict in, int64_t is, T* __restrict out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
            m5 = in[5 * is + l];
    const T s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
    out[l] = m0 + s12 + s34;
    if constexpr (R == 3) {
      out[os + l] = d12 + T(2) * d34;
      out[2 * os + l] = s12 + T(4) * s34;
      out[3 * os + l] = d12 + T(8) * d34 + m5;
    } else {
      out[os + l] = d12 + T(2) * d34 + m5;
    }
  }
}

// V = B^T d B for a 6x6 patch d[(i*6 + j)*L + lane]; V's point (i, j) goes to V[(i*6 + j)*point_stride + lane].
// tmp: 36*L scratch.
template <typename T>
inline void input_tile_transform(const T* d, T* tmp, T* V, int64_t point_stride) {
  constexpr int L = kLanes<T>;
  for (int j = 0; j < kTileIn; ++j) input_1d<T, L>(d + j * L, kTileIn * L, tmp + j * L, kTileIn * L);
  for (int i = 0; i < kTileIn; ++i)
    input_1d<T, L>(tmp + i * kTileIn * L, L, V + i * kTileIn * point_stride, point_stride);
}

// out = A^T M A for the 36 points M[xi*point_stride + lane]; out[(r*m + c)*L + lane], m = kTileOut<R>.
// tmp: 6*m*L scratch.
template <typename T, int R>
inline void output_tile_transform(const T* M, int64_t point_stride, T* tmp, T* out) {
  constexpr int L = kLanes<T>, m = kTileOut<R>;
  for (int j = 0; j < kTileIn; ++j)
    output_1d<T, L, R>(M + j * point_stride, kTileIn * point_stride, tmp + j * L, kTileIn * L);
  for (int r = 0; r < m; ++r) output_1d<T, L, R>(tmp + r * kTileIn * L, L, out + r * m * L, L);
}

// (G v) for R values v at stride is, six results at stride os; L lanes each.
template <typename T, int L, int R>
inline void weight_1d(const T* __restrict in, int64_t is, T* __restrict out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    if constexpr (R == 3) {
      const T a = in[l], b = in[is + l], c = in[2 * is + l];
      const T ac = a + c;
      out[l] = a * T(0.25);
      out[os + l] = -(ac + b) * T(1.0 / 6);
      out[2 * os + l] = -(ac - b) * T(1.0 / 6);
      out[3 * os + l] = a * T(1.0 / 24) + b * T(1.0 / 12) + c * T(1.0 / 6);
      out[4 * os + l] = a * T(1.0 / 24) - b * T(1.0 / 12) + c * T(1.0 / 6);
      out[5 * os + l] = c;
    } else {
      const T a = in[l], b = in[is + l], c = in[2 * is + l], d = in[3 * is + l], e = in[4 * is + l];
      const T even = a + c + e, odd = b + d;
      const T even2 = a * T(1.0 / 24) + c * T(1.0 / 6) + e * T(2.0 / 3), odd2 = b * T(1.0 / 12) + d * T(1.0 / 3);
      out[l] = a * T(0.25);
      out[os + l] = -(even + odd) * T(1.0 / 6);
      out[2 * os + l] = -(even - odd) * T(1.0 / 6);
      out[3 * os + l] = even2 + odd2;
      out[4 * os + l] = even2 - odd2;
      out[5 * os + l] = e;
    }
  }
}

// u = G g G^T for L kernels at once: g[e*L + lane] (e = R*row + col of the RxR kernel), u[xi*point_stride +
// lane] (xi = 6*row + col). tmp: 6*R*L scratch.
template <typename T, int L, int R>
inline void weight_tile_transform(const T* g, T* tmp, T* u, int64_t point_stride) {
  for (int col = 0; col < R; ++col) weight_1d<T, L, R>(g + col * L, R * L, tmp + col * L, R * L);
  for (int i = 0; i < kTileIn; ++i)
    weight_1d<T, L, R>(tmp + i * R * L, L, u + i * kTileIn * point_stride, point_stride);
}

// The weight gradient: y = A^T [(G g G^T) . (B^T d B)] A is linear in g, so dL/dg = G^T [(B^T d B) . (A dy A^T)] G,
// summed over tiles (every output in exactly one tile: exact in exact arithmetic). The two new transforms
// are the transposes of the output and weight transforms.

// out[xi] = (A dy)[xi] for kTileOut<R> values dy at stride is, six results at stride os; L lanes each.
template <typename T, int L, int R>
inline void grad_output_1d(const T* __restrict in, int64_t is, T* __restrict out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    if constexpr (R == 3) {
      const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l];
      const T s02 = m0 + m2, s13 = m1 + m3, a = m0 + T(4) * m2, b = T(2) * m1 + T(8) * m3;
      out[l] = m0;
      out[os + l] = s02 + s13;
      out[2 * os + l] = s02 - s13;
      out[3 * os + l] = a + b;
      out[4 * os + l] = a - b;
      out[5 * os + l] = m3;
    } else {
      const T m0 = in[l], m1 = in[is + l];
      out[l] = m0;
      out[os + l] = m0 + m1;
      out[2 * os + l] = m0 - m1;
      out[3 * os + l] = m0 + T(2) * m1;
      out[4 * os + l] = m0 - T(2) * m1;
      out[5 * os + l] = m1;
    }
  }
}

// U = A dy A^T for an m x m tile dy[(r*m + c)*L + lane] (m = kTileOut<R>); point (i, j) to
// U[(i*6 + j)*point_stride + lane]. tmp: 6*m*L scratch.
template <typename T, int R>
inline void grad_output_tile_transform(const T* dy, T* tmp, T* U, int64_t point_stride) {
  constexpr int L = kLanes<T>, m = kTileOut<R>;
  for (int c = 0; c < m; ++c) grad_output_1d<T, L, R>(dy + c * L, m * L, tmp + c * L, m * L);
  for (int i = 0; i < kTileIn; ++i)
    grad_output_1d<T, L, R>(tmp + i * m * L, L, U + i * kTileIn * point_stride, point_stride);
}

// out[e] = (G^T m)[e] for six values m at stride is, R results at stride os; L lanes each.
template <typename T, int L, int R>
inline void weight_grad_1d(const T* __restrict in, int64_t is, T* __restrict out, int64_t os) {
#pragma omp simd
  for (int l = 0; l < L; ++l) {
    const T m0 = in[l], m1 = in[is + l], m2 = in[2 * is + l], m3 = in[3 * is + l], m4 = in[4 * is + l],
            m5 = in[5 * is + l];
    const T s12 = m1 + m2, s34 = m3 + m4, d21 = m2 - m1, d34 = m3 - m4;
    out[l] = m0 * T(0.25) - s12 * T(1.0 / 6) + s34 * T(1.0 / 24);  // G's first two columns: the same for both
    out[os + l] = d21 * T(1.0 / 6) + d34 * T(1.0 / 12);
    if constexpr (R == 3) {
      out[2 * os + l] = (s34 - s12) * T(1.0 / 6) + m5;
    } else {
      out[2 * os + l] = (s34 - s12) * T(1.0 / 6);
      out[3 * os + l] = d21 * T(1.0 / 6) + d34 * T(1.0 / 3);
      out[4 * os + l] = s34 * T(2.0 / 3) - s12 * T(1.0 / 6) + m5;
    }
  }
}

// g = G^T M G for the 36 points M[xi*point_stride + lane]; g[e*L + lane] (e = R*row + col). tmp: 6*R*L scratch.
template <typename T, int R>
inline void weight_grad_tile_transform(const T* M, int64_t point_stride, T* tmp, T* g) {
  constexpr int L = kLanes<T>;
  for (int j = 0; j < kTileIn; ++j)
    weight_grad_1d<T, L, R>(M + j * point_stride, kTileIn * point_stride, tmp + j * L, kTileIn * L);
  for (int r = 0; r < R; ++r) weight_grad_1d<T, L, R>(tmp + r * kTileIn * L, L, g + r * R * L, L);
}

}  // namespace cpu
}  // namespace fastconv
