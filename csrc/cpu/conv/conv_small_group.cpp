// See conv_small_group.h; the kernels' scheme is in conv_small_group_kernel.h. The forward's work items are
// (image, channel vector, band of output rows); each copies its band's input of one channel vector to a contiguous
// buffer first (forward_rows).
#include "conv_small_group.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../gemm/gemm_scratch.h"
#include "conv_small_group_kernel.h"

namespace fastconv {
namespace cpu {
namespace {

using namespace small_group;

#if defined(__AVX512F__)
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
  const int64_t rows = band_rows(q, q.OH, wb * L * int64_t(sizeof(T)), vectors,
                                 [&](int64_t r) { return band_input_rows(q, r); });
  const int64_t bands = (q.OH + rows - 1) / rows, items = q.N * vectors * bands, in_rows = band_input_rows(q, rows);
  const RowOutput<T> out(q.layout, y, q.K, q.OH, q.OW);
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
        T* yrow = out.row(n, oh, k0, rowbuf);
        int64_t ow = 0;
        for (; ow + NP <= q.OW; ow += NP)
          row_pixels<T, kWidth, STRIDE, NP, CG, kSteps, false>(buf + ow * STRIDE * L, wb * L, br.data(), q.R, wr + k0,
                                                               q.K, bk, NP, yrow + ow * out.step, out.step, out.stream);
        if (ow < q.OW)
          row_pixels<T, kWidth, STRIDE, NP, CG, kSteps, true>(buf + ow * STRIDE * L, wb * L, br.data(), q.R, wr + k0,
                                                              q.K, bk, q.OW - ow, yrow + ow * out.step, out.step,
                                                              out.stream);
        out.finish(n, oh, k0, rowbuf);
      }
    }
    out.fence();
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

template <typename T>
void small_group_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
#if defined(__AVX512F__)
  const int64_t cg = p.C_per_group(), RS = p.R * p.S;
  T* wr = thread_scratch<T>(kScratchWeight, size_t(p.R * kWidth * cg * p.K));
  prepare_weight(p.R, kWidth, cg, p.K, cg < Zmm<T>::L,
                 [&](int64_t k, int64_t c, int64_t r, int64_t s) { return w[(k * cg + c) * RS + r * p.S + s]; }, wr);
  run_forward(p, x, wr, bias, y);
#else
  (void)p, (void)x, (void)w, (void)bias, (void)y;
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
template void small_group_backward_weight<float>(const ConvParams&, const float*, const float*, float*);
template void small_group_backward_weight<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
