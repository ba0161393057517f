// The kernel pieces shared by the small-group passes (conv_small_group.cpp: forward and weight gradient;
// conv_small_group_input.cpp: input gradient). See conv_small_group.h for the shapes they take.
//
// A vector holds L output channels: L / cg whole groups (cg channels per group in and
// out). Output lane l needs, for each input channel c of its group, the input at lane (l & ~(cg-1)) + c of the same
// channel vector: out[l] = sum over d < cg of rot_d(x)[l] * w[l][(l % cg + d) % cg], where rot_d rotates the lanes
// by d inside each group. Rotating x costs cg - 1 shuffles per input vector and tap row. Instead each d keeps
// accumulators of its own on the unrotated input, acc_d += x * u_d with u_d = rot_d^-1 of that weight, and the output
// is sum_d rot_d(acc_d): cg - 1 shuffles per output vector, after all its taps, and an inner loop of FMAs only (on
// one core, data in L1: 86-90 GFLOP/s, 75-78% of peak). With one group per vector (cg == L) the input values are
// broadcast from memory instead (acc += broadcast(x[c]) * w[.][c]). As in the depthwise kernel
// (conv_depthwise_nhwc.cpp) each input column of a row is loaded once and feeds the 1-3 output pixels that read it.
// Each work item (image, channel vector, band of output rows) copies its band's input of one channel vector to a
// contiguous buffer first (copy_band).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "../../common/conv_params.h"
#include "../cpu_tuning.h"  // nontemporal_stores
#include "../gemm/gemm_microkernel.h"  // Zmm<T>
#include "../transpose.h"
#include "column_feed.h"

namespace fastconv {
namespace cpu {
namespace small_group {

constexpr int kWidth = 3;  // kernel width

// Whether the kernels take p's shape (either layout, any pass; see conv_small_group.h).
inline bool shape_applies(const ConvParams& p, int64_t elem_size) {
#if defined(__AVX512F__)
  const int64_t L = 64 / elem_size, cg = p.C_per_group();
  return p.mode == PaddingMode::Zeros && p.groups > 1 && cg >= 2 && cg <= L &&
         L % cg == 0 && p.K_per_group() == cg && p.groups % (L / cg) == 0 && p.S == kWidth && p.dil_w == 1 &&
         (p.stride_w == 1 || p.stride_w == 2) && p.N > 0 && p.OH > 0 && p.OW > 0 && p.H > 0 && p.W > 0;
#else
  (void)p, (void)elem_size;
  return false;
#endif
}

// Bands of output rows: a band's buffer (its input rows, in_rows(rows) of buf_row_bytes: one channel vector, zero
// columns of padding) within kBandBytes, which keeps the 3-9 rows an output row reads in L1 (ResNeXt's 56-wide rows:
// 3.6 KB each); and bands short enough that the items (image, channel vector, band) give every thread 4 or more.
constexpr int64_t kBandBytes = 48 << 10;

template <class InputRows>
int64_t band_rows(const ConvParams& q, int64_t out_rows, int64_t buf_row_bytes, int64_t vectors, InputRows in_rows) {
  int64_t rows = out_rows;
  while (rows > 1 && in_rows(rows) * buf_row_bytes > kBandBytes) rows = (rows + 1) / 2;
  while (rows > 1 && q.N * vectors * ((out_rows + rows - 1) / rows) < 4 * q.num_threads) rows = (rows + 1) / 2;
  return rows;
}

// The weight for the kernels, wr[((r*ks + s)*cg + d)*K + m] for lane (channel) m: u_d[m] = wt(l, m % cg, r, s),
// the weight that input channel m's product feeds into output channel l = (m & ~(cg-1)) + (m % cg - d) mod cg (the
// lane rot_d later brings it to); for one group per vector, wt(m, d, r, s). wt(k, c, r, s): output channel k, its
// group's input channel c, kernel row r, tap s < ks of the kernel the pass runs (the forward's 3 columns, or the
// input gradient's 1-3 taps of one output phase).
// (Group by group, lane by lane, so that no index needs a division by the runtime cg.)
template <typename T, class Weight>
void prepare_weight(int64_t R, int64_t ks, int64_t cg, int64_t K, bool rotated, Weight wt, T* wr) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t s = 0; s < ks; ++s)
      for (int64_t d = 0; d < cg; ++d) {
        T* dst = wr + ((r * ks + s) * cg + d) * K;
        for (int64_t g0 = 0; g0 < K; g0 += cg)
          for (int64_t l = 0; l < cg; ++l)
            dst[g0 + l] = rotated ? wt(g0 + ((l - d) & (cg - 1)), l, r, s) : wt(g0 + l, d, r, s);
      }
}

#if defined(__AVX512F__)
// Lane l of x moved to lane (l & ~(CG-1)) + ((l + D) % CG)'s value: x's lanes rotated by D inside each group of CG.
template <typename T, int CG, int D>
inline typename Zmm<T>::V rotate(typename Zmm<T>::V x) {
  constexpr auto src = [](int l) { return (l & ~(CG - 1)) + ((l + D) & (CG - 1)); };
  if constexpr (D == 0) {
    return x;
  } else if constexpr (std::is_same_v<T, float>) {
    if constexpr (CG <= 4) {  // inside each 128-bit lane (vshufps of x with itself, an immediate permute)
      constexpr int kImm = src(0) | src(1) << 2 | src(2) << 4 | src(3) << 6;  // (a constant unoptimised builds see)
      return _mm512_shuffle_ps(x, x, kImm);
    } else {
      const __m512i idx = _mm512_setr_epi32(src(0), src(1), src(2), src(3), src(4), src(5), src(6), src(7), src(8),
                                            src(9), src(10), src(11), src(12), src(13), src(14), src(15));
      return _mm512_mask_permutexvar_ps(x, __mmask16(0xFFFF), idx, x);  // (the unmasked form warns in GCC 12)
    }
  } else {
    if constexpr (CG == 2) {
      return _mm512_shuffle_pd(x, x, 0x55);  // the two doubles of each 128-bit lane swapped
    } else {
      const __m512i idx = _mm512_setr_epi64(src(0), src(1), src(2), src(3), src(4), src(5), src(6), src(7));
      return _mm512_mask_permutexvar_pd(x, __mmask8(0xFF), idx, x);
    }
  }
}

// rotate<T, CG, d> for a d that is a constant once the caller's loop is unrolled (a lambda over an index sequence
// instead took the accumulators' address, and the compiler kept them in memory).
template <typename T, int CG>
inline typename Zmm<T>::V rotate_by(typename Zmm<T>::V x, int d) {
  static_assert(CG <= 8, "steps 0..7");
  switch (d) {
    case 0: return x;
    case 1: return rotate<T, CG, 1 % CG>(x);
    case 2: return rotate<T, CG, 2 % CG>(x);
    case 3: return rotate<T, CG, 3 % CG>(x);
    case 4: return rotate<T, CG, 4 % CG>(x);
    case 5: return rotate<T, CG, 5 % CG>(x);
    case 6: return rotate<T, CG, 6 % CG>(x);
    default: return rotate<T, CG, 7 % CG>(x);
  }
}

// The steps [D0, D0 + kSteps) (all 4 for one group per vector) of NP output pixels of one output row, for the
// channel vector at k0, from a band buffer (see forward_rows): xs is the buffer at the pixels' first column of row 0
// (columns L values apart, rows row_stride apart), br[r] the buffer row of kernel row r (< 0: in the padding), w_k0
// the prepared weight (KS taps per kernel row) at k0; pixel i reads columns i * STRIDE + s, s < KS. kPartial: only np < NP pixels exist (columns past theirs are not read). The steps' sum
// is added to sum (NP vectors), then the next steps'.
template <typename T, int KS, int STRIDE, int NP, int CG, int kSteps, int D0, bool kPartial>
inline void add_steps(const T* xs, int64_t row_stride, const int64_t* br, int64_t R, const T* w_k0, int64_t K,
                      int64_t np, T* __restrict sum) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int L = Z::L, DC = CG == L ? 4 : kSteps, kCols = (NP - 1) * STRIDE + KS;
  const int64_t cols = (np - 1) * STRIDE + KS;
  V acc[DC][NP];
#pragma GCC unroll 4
  for (int dd = 0; dd < DC; ++dd)
#pragma GCC unroll 16
    for (int i = 0; i < NP; ++i) acc[dd][i] = Z::zero();
  for (int64_t r = 0; r < R; ++r) {
    if (br[r] < 0) continue;
    const T* xr = xs + br[r] * row_stride;
    const T* wr = w_k0 + r * KS * CG * K;
    V w[KS * DC];  // w[s*DC + dd]: step D0 + dd of tap s
#pragma GCC unroll 3
    for (int s = 0; s < KS; ++s)
#pragma GCC unroll 4
      for (int dd = 0; dd < DC; ++dd) w[s * DC + dd] = Z::load(wr + (s * CG + D0 + dd) * K);
#pragma GCC unroll 64
    for (int j = 0; j < kCols; ++j) {
      if (kPartial && j >= cols) break;
      if constexpr (CG == L) {  // one group per vector: its input channels broadcast
#pragma GCC unroll 4
        for (int dd = 0; dd < DC; ++dd)
          feed_column<T, KS, STRIDE, NP, DC>(j, Z::set1(xr[j * L + D0 + dd]), w + dd, acc[0]);
      } else {
        const V xv = Z::load(xr + j * L);
#pragma GCC unroll 4
        for (int dd = 0; dd < DC; ++dd) feed_column<T, KS, STRIDE, NP, DC>(j, xv, w + dd, acc[dd]);
      }
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < NP; ++i) {
    V v = Z::load(sum + i * L);
    if constexpr (CG == L) {
      v = Z::add(v, acc[0][i]);
    } else {
#pragma GCC unroll 4
      for (int dd = 0; dd < DC; ++dd) v = Z::add(v, rotate_by<T, CG>(acc[dd][i], D0 + dd));
    }
    Z::store(sum + i * L, v);
  }
  if constexpr (D0 + DC < CG)
    add_steps<T, KS, STRIDE, NP, CG, kSteps, D0 + DC, kPartial>(xs, row_stride, br, R, w_k0, K, np, sum);
}

// np <= NP output pixels of one output row for the channel vector at k0 (add_steps), written to out (pixels K
// apart) with the bias: as non-temporal stores when `stream` (each output vector is a whole cache line, written
// once: without them every store first read its line; ResNeXt-like 64- and 128-channel layers at 56x56 1.06-1.56x
// slower, A/B in one process).
template <typename T, int KS, int STRIDE, int NP, int CG, int kSteps, bool kPartial>
void row_pixels(const T* xs, int64_t row_stride, const int64_t* br, int64_t R, const T* w_k0, int64_t K,
                const T* bias_k0, int64_t np, T* __restrict out, int64_t out_step, bool stream) {
  using Z = Zmm<T>;
  constexpr int L = Z::L;
  alignas(64) T sum[NP * L];
  const typename Z::V b = bias_k0 ? Z::load(bias_k0) : Z::zero();
#pragma GCC unroll 16
  for (int i = 0; i < NP; ++i) Z::store(sum + i * L, b);
  add_steps<T, KS, STRIDE, NP, CG, kSteps, 0, kPartial>(xs, row_stride, br, R, w_k0, K, np, sum);
#pragma GCC unroll 16
  for (int i = 0; i < NP; ++i) {
    if (kPartial && i >= np) break;
    if (stream)
      Z::stream(out + i * out_step, Z::load(sum + i * L));
    else
      Z::store(out + i * out_step, Z::load(sum + i * L));
  }
}

// dst[j * d_rs + i] = src[i * s_rs + j] for i < rows, j < cols (NCHW rows of a channel vector to (pixel, L) and
// back): float by 16 x 16 register transposes, masked at the edges (transpose_serial leaves the columns past the last
// 16 to scalar code: a 14-wide row entirely); double element by element.
template <typename T>
void transpose_rows(int64_t rows, int64_t cols, const T* src, int64_t s_rs, T* dst, int64_t d_rs) {
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t i = 0; i < rows; i += 16)
      for (int64_t j = 0; j < cols; j += 16) {
        const int64_t ri = std::min<int64_t>(16, rows - i), cj = std::min<int64_t>(16, cols - j);
        if (ri == 16 && cj == 16)
          transpose_block16(src + i * s_rs + j, s_rs, dst + j * d_rs + i, d_rs);
        else
          transpose_block16_masked(src + i * s_rs + j, s_rs, dst + j * d_rs + i, d_rs, int(ri), int(cj));
      }
  } else {
    transpose_serial(rows, cols, src, s_rs, int64_t(1), dst, d_rs);
  }
}

// Input rows [ih0, ih0 + nrows) of image n that lie inside it, channels [k0, k0 + L), as (row, column, L) in buf:
// wb columns from -pad_l, zeros where they fall in the padding. Rows outside the image are left as they are (the
// kernels skip them). NCHW rows are transposed on the way (16 x 16 register transposes for float).
template <typename T>
void copy_band(const ConvParams& q, const T* x, int64_t n, int64_t k0, int64_t ih0, int64_t nrows, int64_t wb,
               T* buf) {
  using Z = Zmm<T>;
  constexpr int L = Z::L;
  const int64_t lo = std::clamp<int64_t>(q.pad_l, 0, wb), hi = std::clamp<int64_t>(q.pad_l + q.W, lo, wb);
  for (int64_t i = std::max<int64_t>(0, -ih0); i < nrows && ih0 + i < q.H; ++i) {
    T* dst = buf + i * wb * L;
    for (int64_t c = 0; c < lo; ++c) Z::store(dst + c * L, Z::zero());
    for (int64_t c = hi; c < wb; ++c) Z::store(dst + c * L, Z::zero());
    if (q.layout == Layout::NHWC) {
      const T* src = x + ((n * q.H + ih0 + i) * q.W - q.pad_l) * q.C + k0;
      for (int64_t c = lo; c < hi; ++c) Z::store(dst + c * L, Z::load(src + c * q.C));
    } else {
      const T* src = x + ((n * q.C + k0) * q.H + ih0 + i) * q.W - q.pad_l;
      transpose_rows(int64_t(L), hi - lo, src + lo, q.H * q.W, dst + lo * L, int64_t(L));
    }
  }
}
// Where a pass's output rows (of `channels` channels, H x W) go: channels_last ones straight into the result, as
// non-temporal stores where every output vector is a whole, aligned cache line (see row_pixels); NCHW ones as a row
// of (pixel, L) in the thread's rowbuf, then transposed into the L planes' rows (finish).
template <typename T>
struct RowOutput {
  static constexpr int L = Zmm<T>::L;
  T* y;
  int64_t channels, H, W;
  bool nhwc, stream;
  int64_t step;  // between output pixels

  RowOutput(Layout layout, T* y_, int64_t channels_, int64_t H_, int64_t W_)
      : y(y_), channels(channels_), H(H_), W(W_), nhwc(layout == Layout::NHWC),
        stream(nhwc && nontemporal_stores() && reinterpret_cast<uintptr_t>(y_) % 64 == 0), step(nhwc ? channels_ : L) {}
  // output row h of image n, channels [k0, k0 + L), pixel 0
  T* row(int64_t n, int64_t h, int64_t k0, T* rowbuf) const { return nhwc ? y + (n * H + h) * W * channels + k0 : rowbuf; }
  void finish(int64_t n, int64_t h, int64_t k0, const T* rowbuf) const {
    if (!nhwc) transpose_rows(W, int64_t(L), rowbuf, int64_t(L), y + ((n * channels + k0) * H + h) * W, H * W);
  }
  // the non-temporal stores ordered before whatever reads the result next (each thread, after its rows)
  void fence() const {
    if (stream) _mm_sfence();
  }
};
#endif  // __AVX512F__

}  // namespace small_group
}  // namespace cpu
}  // namespace fastconv
