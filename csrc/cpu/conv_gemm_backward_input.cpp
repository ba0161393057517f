// Input gradient as GEMM (W^T x gy -> columns) then col2im scatter-add, band by band of output rows
// (see conv_gemm.h). Output rows past p.OH (a cropped grad_output) simply contribute nothing.
#include <algorithm>
#include <cstring>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "conv_gemm.h"
#include "gemm.h"
#include "gemm_scratch.h"
#include "im2col.h"

namespace fastconv {
namespace cpu {
namespace {

template <typename T>
void backward_input_image(const ConvParams& p, const GemmConvPlan& pl, int64_t n, const T* gy, const T* w, T* gx,
                          int gemm_threads) {
  const bool nhwc = p.layout == Layout::NHWC;
  T* gxn = gx + n * p.C * pl.HW;
  T* col = nullptr;
  if (!pl.identity_col) {
    col = thread_scratch<T>(kScratchCol, size_t(pl.band_rows * p.OW * pl.CRS));
    std::memset(gxn, 0, sizeof(T) * p.C * pl.HW);
  }
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t oh0 = 0; oh0 < p.OH; oh0 += pl.band_rows) {
      const int64_t oh1 = std::min(p.OH, oh0 + pl.band_rows), bp = (oh1 - oh0) * p.OW;
      GemmArgs<T> a;
      if (!nhwc) {
        a.M = pl.CRS, a.N = bp, a.K = pl.Kg;
        a.A = w + g * pl.Kg * pl.CRS, a.rsA = 1, a.csA = pl.CRS;
        a.B = gy + (n * p.K + g * pl.Kg) * pl.npix + oh0 * p.OW, a.rsB = pl.npix, a.csB = 1;
        if (pl.identity_col)
          a.C = gxn + g * pl.Cg * pl.HW + oh0 * p.OW, a.rsC = pl.HW, a.csC = 1;
        else
          a.C = col, a.rsC = bp, a.csC = 1;
      } else {
        a.M = bp, a.N = pl.CRS, a.K = pl.Kg;
        a.A = gy + (n * pl.npix + oh0 * p.OW) * p.K + g * pl.Kg, a.rsA = p.K, a.csA = 1;
        a.B = w + g * pl.Kg * pl.CRS, a.rsB = pl.CRS, a.csB = 1;
        if (pl.identity_col)
          a.C = gxn + oh0 * p.OW * p.C + g * pl.Cg, a.rsC = p.C, a.csC = 1;
        else
          a.C = col, a.rsC = pl.CRS, a.csC = 1;
      }
      gemm_parallel(a, gemm_threads);
      if (pl.identity_col) continue;
      if (!nhwc)
        col2im_nchw(p, col, oh0, oh1, gxn + g * pl.Cg * pl.HW);
      else
        col2im_nhwc(p, col, oh0, oh1, gxn + g * pl.Cg);
    }
}

}  // namespace

template <typename T>
void conv_backward_input_gemm(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const GemmConvPlan pl = make_gemm_plan(p, sizeof(T));
  const T* wk = w;
  if (p.layout == Layout::NHWC && !(p.R == 1 && p.S == 1)) {
    T* wt = thread_scratch<T>(kScratchWeight, size_t(p.K * pl.CRS));
    weight_to_rsc(p, w, wt);
    wk = wt;
  }
  if (pl.per_image) {
#pragma omp parallel num_threads(pl.nt)
    {
      DenormalGuard guard;
      int64_t n0, n1;
      split_range(p.N, pl.nt, thread_id(), n0, n1);
      for (int64_t n = n0; n < n1; ++n) backward_input_image(p, pl, n, gy, wk, gx, 1);
    }
  } else {
    DenormalGuard guard;
    for (int64_t n = 0; n < p.N; ++n) backward_input_image(p, pl, n, gy, wk, gx, pl.nt);
  }
}

template void conv_backward_input_gemm<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_gemm<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
