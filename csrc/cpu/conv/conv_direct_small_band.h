// Shared pieces of the direct kernels for few input channels (conv_direct_small.cpp forward,
// conv_direct_small_weight.cpp weight gradient): 64-byte vector type, the broadcast FMA, the band
// geometry and the padded, column-phase-split copy of a band of input rows (see conv_direct_small.cpp).
// Internal to those two files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "../../common/conv_params.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fastconv {
namespace cpu {
namespace small_direct {

template <typename T>
struct Simd {
  static constexpr int kLanes = 64 / int(sizeof(T));
  typedef T Vec __attribute__((vector_size(64)));
};

// Whether the direct few-channel kernels run in this library: they are written for AVX-512 (16-lane blocks
// of 64-byte GCC vectors); without it those vectors compile to scalar code (MNIST's 1->16 5x5 forward took
// 12 ms in the avx2 library, 0.2 ms in the avx512 one) and im2col + GEMM takes their shapes.
#if defined(__AVX512F__)
inline constexpr bool kDirectSmallKernels = true;
#else
inline constexpr bool kDirectSmallKernels = false;
#endif

#if defined(__AVX512F__)
inline constexpr int kMaxAcc = 24;  // of 32 registers: accumulators + NV input vectors + spare
#else
inline constexpr int kMaxAcc = 6;   // a 64-byte vector takes two of the 16 AVX2 registers
#endif

// acc + w * x with w broadcast. With AVX-512 the broadcast is folded into the FMA as a memory operand
// ({1to16}), so a tap costs one input load per vector and no separate broadcasts (the compiler otherwise
// keeps the weight in a register and re-loads the input vector for every FMA: load-port bound).
// (By reference: 64-byte vectors passed by value change the ABI without AVX-512, -Wpsabi.)
template <typename V>
inline void fma_bcast(const float* w, const V& x, V& acc) {
#if defined(__AVX512F__)
  acc = (V)_mm512_fmadd_ps(_mm512_set1_ps(*w), (__m512)x, (__m512)acc);
#else
  acc += *w * x;
#endif
}
template <typename V>
inline void fma_bcast(const double* w, const V& x, V& acc) {
#if defined(__AVX512F__)
  acc = (V)_mm512_fmadd_pd(_mm512_set1_pd(*w), (__m512d)x, (__m512d)acc);
#else
  acc += *w * x;
#endif
}

// Output-channel block sizes the kernel is instantiated for.
inline constexpr int kBlockSizes[] = {1, 2, 3, 4, 6, 8, 12, 16, 24};

struct Geometry {
  int64_t Cg, Kg, lanes;
  int64_t NV, KB, kblocks;  // vectors per register block, output channels per register block, blocks per group
  bool row_pairs;           // narrow rows (OW <= lanes): the NV = 2 vectors are two output rows, not columns
  bool kvec = false;        // forward only: vectors run over output channels (KB = NV * lanes), P pixels
  int64_t P = 0;            //   of one row in registers (see conv_direct_small.cpp)
  int64_t OWv;              // OW rounded up to whole NV*lanes blocks
  int64_t PW;               // buffered elements per phase of a row
  int64_t row_len;          // stride_w * PW
  int64_t band_rows, bands, buf_rows;  // output rows per item, items per (image, group), buffered rows per item
};

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Buffered column j of every row (phase j / PW, element j % PW) reads input column colmap[j] (-1: zero).
// interior[ph] = [lo, hi): the elements of phase ph whose input column is ph + e*sw - pad_l itself.
struct ColumnMap {
  std::vector<int64_t> col;
  std::vector<std::pair<int64_t, int64_t>> interior;
};

inline ColumnMap make_column_map(const ConvParams& p, const Geometry& g) {
  ColumnMap m;
  m.col.resize(g.row_len);
  m.interior.resize(p.stride_w);
  const int64_t padded_w = p.W + p.pad_l + p.pad_r;
  for (int64_t ph = 0; ph < p.stride_w; ++ph) {
    int64_t lo = g.PW, hi = 0;
    for (int64_t e = 0; e < g.PW; ++e) {
      const int64_t q = ph + e * p.stride_w;  // padded column
      m.col[ph * g.PW + e] = q < padded_w ? remap_index(q - p.pad_l, p.W, p.mode) : -1;
      if (q - p.pad_l >= 0 && q - p.pad_l < p.W) lo = std::min(lo, e), hi = std::max(hi, e + 1);
    }
    m.interior[ph] = {lo, std::max(lo, hi)};
  }
  return m;
}

// Copies the buffered rows of output rows [oh0, oh1) of one (image, group): buf is (Cg, buf_rows, row_len).
template <typename T>
void fill_band(const ConvParams& p, const Geometry& g, const ColumnMap& m, const T* x, int64_t oh0, int64_t oh1,
               T* buf) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t es = nhwc ? p.C : 1, cs = nhwc ? 1 : p.H * p.W, rs = nhwc ? p.W * p.C : p.W;
  const int64_t rows = band_input_rows(p, oh1 - oh0);
  const int64_t padded_h = p.H + p.pad_t + p.pad_b;
  for (int64_t c = 0; c < g.Cg; ++c)
    for (int64_t i = 0; i < rows; ++i) {
      T* dst = buf + (c * g.buf_rows + i) * g.row_len;
      const int64_t hp = oh0 * p.stride_h + i;
      const int64_t ih = hp < padded_h ? remap_index(hp - p.pad_t, p.H, p.mode) : -1;
      if (ih < 0) {
        std::fill(dst, dst + g.row_len, T(0));
        continue;
      }
      const T* src = x + c * cs + ih * rs;
      for (int64_t ph = 0; ph < p.stride_w; ++ph) {
        T* d = dst + ph * g.PW;
        const int64_t* cm = m.col.data() + ph * g.PW;
        const auto [lo, hi] = m.interior[ph];
        for (int64_t e = 0; e < lo; ++e) d[e] = cm[e] >= 0 ? src[cm[e] * es] : T(0);
        if (p.stride_w == 1 && es == 1) {
          // (an inlined copy: rows are short, a libc call per row costs as much as the copy)
          const T* __restrict s0 = src + (lo - p.pad_l);
          T* __restrict d0 = d + lo;
          for (int64_t e = 0; e < hi - lo; ++e) d0[e] = s0[e];
        } else {
          const T* s0 = src + (ph - p.pad_l) * es;
          const int64_t step = p.stride_w * es;
          for (int64_t e = lo; e < hi; ++e) d[e] = s0[e * step];
        }
        for (int64_t e = hi; e < g.PW; ++e) d[e] = cm[e] >= 0 ? src[cm[e] * es] : T(0);
      }
    }
}

}  // namespace small_direct
}  // namespace cpu
}  // namespace fastconv
