// Input gradient as GEMM (W^T x gy -> columns) then col2im scatter-add, band by band of output rows
// (see conv_gemm.h). Output rows past p.OH (a cropped grad_output) simply contribute nothing.
// Threads either take whole images, or (too few images) each take a slice of every group's input
// channels: a slice's columns come from its own rows of W^T and scatter only into its own channels, so
// no two threads write the same element and the whole pass is one parallel region (one fork/join,
// however many bands: each join can cost a scheduler time slice on shared cores).
#include <algorithm>
#include <cstring>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_gemm.h"
#include "conv_implicit_nhwc.h"
#include "../gemm/gemm.h"
#include "../gemm/gemm_microkernel.h"
#include "../gemm/gemm_scratch.h"
#include "im2col.h"
#include "../transpose.h"

namespace fastconv {
namespace cpu {
namespace {

// Input channels [c0, c1) of every group of image n. For NCHW w is the transposed weight (groups, Cg*R*S,
// Kg) with rows of stride_off_512(Kg), made from a dense or a channels_last weight and read in place by the
// GEMM (packing the (K, Cg, R, S) weight per image and band cost a third of a DCGAN layer's time); for NHWC
// it is the (K, R, S, Cg) repack cut into `slices` channel slices (weight_to_rsc), this call's slice at column
// R*S*c0 of each row. NHWC 1x1 uses the weight as is (all layouts coincide).
template <typename T>
void backward_input_slice(const ConvParams& p, const GemmConvPlan& pl, int64_t n, int64_t c0, int64_t c1,
                          const T* gy, const T* w, T* gx, int gemm_threads) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t RS = p.R * p.S, cn = c1 - c0, rows = cn * RS;  // rows: this slice's share of CRS
  T* gxn = gx + n * p.C * pl.HW;
  T* col = nullptr;
  if (!pl.identity_col) {
    col = thread_scratch<T>(kScratchCol, size_t(pl.band_rows * p.OW * rows));
    for (int64_t g = 0; g < p.groups; ++g) {
      const int64_t cg0 = g * pl.Cg + c0;
      if (!nhwc)
        std::memset(gxn + cg0 * pl.HW, 0, sizeof(T) * cn * pl.HW);
      else
        for (int64_t i = 0; i < pl.HW; ++i) std::fill(gxn + i * p.C + cg0, gxn + i * p.C + cg0 + cn, T(0));
    }
  }
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t oh0 = 0; oh0 < p.OH; oh0 += pl.band_rows) {
      const int64_t oh1 = std::min(p.OH, oh0 + pl.band_rows), bp = (oh1 - oh0) * p.OW;
      GemmArgs<T> a;
      if (!nhwc) {
        const int64_t ldw = stride_off_512(pl.Kg, sizeof(T));
        a.M = rows, a.N = bp, a.K = pl.Kg;
        a.A = w + (g * pl.CRS + c0 * RS) * ldw, a.rsA = ldw, a.csA = 1;
        a.B = gy + (n * p.K + g * pl.Kg) * pl.npix + oh0 * p.OW, a.rsB = pl.npix, a.csB = 1;
        if (pl.identity_col)
          a.C = gxn + (g * pl.Cg + c0) * pl.HW + oh0 * p.OW, a.rsC = pl.HW, a.csC = 1;
        else
          a.C = col, a.rsC = bp, a.csC = 1;
      } else {
        a.M = bp, a.N = rows, a.K = pl.Kg;
        a.A = gy + (n * pl.npix + oh0 * p.OW) * p.K + g * pl.Kg, a.rsA = p.K, a.csA = 1;
        a.B = w + g * pl.Kg * pl.CRS + c0 * RS, a.rsB = pl.CRS, a.csB = 1;
        if (pl.identity_col)
          a.C = gxn + oh0 * p.OW * p.C + g * pl.Cg + c0, a.rsC = p.C, a.csC = 1;
        else
          a.C = col, a.rsC = rows, a.csC = 1;
      }
      if (pl.identity_col) a.whole_result_bytes = p.N * p.C * pl.HW * int64_t(sizeof(T));  // (see forward_item)
      gemm_parallel(a, gemm_threads);
      if (pl.identity_col) continue;
      if (!nhwc)
        col2im_nchw(p, col, oh0, oh1, cn, gxn + (g * pl.Cg + c0) * pl.HW);
      else
        col2im_nhwc(p, col, oh0, oh1, cn, gxn + g * pl.Cg + c0);
    }
}

// Small output planes (batch_small_planes, conv_gemm.h), NCHW: the columns of nb images at a time from one GEMM,
// wt (CRS, Kg) x their grad_outputs side by side (copied into gyc), threaded inside; then each image's col2im. A
// GEMM per image streamed the whole transposed weight for a few columns: DCGAN g2's 8 MB weight per 16 pixels.
template <typename T>
void backward_input_batched(const ConvParams& p, const GemmConvPlan& pl, const T* gy, const T* wt, T* gx) {
  const int64_t nb = images_per_batch(p, pl, sizeof(T)), ld = unaliased_stride(nb * pl.npix, sizeof(T));
  const int64_t ldw = stride_off_512(pl.Kg, sizeof(T));
  T* col = thread_scratch<T>(kScratchCol, size_t(pl.CRS * ld));
  T* gyc = thread_scratch<T>(kScratchAcc, size_t(pl.Kg * ld));
  for (int64_t g = 0; g < p.groups; ++g) {
    for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
      const int64_t ni = std::min(nb, p.N - n0);
#pragma omp parallel for num_threads(pl.nt) schedule(static)
      for (int64_t i = 0; i < ni; ++i) place_grad_output(p, pl, gy, n0 + i, g, i, ld, gyc);
      GemmArgs<T> a;
      a.M = pl.CRS, a.N = ni * pl.npix, a.K = pl.Kg;
      a.A = wt + g * pl.CRS * ldw, a.rsA = ldw, a.csA = 1;
      a.B = gyc, a.rsB = ld, a.csB = 1;
      a.C = col, a.rsC = ld, a.csC = 1;
      gemm_parallel(a, pl.nt);
#pragma omp parallel for num_threads(pl.nt) schedule(static)
      for (int64_t i = 0; i < ni; ++i) {
        T* gxg = gx + ((n0 + i) * p.C + g * pl.Cg) * pl.HW;
        std::fill(gxg, gxg + pl.Cg * pl.HW, T(0));
        col2im_nchw(p, col + i * pl.npix, 0, p.OH, pl.Cg, gxg, ld);
      }
    }
  }
}

}  // namespace

template <typename T>
void conv_backward_input_gemm(const ConvParams& p, const T* gy, const T* w, T* gx) {
  // NHWC, stride 1, zero padding: the direct convolution of the forward, run on grad_output with the weight
  // transposed and flipped; no column matrix at all (conv_implicit_nhwc.cpp).
  if (implicit_backward_input_applies(p, sizeof(T))) return conv_backward_input_implicit_nhwc(p, gy, w, gx);
  const GemmConvPlan pl = make_gemm_plan(p, sizeof(T));
  // channels_last 1x1 with the input as its own column matrix: gx_g (N*H*W, Cg) = gy_g W_g, one GEMM over
  // the whole batch per group (as the forward, conv_gemm_forward.cpp).
  if (p.layout == Layout::NHWC && pl.identity_col) {
    DenormalGuard guard;
    for (int64_t g = 0; g < p.groups; ++g) {
      GemmArgs<T> a;
      a.M = p.N * pl.npix, a.N = pl.Cg, a.K = pl.Kg;
      a.A = gy + g * pl.Kg, a.rsA = p.K, a.csA = 1;
      a.B = w + g * pl.Kg * pl.Cg, a.rsB = pl.Cg, a.csB = 1;
      a.C = gx + g * pl.Cg, a.rsC = p.C, a.csC = 1;
      gemm_parallel(a, pl.nt);
    }
    return;
  }
  // Channel slices per group: one per thread when the images alone do not balance the threads.
  const int slices = pl.per_image || pl.nt <= 1 ? 1 : static_cast<int>(std::min<int64_t>(pl.nt, pl.Cg));
  const T* wk = w;
  if (p.layout == Layout::NCHW) {
    const int64_t ldw = stride_off_512(pl.Kg, sizeof(T)), RS = p.R * p.S;
    T* wt = thread_scratch<T>(kScratchWeight, size_t(p.groups * pl.CRS * ldw));
    for (int64_t g = 0; g < p.groups; ++g) {
      const T* wg = w + g * pl.Kg * pl.CRS;
      if (p.weight_rsc)  // (Kg, R*S, Cg) -> (Cg, R*S, Kg): one transpose per tap, not a dense copy first (DCGAN's
                         // 8 MB 512 -> 256 4x4 weight was copied twice per call)
        transpose_tiled_batch(RS, pl.Kg, pl.Cg, wg, pl.Cg, pl.CRS, 1, wt + g * pl.CRS * ldw, ldw, RS * ldw, pl.nt);
      else  // (Kg, CRS) -> (CRS, Kg)
        transpose_tiled(pl.Kg, pl.CRS, wg, pl.CRS, 1, wt + g * pl.CRS * ldw, ldw, pl.nt);
    }
    wk = wt;
  } else if (!(p.R == 1 && p.S == 1)) {
    T* wt = thread_scratch<T>(kScratchWeight, size_t(p.K * pl.CRS));
    weight_to_rsc(p, w, wt, slices);
    wk = wt;
  }
  if (p.layout == Layout::NCHW && batch_small_planes(p, pl, sizeof(T))) {
    DenormalGuard guard;
    backward_input_batched(p, pl, gy, wk, gx);
  } else if (pl.per_image) {
#pragma omp parallel num_threads(pl.nt)
    {
      DenormalGuard guard;
#pragma omp for schedule(dynamic)  // images own their gx: any thread may take any image
      for (int64_t n = 0; n < p.N; ++n) backward_input_slice(p, pl, n, 0, pl.Cg, gy, wk, gx, 1);
    }
  } else if (slices > 1) {
#pragma omp parallel num_threads(slices)
    {
      DenormalGuard guard;
      // One slice per thread when the whole team starts; a smaller team takes the rest in turn (the slices
      // are fixed by the weight repack above, so they cannot be re-cut for the team).
      for (int sl = thread_id(); sl < slices; sl += team_size()) {
        int64_t c0, c1;
        split_range(pl.Cg, slices, sl, c0, c1);
        for (int64_t n = 0; n < p.N; ++n) backward_input_slice(p, pl, n, c0, c1, gy, wk, gx, 1);
      }
    }
  } else {  // one thread, or a single input channel per group: thread the GEMMs
    DenormalGuard guard;
    for (int64_t n = 0; n < p.N; ++n) backward_input_slice(p, pl, n, 0, pl.Cg, gy, wk, gx, pl.nt);
  }
}

template void conv_backward_input_gemm<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_gemm<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
