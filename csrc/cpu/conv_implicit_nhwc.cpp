// NHWC input gradient as a "valid" correlation of the zero-padded grad_output with the flipped kernel:
//   gx[ih, iw, :] = sum_{r,s} gyp[ih + (R-1-r)*dh, iw + (S-1-s)*dw, :] x W_rs      (W_rs[k, c] = w[k, c, r, s])
// where gyp is gy with (R-1)*dh - pad_t zero rows on top and (S-1)*dw - pad_l zero columns on the left
// (stride 1). Each MR-pixel x NR-channel tile of gx runs the GEMM micro-kernel once per tap, reading gyp
// rows in place (row stride K) and accumulating into the tile, which stays in L1. Compared with
// GEMM + col2im this never writes or re-reads a column matrix and writes each gx element from registers.
// Threads take bands of gx rows dynamically; every row is owned by one item (race-free, deterministic).
#include "conv_implicit_nhwc.h"

#include <algorithm>
#include <cstring>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "gemm_microkernel.h"
#include "gemm_scratch.h"

namespace fastconv {
namespace cpu {

bool implicit_backward_input_applies(const ConvParams& p, int64_t elem_size) {
  constexpr int64_t MR = MicroKernel<float>::MR, NR = MicroKernel<float>::NR;
  return p.layout == Layout::NHWC && p.groups == 1 && p.R * p.S > 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.mode == PaddingMode::Zeros && p.pad_t <= (p.R - 1) * p.dil_h && p.pad_l <= (p.S - 1) * p.dil_w &&
         p.W >= MR &&  // narrower rows would leave most of each tile's rows idle
         p.R * p.S * p.K * NR * elem_size <= (512 << 10);  // one channel panel of all taps stays in L2
}

template <typename T>
void conv_backward_input_implicit_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx) {
  using MK = MicroKernel<T>;
  constexpr int64_t MR = MK::MR, NR = MK::NR, KC = 256;
  const int64_t K = p.K, C = p.C, RS = p.R * p.S;
  const int64_t top = (p.R - 1) * p.dil_h - p.pad_t, left = (p.S - 1) * p.dil_w - p.pad_l;
  const int64_t Wp = p.W + (p.S - 1) * p.dil_w, panels = (C + NR - 1) / NR;
  // bp[((rs*panels + j)*K + k)*NR + jj] = w[k, j*NR + jj, r, s], zero past C: the micro-kernel's B panels.
  T* bp = thread_scratch<T>(kScratchWeight, size_t(RS * panels * K * NR));
  for (int64_t rs = 0; rs < RS; ++rs)
    for (int64_t j = 0; j < panels; ++j)
      for (int64_t k = 0; k < K; ++k) {
        T* dst = bp + ((rs * panels + j) * K + k) * NR;
        for (int64_t jj = 0; jj < NR; ++jj) {
          const int64_t c = j * NR + jj;
          dst[jj] = c < C ? w[(k * C + c) * RS + rs] : T(0);
        }
      }
  // Items: bands of gx rows of one image. Each pads the gy rows its band reads (band + (R-1)*dh rows) into
  // its thread's scratch, so the pass is one parallel region with no barrier.
  // Bands of up to 8 rows, fewer when that leaves under 4 items per thread (the result does not depend on
  // the banding: every gx element sums the same terms in the same order).
  const int64_t band = std::clamp<int64_t>(p.N * p.H / (4 * int64_t(p.num_threads)), 1, std::min<int64_t>(p.H, 8));
  const int64_t bands = (p.H + band - 1) / band, items = p.N * bands;
  const int64_t halo = (p.R - 1) * p.dil_h;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    // gyp rows of the band, plus slack: a partial tile still reads MR rows of A.
    T* gyp = thread_scratch<T>(kScratchCol, size_t((band + halo) * Wp * K + MR * K));
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t n = item / bands, h0 = (item % bands) * band, h1 = std::min(p.H, h0 + band);
      const int64_t prow = h1 - h0 + halo;  // gyp row a holds padded row h0 + a, i.e. gy row h0 + a - top
      for (int64_t a = 0; a < prow; ++a) {
        T* dst = gyp + a * Wp * K;
        const int64_t oh = h0 + a - top;
        if (oh < 0 || oh >= p.OH) {
          std::fill(dst, dst + Wp * K, T(0));
          continue;
        }
        const int64_t b1 = std::min(Wp, left + p.OW);  // gyp columns [left, b1) hold gy columns [0, b1 - left)
        std::fill(dst, dst + left * K, T(0));
        std::memcpy(dst + left * K, gy + (n * p.OH + oh) * p.OW * K, sizeof(T) * size_t((b1 - left) * K));
        std::fill(dst + b1 * K, dst + Wp * K, T(0));
      }
      std::fill(gyp + prow * Wp * K, gyp + prow * Wp * K + MR * K, T(0));
      for (int64_t ih = h0; ih < h1; ++ih)
        for (int64_t j = 0; j < panels; ++j)  // panel outer: its B (all taps) is reused by the whole row
          for (int64_t iw0 = 0; iw0 < p.W; iw0 += MR) {
            const MicroTileView v{C, 1, std::min(MR, p.W - iw0), std::min(NR, C - j * NR)};
            T* c = gx + ((n * p.H + ih) * p.W + iw0) * C + j * NR;
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t rs = r * p.S + s;
                const T* a = gyp + ((ih - h0 + (p.R - 1 - r) * p.dil_h) * Wp + iw0 + (p.S - 1 - s) * p.dil_w) * K;
                const T* b = bp + (rs * panels + j) * K * NR;
                for (int64_t k0 = 0; k0 < K; k0 += KC) {
                  const T beta = rs == 0 && k0 == 0 ? T(0) : T(1);
                  MK::template run<true>(std::min(KC, K - k0), a + k0, b + k0 * NR, c, v, T(1), beta, nullptr,
                                         nullptr, K);
                }
              }
          }
    }
  }
}

template void conv_backward_input_implicit_nhwc<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_implicit_nhwc<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
