// See conv_small_group.h. A vector holds L output channels: L / cg whole groups (cg channels per group in and
// out). Output lane l needs, for each input channel c of its group, the input at lane (l & ~(cg-1)) + c of the same
// channel vector: out[l] = sum over d < cg of rot_d(x)[l] * w[l][(l % cg + d) % cg], where rot_d rotates the lanes
// by d inside each group. Rotating x costs cg - 1 shuffles per input vector and tap row. Instead each d keeps
// accumulators of its own on the unrotated input, acc_d += x * u_d with u_d = rot_d^-1 of that weight, and the output
// is sum_d rot_d(acc_d): cg - 1 shuffles per output vector, after all its taps, and an inner loop of FMAs only (on
// one core, data in L1: 86-90 GFLOP/s, 75-78% of peak). With one group per vector (cg == L) the input values are
// broadcast from memory instead (acc += broadcast(x[c]) * w[.][c]). As in the depthwise kernel
// (conv_depthwise_nhwc.cpp) each input column of a row is loaded once and feeds the 1-3 output pixels that read it.
// Work items are (image, channel vector, band of rows); each copies its band's input of one channel vector to a
// contiguous buffer first (forward_rows).
#include "conv_small_group.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../cpu_tuning.h"  // nontemporal_stores
#include "../gemm/gemm_microkernel.h"  // Zmm<T>
#include "../gemm/gemm_scratch.h"
#include "../transpose.h"
#include "column_feed.h"

namespace fastconv {
namespace cpu {
namespace {

constexpr int kWidth = 3;  // kernel width

bool shape_applies(const ConvParams& p, int64_t elem_size) {
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

// The weight for the kernels, wr[((r*kWidth + s)*cg + d)*K + m] for lane (channel) m: u_d[m] = wt(l, m % cg, r, s),
// the weight that input channel m's product feeds into output channel l = (m & ~(cg-1)) + (m % cg - d) mod cg (the
// lane rot_d later brings it to); for one group per vector, wt(m, d, r, s). wt(k, c, r, s): output channel k, its
// group's input channel c.
template <typename T, class Weight>
const T* prepare_weight(const ConvParams& q, bool rotated, Weight wt) {
  const int64_t cg = q.C_per_group(), K = q.K;
  T* wr = thread_scratch<T>(kScratchWeight, size_t(q.R * kWidth * cg * K));
  for (int64_t r = 0; r < q.R; ++r)
    for (int64_t s = 0; s < kWidth; ++s)
      for (int64_t d = 0; d < cg; ++d)
        for (int64_t m = 0; m < K; ++m)
          wr[((r * kWidth + s) * cg + d) * K + m] =
              rotated ? wt(m / cg * cg + (m % cg - d + cg) % cg, m % cg, r, s) : wt(m, d, r, s);
  return wr;
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
// the prepared weight at k0. kPartial: only np < NP pixels exist (columns past theirs are not read). The steps' sum
// is added to sum (NP vectors), then the next steps'.
template <typename T, int STRIDE, int NP, int CG, int kSteps, int D0, bool kPartial>
inline void add_steps(const T* xs, int64_t row_stride, const int64_t* br, int64_t R, const T* w_k0, int64_t K,
                      int64_t np, T* __restrict sum) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int L = Z::L, DC = CG == L ? 4 : kSteps, kCols = (NP - 1) * STRIDE + kWidth;
  const int64_t cols = (np - 1) * STRIDE + kWidth;
  V acc[DC][NP];
#pragma GCC unroll 4
  for (int dd = 0; dd < DC; ++dd)
#pragma GCC unroll 16
    for (int i = 0; i < NP; ++i) acc[dd][i] = Z::zero();
  for (int64_t r = 0; r < R; ++r) {
    if (br[r] < 0) continue;
    const T* xr = xs + br[r] * row_stride;
    const T* wr = w_k0 + r * kWidth * CG * K;
    V w[kWidth * DC];  // w[s*DC + dd]: step D0 + dd of tap s
#pragma GCC unroll 3
    for (int s = 0; s < kWidth; ++s)
#pragma GCC unroll 4
      for (int dd = 0; dd < DC; ++dd) w[s * DC + dd] = Z::load(wr + (s * CG + D0 + dd) * K);
#pragma GCC unroll 64
    for (int j = 0; j < kCols; ++j) {
      if (kPartial && j >= cols) break;
      if constexpr (CG == L) {  // one group per vector: its input channels broadcast
#pragma GCC unroll 4
        for (int dd = 0; dd < DC; ++dd)
          feed_column<T, kWidth, STRIDE, NP, DC>(j, Z::set1(xr[j * L + D0 + dd]), w + dd, acc[0]);
      } else {
        const V xv = Z::load(xr + j * L);
#pragma GCC unroll 4
        for (int dd = 0; dd < DC; ++dd) feed_column<T, kWidth, STRIDE, NP, DC>(j, xv, w + dd, acc[dd]);
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
    add_steps<T, STRIDE, NP, CG, kSteps, D0 + DC, kPartial>(xs, row_stride, br, R, w_k0, K, np, sum);
}

// np <= NP output pixels of one output row for the channel vector at k0 (add_steps), written to out (pixels K
// apart) with the bias: as non-temporal stores when `stream` (each output vector is a whole cache line, written
// once: without them every store first read its line; ResNeXt-like 64- and 128-channel layers at 56x56 1.06-1.56x
// slower, A/B in one process).
template <typename T, int STRIDE, int NP, int CG, int kSteps, bool kPartial>
void row_pixels(const T* xs, int64_t row_stride, const int64_t* br, int64_t R, const T* w_k0, int64_t K,
                const T* bias_k0, int64_t np, T* __restrict out, int64_t out_step, bool stream) {
  using Z = Zmm<T>;
  constexpr int L = Z::L;
  alignas(64) T sum[NP * L];
  const typename Z::V b = bias_k0 ? Z::load(bias_k0) : Z::zero();
#pragma GCC unroll 16
  for (int i = 0; i < NP; ++i) Z::store(sum + i * L, b);
  add_steps<T, STRIDE, NP, CG, kSteps, 0, kPartial>(xs, row_stride, br, R, w_k0, K, np, sum);
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

// Output rows per band: its buffer (the band's input rows, one channel vector, zero columns of padding) within
// kBandBytes, which keeps the 3-9 rows a band's output row reads in L1 (ResNeXt's 56-wide rows: 3.6 KB each); and
// bands short enough that the items (image, channel vector, band) give every thread 4 or more.
constexpr int64_t kBandBytes = 48 << 10;

int64_t band_rows(const ConvParams& q, int64_t buf_row_bytes, int64_t vectors) {
  int64_t rows = q.OH;
  while (rows > 1 && band_input_rows(q, rows) * buf_row_bytes > kBandBytes) rows = (rows + 1) / 2;
  while (rows > 1 && q.N * vectors * ((q.OH + rows - 1) / rows) < 4 * q.num_threads) rows = (rows + 1) / 2;
  return rows;
}

// The forward q (channels_last, shape_applies) with the weight already prepared (prepare_weight). Items are
// (image, channel vector, band of output rows), handed out dynamically. An item first copies its band's input
// rows of its L channels into a buffer of (rows, columns, L), with the padding columns as zeros: the kernel then
// reads consecutive 64-byte vectors, where in place the columns of one channel vector lie C values apart (512 bytes
// at 128 channels: a band's rows of them spread over few L1 sets), and the padding needs no tests.
template <typename T, int STRIDE, int CG>
void forward_rows(const ConvParams& q, const T* x, const T* wr, const T* bias, T* y) {
  using Z = Zmm<T>;
  constexpr int L = Z::L;
  // Pixels per pass and group steps per pass (add_steps): their accumulators and 3 weights per step within the
  // 32 registers. On ResNeXt's layers (groups of 4 and 8) 4 pixels x 4 steps, 12 x 2 and 8 x 2 measured the same,
  // 24 x 1 1.2-1.7x slower.
  constexpr int kSteps = CG < 4 ? CG : 4, NP = CG == Z::L ? (STRIDE == 1 ? 14 : 8) : CG == 2 ? 8 : 4;
  const int64_t vectors = q.K / L, wb = (q.OW - 1) * STRIDE + kWidth;  // buffer columns
  const int64_t rows = band_rows(q, wb * L * int64_t(sizeof(T)), vectors), bands = (q.OH + rows - 1) / rows;
  const int64_t items = q.N * vectors * bands, in_rows = band_input_rows(q, rows);
  // channels_last writes y directly (non-temporal where every output vector is a whole, aligned cache line: see
  // row_pixels); NCHW a row of (pixel, L) in rowbuf, then transposed into L planes' rows
  const bool nhwc = q.layout == Layout::NHWC;
  const bool stream = nhwc && nontemporal_stores() && reinterpret_cast<uintptr_t>(y) % 64 == 0;
  const int64_t step = nhwc ? q.K : L;  // between output pixels
#pragma omp parallel num_threads(q.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> br(q.R);
    T* buf = thread_scratch<T>(kScratchCol, size_t(in_rows * wb * L));
    T* rowbuf = thread_scratch<T>(kScratchAcc, size_t(q.OW * L));  // (NCHW output rows)
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t band = item % bands, v = (item / bands) % vectors, n = item / (bands * vectors), k0 = v * L;
      const int64_t oh0 = band * rows, oh1 = std::min(q.OH, oh0 + rows), ih0 = oh0 * q.stride_h - q.pad_t;
      const int64_t nrows = band_input_rows(q, oh1 - oh0);
      const T* bk = bias ? bias + k0 : nullptr;
      copy_band(q, x, n, k0, ih0, nrows, wb, buf);
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        for (int64_t r = 0; r < q.R; ++r) {
          const int64_t ih = oh * q.stride_h - q.pad_t + r * q.dil_h;
          br[r] = ih >= 0 && ih < q.H ? ih - ih0 : -1;
        }
        T* yrow = nhwc ? y + (n * q.OH + oh) * q.OW * q.K + k0 : rowbuf;
        int64_t ow = 0;
        for (; ow + NP <= q.OW; ow += NP)
          row_pixels<T, STRIDE, NP, CG, kSteps, false>(buf + ow * STRIDE * L, wb * L, br.data(), q.R, wr + k0, q.K,
                                                       bk, NP, yrow + ow * step, step, stream);
        if (ow < q.OW)
          row_pixels<T, STRIDE, NP, CG, kSteps, true>(buf + ow * STRIDE * L, wb * L, br.data(), q.R, wr + k0, q.K,
                                                      bk, q.OW - ow, yrow + ow * step, step, stream);
        if (!nhwc)
          transpose_rows(q.OW, int64_t(L), rowbuf, int64_t(L), y + ((n * q.K + k0) * q.OH + oh) * q.OW, q.OH * q.OW);
      }
    }
    if (stream) _mm_sfence();  // the non-temporal stores ordered before whatever reads the output next
  }
}

template <typename T, int STRIDE>
void forward_any_group(const ConvParams& q, const T* x, const T* wr, const T* bias, T* y) {
  switch (q.C_per_group()) {
    case 2: return forward_rows<T, STRIDE, 2>(q, x, wr, bias, y);
    case 4: return forward_rows<T, STRIDE, 4>(q, x, wr, bias, y);
    case 8: return forward_rows<T, STRIDE, 8>(q, x, wr, bias, y);
    default:
      if constexpr (std::is_same_v<T, float>) return forward_rows<T, STRIDE, 16>(q, x, wr, bias, y);
  }
}

// Weight gradient. For output channel vector k0 (lanes l), step d and tap (r, s), the sum over output pixels p of
// gy_p[l] * x_q[(l & ~(cg-1)) + (l % cg + d) % cg] (q: the input pixel tap (r, s) of p reads) is rot_d of
// acc = sum_p rot_-d(gy_p) * x_q: grad_output is rotated once per pixel and step and serves the 3 taps of a kernel
// row. With one group per vector the input values are broadcast instead: acc_c = sum_p gy_p * x_q[c].
// The accumulators, (r, s, step) vectors, live in a small array (L1) and a kernel row's 3 x kSteps of them in
// registers while a row of pixels goes by. Threads take whole channel vectors: each gradient element is summed by one
// thread in a fixed order (the same result for any thread count), and nothing is reduced afterwards.
template <typename T, int CG, int D0, int DC>
inline void weight_row_steps(const T* gyr, const T* xr, int64_t ow_n, int64_t stride_w, T* acc) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int L = Z::L;
  V a[kWidth][DC];
#pragma GCC unroll 3
  for (int s = 0; s < kWidth; ++s)
#pragma GCC unroll 4
    for (int dd = 0; dd < DC; ++dd) a[s][dd] = Z::load(acc + (s * CG + D0 + dd) * L);
  for (int64_t ow = 0; ow < ow_n; ++ow) {
    const V g = Z::load(gyr + ow * L);
    const T* xq = xr + ow * stride_w * L;
    if constexpr (CG == L) {
#pragma GCC unroll 3
      for (int s = 0; s < kWidth; ++s)
#pragma GCC unroll 4
        for (int dd = 0; dd < DC; ++dd) a[s][dd] = Z::fma(g, Z::set1(xq[s * L + D0 + dd]), a[s][dd]);
    } else {
      V gr[DC];
#pragma GCC unroll 4
      for (int dd = 0; dd < DC; ++dd) gr[dd] = rotate_by<T, CG>(g, (CG - D0 - dd) % CG);
#pragma GCC unroll 3
      for (int s = 0; s < kWidth; ++s) {
        const V xv = Z::load(xq + s * L);
#pragma GCC unroll 4
        for (int dd = 0; dd < DC; ++dd) a[s][dd] = Z::fma(gr[dd], xv, a[s][dd]);
      }
    }
  }
#pragma GCC unroll 3
  for (int s = 0; s < kWidth; ++s)
#pragma GCC unroll 4
    for (int dd = 0; dd < DC; ++dd) Z::store(acc + (s * CG + D0 + dd) * L, a[s][dd]);
  if constexpr (D0 + DC < CG) weight_row_steps<T, CG, D0 + DC, DC>(gyr, xr, ow_n, stride_w, acc);
}

template <typename T, int CG>
void weight_gradient(const ConvParams& p, const T* x, const T* gy, T* gw) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int L = Z::L, DC = CG < 4 ? CG : 4;
  const int64_t vectors = p.K / L, wb = (p.OW - 1) * p.stride_w + kWidth, RS = p.R * kWidth;
  const int64_t rows = std::max<int64_t>(1, std::min(p.OH, kBandBytes / std::max<int64_t>(1, (wb + p.OW) * L *
                                                                                             int64_t(sizeof(T))))),
                bands = (p.OH + rows - 1) / rows, in_rows = band_input_rows(p, rows);
  const int nt = static_cast<int>(std::min<int64_t>(p.num_threads, vectors));
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    T* buf = thread_scratch<T>(kScratchCol, size_t(in_rows * wb * L));
    T* gyb = thread_scratch<T>(kScratchAcc, size_t(rows * p.OW * L));
    std::vector<T> acc(size_t(RS * CG * L));  // acc[((r*3 + s)*CG + d)*L + l]
#pragma omp for schedule(dynamic)
    for (int64_t v = 0; v < vectors; ++v) {
      const int64_t k0 = v * L;
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t band = 0; band < bands; ++band) {
          const int64_t oh0 = band * rows, oh1 = std::min(p.OH, oh0 + rows), ih0 = oh0 * p.stride_h - p.pad_t;
          copy_band(p, x, n, k0, ih0, band_input_rows(p, oh1 - oh0), wb, buf);
          for (int64_t oh = oh0; oh < oh1; ++oh) {  // grad_output's rows of the band, (row, pixel, L)
            T* dst = gyb + (oh - oh0) * p.OW * L;
            if (p.layout == Layout::NHWC) {
              const T* src = gy + ((n * p.OH + oh) * p.OW) * p.K + k0;
              for (int64_t ow = 0; ow < p.OW; ++ow) Z::store(dst + ow * L, Z::load(src + ow * p.K));
            } else {
              transpose_rows(int64_t(L), p.OW, gy + ((n * p.K + k0) * p.OH + oh) * p.OW, p.OH * p.OW, dst, int64_t(L));
            }
          }
          for (int64_t oh = oh0; oh < oh1; ++oh)
            for (int64_t r = 0; r < p.R; ++r) {
              const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
              if (ih < 0 || ih >= p.H) continue;
              weight_row_steps<T, CG, 0, DC>(gyb + (oh - oh0) * p.OW * L, buf + (ih - ih0) * wb * L, p.OW, p.stride_w,
                                             acc.data() + r * kWidth * CG * L);
            }
        }
      // acc[(r*3 + s)*CG + d] -> gw[k][c][r][s] (k = k0 + l, c its group's input channel)
      alignas(64) T lanes[L];
      for (int64_t rs = 0; rs < RS; ++rs)
        for (int d = 0; d < CG; ++d) {
          V a = Z::load(acc.data() + (rs * CG + d) * L);
          if constexpr (CG < L) a = rotate_by<T, CG>(a, d);
          Z::store(lanes, a);
          for (int l = 0; l < L; ++l) {
            const int64_t c = CG == L ? d : (l % CG + d) % CG;
            gw[((k0 + l) * CG + c) * RS + rs] = lanes[l];
          }
        }
    }
  }
}

template <typename T>
void run_forward(const ConvParams& q, const T* x, const T* wr, const T* bias, T* y) {
  if (q.stride_w == 1) return forward_any_group<T, 1>(q, x, wr, bias, y);
  forward_any_group<T, 2>(q, x, wr, bias, y);
}
#endif

}  // namespace

bool small_group_forward_applies(const ConvParams& p, int64_t elem_size) { return shape_applies(p, elem_size); }

bool small_group_backward_input_applies(const ConvParams& p, int64_t elem_size) {
  return p.stride_h == 1 && p.stride_w == 1 && shape_applies(p, elem_size);
}

template <typename T>
void small_group_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
#if defined(__AVX512F__)
  const int64_t cg = p.C_per_group(), RS = p.R * p.S;
  const T* wr = prepare_weight<T>(p, cg < Zmm<T>::L, [&](int64_t k, int64_t c, int64_t r, int64_t s) {
    return w[(k * cg + c) * RS + r * p.S + s];
  });
  run_forward(p, x, wr, bias, y);
#else
  (void)p, (void)x, (void)w, (void)bias, (void)y;
#endif
}

// grad_input[i] = sum over r of grad_output[i + pad_t - r*dil_h] * w[r] (and the same along the width): the forward
// of grad_output, whose channels are the K outputs, with the kernel flipped and each group's (cg x cg) weight
// transposed, padded by (R-1)*dil_h - pad_t rows and 2 - pad_l columns; rows and columns past grad_output are zero.
template <typename T>
void small_group_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx) {
#if defined(__AVX512F__)
  ConvParams q = p;
  q.C = p.K, q.K = p.C, q.H = p.OH, q.W = p.OW, q.OH = p.H, q.OW = p.W;
  q.pad_t = (p.R - 1) * p.dil_h - p.pad_t, q.pad_l = (p.S - 1) - p.pad_l;
  q.pad_b = q.pad_r = 0;  // (unused: the kernels test against the input's size)
  const int64_t cg = p.C_per_group(), RS = p.R * p.S;
  // q's output channel c (group g = c / cg) from its group's input channel kk: w[g*cg + kk][c % cg] flipped
  const T* wr = prepare_weight<T>(q, cg < Zmm<T>::L, [&](int64_t c, int64_t kk, int64_t r, int64_t s) {
    return w[((c / cg * cg + kk) * cg + c % cg) * RS + (p.R - 1 - r) * p.S + (p.S - 1 - s)];
  });
  run_forward(q, gy, wr, static_cast<const T*>(nullptr), gx);
#else
  (void)p, (void)gy, (void)w, (void)gx;
#endif
}

bool small_group_backward_weight_applies(const ConvParams& p, int64_t elem_size) { return shape_applies(p, elem_size); }

template <typename T>
void small_group_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw) {
#if defined(__AVX512F__)
  switch (p.C_per_group()) {
    case 2: return weight_gradient<T, 2>(p, x, gy, gw);
    case 4: return weight_gradient<T, 4>(p, x, gy, gw);
    case 8: return weight_gradient<T, 8>(p, x, gy, gw);
    default:
      if constexpr (std::is_same_v<T, float>) return weight_gradient<T, 16>(p, x, gy, gw);
  }
#else
  (void)p, (void)x, (void)gy, (void)gw;
#endif
}

template void small_group_forward<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void small_group_forward<double>(const ConvParams&, const double*, const double*, const double*,
                                               double*);
template void small_group_backward_input<float>(const ConvParams&, const float*, const float*, float*);
template void small_group_backward_input<double>(const ConvParams&, const double*, const double*, double*);
template void small_group_backward_weight<float>(const ConvParams&, const float*, const float*, float*);
template void small_group_backward_weight<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
