// Weight gradient as GEMM accumulated over images and bands: gw_g^T += col x gy_g^T (NCHW: the column
// matrix is the large row-major operand, read in place by the GEMM; gw^T is transposed back at the end)
// or gw'_g += gy_g^T x col (NHWC, gw' in (K, R, S, Cg) order, reordered at the end). (image, group, band)
// items are spread over the threads, each accumulating into a private buffer; the buffers are then summed in
// thread order, so the result is deterministic for a given team size. Small output planes instead batch several
// images into one deeper GEMM threaded inside (backward_weight_batched).
#include <algorithm>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_gemm.h"
#include "conv_implicit_nhwc.h"
#include "../gemm/gemm.h"
#include "../gemm/gemm_microkernel.h"
#include "../gemm/gemm_scratch.h"
#include "im2col.h"

namespace fastconv {
namespace cpu {
namespace {

constexpr int64_t kMaxWholeBatchWgradPixels = 14 * 14;

// acc += contribution of one (image, group, band) item; acc is (groups, CRS, Kg) for NCHW and
// (K, R, S, Cg) for NHWC.
template <typename T>
void backward_weight_item(const ConvParams& p, const GemmConvPlan& pl, int64_t item, const T* x, const T* gy, T* acc,
                          T beta, int gemm_threads) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t band = item % pl.bands, g = (item / pl.bands) % p.groups, n = item / (pl.bands * p.groups);
  const int64_t oh0 = band * pl.band_rows, oh1 = std::min(p.OH, oh0 + pl.band_rows), bp = (oh1 - oh0) * p.OW;
  T* col = pl.identity_col ? nullptr : thread_scratch<T>(kScratchCol, size_t(pl.band_rows * p.OW * pl.CRS));
  GemmArgs<T> a;
  a.beta = beta;
  if (!nhwc) {
    const T* xg = x + (n * p.C + g * pl.Cg) * pl.HW;
    a.M = pl.CRS, a.N = pl.Kg, a.K = bp;
    a.C = acc + g * pl.CRS * pl.Kg, a.rsC = pl.Kg, a.csC = 1;
    a.B = gy + (n * p.K + g * pl.Kg) * pl.npix + oh0 * p.OW, a.rsB = 1, a.csB = pl.npix;
    if (pl.identity_col) {
      a.A = xg + oh0 * p.OW, a.rsA = pl.HW, a.csA = 1;
    } else {
      im2col_nchw(p, xg, oh0, oh1, col);
      a.A = col, a.rsA = bp, a.csA = 1;
    }
  } else {
    const T* xg = x + n * pl.HW * p.C + g * pl.Cg;
    a.M = pl.Kg, a.N = pl.CRS, a.K = bp;
    a.C = acc + g * pl.Kg * pl.CRS, a.rsC = pl.CRS, a.csC = 1;
    a.A = gy + (n * pl.npix + oh0 * p.OW) * p.K + g * pl.Kg, a.rsA = 1, a.csA = p.K;
    if (pl.identity_col) {
      a.B = xg + oh0 * p.OW * p.C, a.rsB = p.C, a.csB = 1;
    } else {
      im2col_nhwc(p, xg, oh0, oh1, col);
      a.B = col, a.rsB = pl.CRS, a.csB = 1;
    }
  }
  gemm_parallel(a, gemm_threads);
}

// Small output planes (batch_small_planes, conv_gemm.h): the weight gradient of nb images at a time as one GEMM
// whose depth is all their pixels (their column matrices side by side), threaded inside the GEMM over the
// gradient's rows or columns. No private accumulators to sum, and the gradient is read and written once per chunk
// of images instead of once per image. Each output's sum runs in image order whatever the thread count.
// DCGAN g2's 8 MB weight gradient (4x4 planes: 16 pixels per image) went 9.8 -> 4.8 ms (NCHW) and 10.1 -> 5.2 ms
// (channels_last), ResNet-50's 1x1 stride-2 1024 -> 2048 (7x7 out) 10.8 -> 6.6 ms, ResNet-18's 3x3 stride-2
// 256 -> 512 3.0 -> 2.1 ms; at 14x14 (196 pixels) NCHW measured 5% slower, and LeNet-5's 6 -> 16 5x5 (a 9.6 KB
// gradient, each thread's accumulator in L1) 0.71x.
template <typename T>
void backward_weight_batched(const ConvParams& p, const GemmConvPlan& pl, const T* x, const T* gy, T* target) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t nb = images_per_batch(p, pl, sizeof(T)), depth_max = nb * pl.npix;
  const int64_t ld = nhwc ? pl.CRS : unaliased_stride(depth_max, sizeof(T));  // NCHW: the GEMM reads col in place
  T* col = thread_scratch<T>(kScratchCol, size_t(nhwc ? depth_max * pl.CRS : pl.CRS * ld));
  T* gyc = nhwc ? nullptr : thread_scratch<T>(kScratchAcc, size_t(pl.Kg * ld));
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t ni = std::min(nb, p.N - n0), depth = ni * pl.npix;
#pragma omp parallel for num_threads(pl.nt) schedule(static)
      for (int64_t i = 0; i < ni; ++i) {
        const int64_t n = n0 + i;
        if (nhwc) {
          im2col_nhwc(p, x + n * pl.HW * p.C + g * pl.Cg, 0, p.OH, col + i * pl.npix * pl.CRS);
        } else {
          im2col_nchw(p, x + (n * p.C + g * pl.Cg) * pl.HW, 0, p.OH, col + i * pl.npix, ld);
          place_grad_output(p, pl, gy, n, g, i, ld, gyc);
        }
      }
      GemmArgs<T> a;
      a.beta = n0 == 0 ? T(0) : T(1);
      a.K = depth;
      if (!nhwc) {  // gw^T (CRS, Kg) = col (CRS, depth) x gyc^T
        a.M = pl.CRS, a.N = pl.Kg;
        a.A = col, a.rsA = ld, a.csA = 1;
        a.B = gyc, a.rsB = 1, a.csB = ld;
        a.C = target + g * pl.CRS * pl.Kg, a.rsC = pl.Kg, a.csC = 1;
      } else {  // gw' (Kg, CRS) = gy^T (Kg, depth) x col: the images' pixels are consecutive rows of gy
        a.M = pl.Kg, a.N = pl.CRS;
        a.A = gy + n0 * pl.npix * p.K + g * pl.Kg, a.rsA = 1, a.csA = p.K;
        a.B = col, a.rsB = pl.CRS, a.csB = 1;
        a.C = target + g * pl.Kg * pl.CRS, a.rsC = pl.CRS, a.csC = 1;
      }
      gemm_parallel(a, pl.nt);
    }
  }
}

}  // namespace

template <typename T>
void conv_backward_weight_gemm(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const GemmConvPlan pl = make_gemm_plan(p, sizeof(T));
  // channels_last 1x1 with the input as its own column matrix, on planes of up to 14x14: gw_g (Kg, Cg) =
  // gy_g^T x_g is one GEMM whose depth is every pixel of the batch, split over the threads by output rows or
  // columns (no private accumulators, and each output's sum runs in the same order whatever the thread
  // count). The chunked implicit kernel below read and wrote the whole gradient every few dozen pixels
  // there (7x7 planes: 1.3-1.5x faster forward+backward, 14x14: 1.2-1.3x); on larger planes with few
  // channels it stays ahead (MobileNet's 32->64 at 112x112: 0.84x as one GEMM).
  if (p.layout == Layout::NHWC && pl.identity_col && pl.npix <= kMaxWholeBatchWgradPixels) {
    DenormalGuard guard;
    for (int64_t g = 0; g < p.groups; ++g) {
      GemmArgs<T> a;
      a.M = pl.Kg, a.N = pl.Cg, a.K = p.N * pl.npix;
      a.A = gy + g * pl.Kg, a.rsA = 1, a.csA = p.K;
      a.B = x + g * pl.Cg, a.rsB = p.C, a.csB = 1;
      a.C = gw + g * pl.Kg * pl.Cg, a.rsC = pl.Cg, a.csC = 1;
      gemm_parallel(a, pl.nt);
    }
    return;
  }
  // NHWC, one group, stride 1, zero padding: no column matrix at all (conv_implicit_nhwc*.cpp).
  if (implicit_backward_weight_applies<T>(p)) return conv_backward_weight_implicit_nhwc(p, x, gy, gw);
  const int64_t total = p.K * pl.CRS;
  const bool nhwc = p.layout == Layout::NHWC;
  const bool reorder = !nhwc || !(p.R == 1 && p.S == 1);  // NHWC 1x1: (K, R, S, Cg) is gw's own order
  T* target = reorder ? thread_scratch<T>(kScratchWeight, size_t(total)) : gw;
  const int64_t items = p.N * p.groups * pl.bands;
  if (batch_small_planes(p, pl, sizeof(T))) {
    DenormalGuard guard;
    backward_weight_batched(p, pl, x, gy, target);
  } else if (pl.nt > 1 && items >= 2 * pl.nt) {
    std::vector<T*> bufs(pl.nt, nullptr);  // a team has at most pl.nt threads; only its own entries are set
#pragma omp parallel num_threads(pl.nt)
    {
      DenormalGuard guard;
      // Split and reduce over the team actually started, which may be smaller than pl.nt.
      const int tid = thread_id(), team = team_size();
      int64_t i0, i1;
      split_range(items, team, tid, i0, i1);
      T* acc = thread_scratch<T>(kScratchAcc, size_t(total));
      std::fill(acc, acc + total, T(0));
      bufs[tid] = acc;
      for (int64_t i = i0; i < i1; ++i) backward_weight_item(p, pl, i, x, gy, acc, T(1), 1);
#pragma omp barrier
      int64_t e0, e1;
      split_range(total, team, tid, e0, e1);
      for (int64_t e = e0; e < e1; ++e) {
        T s = bufs[0][e];
        for (int t = 1; t < team; ++t) s += bufs[t][e];
        target[e] = s;
      }
    }
  } else {
    DenormalGuard guard;
    std::fill(target, target + total, T(0));
    for (int64_t i = 0; i < items; ++i) backward_weight_item(p, pl, i, x, gy, target, T(1), pl.nt);
  }
  if (reorder) nhwc ? weight_from_rsc(p, target, gw) : weight_from_crsk(p, target, gw);
}

template void conv_backward_weight_gemm<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_gemm<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
