// Forward convolution as im2col + GEMM, band by band of output rows (see conv_gemm.h); (image, group,
// band) items are spread over the threads. The bias is added in the GEMM's epilogue.
#include <algorithm>

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

constexpr int64_t kMaxStackedImagePixels = 14 * 14;
constexpr int64_t kMaxStackedNchwPixels = 7 * 7, kMinStackedNchwDepth = 1024;
constexpr int64_t kStackedColumnElems = int64_t(1) << 20;  // 4 MB of float columns per stacked GEMM

// Images whose column matrices one stacked GEMM takes: kStackedColumnElems of columns, at least one image.
int64_t images_per_stack(const ConvParams& p, const GemmConvPlan& pl) {
  return std::clamp<int64_t>(kStackedColumnElems / std::max<int64_t>(pl.npix * pl.CRS, 1), 1, p.N);
}

// An NCHW 1x1 reads its input in place as the GEMM's B, so an image costs no packing and can be cut into bands
// of rows: at least 4 items per thread (bands of 512+ pixels), where a slower vCPU then holds up less of the
// work than with whole images (ResNet-50's 64 -> 64 at 56x56, batch 4: 1.07x, at 32x32 1.13-1.23x). Only for
// weights of up to kMaxBandedWeightBytes, which every band streams: a 512 -> 128 at 28x28 (256 KB) lost 6%.
constexpr int64_t kMinBandPixels = 512, kMaxBandedWeightBytes = 64 << 10;

void split_identity_bands(const ConvParams& p, int64_t elem_size, GemmConvPlan& pl) {
  const int64_t items = p.N * p.groups;
  if (items <= 0 || p.OW <= 0 || pl.Kg * pl.CRS * elem_size > kMaxBandedWeightBytes || items >= 4 * pl.nt) return;
  const int64_t want = (4 * pl.nt + items - 1) / items;
  const int64_t min_rows = (kMinBandPixels + p.OW - 1) / p.OW;
  pl.band_rows = std::min(p.OH, std::max(min_rows, (p.OH + want - 1) / want));
  pl.bands = (p.OH + pl.band_rows - 1) / pl.band_rows;
}

// One work item: output rows [band*band_rows, ...) of group g of image n.
template <typename T>
void forward_item(const ConvParams& p, const GemmConvPlan& pl, int64_t item, const T* x, const T* w, int64_t ldw,
                  const T* bias, T* y, int gemm_threads) {
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t band = item % pl.bands, g = (item / pl.bands) % p.groups, n = item / (pl.bands * p.groups);
  const int64_t oh0 = band * pl.band_rows, oh1 = std::min(p.OH, oh0 + pl.band_rows), bp = (oh1 - oh0) * p.OW;
  T* col = pl.identity_col ? nullptr : thread_scratch<T>(kScratchCol, size_t(pl.band_rows * p.OW * pl.CRS));
  GemmArgs<T> a;
  if (!nhwc) {
    const T* xg = x + (n * p.C + g * pl.Cg) * pl.HW;
    a.M = pl.Kg, a.N = bp, a.K = pl.CRS;
    a.A = w + g * pl.Kg * ldw, a.rsA = ldw, a.csA = 1;
    if (pl.identity_col) {
      a.B = xg + oh0 * p.OW, a.rsB = pl.HW, a.csB = 1;
    } else {
      im2col_nchw(p, xg, oh0, oh1, col);
      a.B = col, a.rsB = bp, a.csB = 1;
    }
    a.C = y + (n * p.K + g * pl.Kg) * pl.npix + oh0 * p.OW, a.rsC = pl.npix, a.csC = 1;
    a.bias_row = bias ? bias + g * pl.Kg : nullptr;
    // Each item writes a piece of an output that may be far larger than the cache; its size decides the
    // non-temporal stores (kStreamBytes), as for channels_last's whole-batch GEMM. MobileNet-V2's 24 -> 144 1x1 at
    // 112x112, batch 8 (58 MB out) 11.2 -> 5.1 ms, MobileNet's 32 -> 64 3.9 -> 2.5 ms; the input gradient's 144 -> 24
    // 9.8 -> 5.5 ms (A/B in one process).
    a.whole_result_bytes = p.N * p.K * pl.npix * int64_t(sizeof(T));
  } else {
    const T* xg = x + n * pl.HW * p.C + g * pl.Cg;
    a.M = bp, a.N = pl.Kg, a.K = pl.CRS;
    if (pl.identity_col) {
      a.A = xg + oh0 * p.OW * p.C, a.rsA = p.C, a.csA = 1;
    } else {
      im2col_nhwc(p, xg, oh0, oh1, col);
      a.A = col, a.rsA = pl.CRS, a.csA = 1;
    }
    a.B = w + g * pl.CRS * pl.Kg, a.rsB = pl.Kg, a.csB = 1;  // w is (groups, R, S, Cg, Kg)
    a.C = y + (n * pl.npix + oh0 * p.OW) * p.K + g * pl.Kg, a.rsC = p.K, a.csC = 1;
    a.bias_col = bias ? bias + g * pl.Kg : nullptr;
  }
  gemm_parallel(a, gemm_threads);
}

}  // namespace

template <typename T>
void conv_forward_gemm(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  // channels_last kernels larger than 1x1: direct convolution on the micro-kernel, no column matrix
  // (conv_implicit_nhwc.cpp; ResNet's stride-2 3x3 5-20%, AlexNet's 11x11/4 and 5x5 10-15%, the
  // 5x5 layers of GoogLeNet and the MNIST CNN 15-40% faster than im2col + GEMM).
  if (implicit_forward_applies(p, sizeof(T))) return conv_forward_implicit_nhwc(p, x, w, bias, y);
  GemmConvPlan pl = make_gemm_plan(p, sizeof(T));
  if (p.layout == Layout::NCHW && pl.identity_col) split_identity_bands(p, sizeof(T), pl);
  const T* wk = w;
  const bool whole_batch = p.layout == Layout::NHWC && pl.identity_col;
  if (p.layout == Layout::NHWC && !whole_batch) {
    T* wt = thread_scratch<T>(kScratchWeight, size_t(p.K * pl.CRS));
    weight_to_rsck(p, w, wt);
    wk = wt;
  }
  // NCHW reads the (K, C*R*S) weight in place as the GEMM's A. A row length that is a multiple of 1 KB
  // crowds the 14 rows a micro-tile reads into a few L1 sets (broadcast_rows_alias), so such a weight is
  // copied once per call to a padded row stride, rather than re-strided by every image's GEMM.
  int64_t ldw = pl.CRS;
  if (p.layout == Layout::NCHW && broadcast_rows_alias(pl.CRS, sizeof(T))) {
    ldw = stride_off_512(pl.CRS, sizeof(T));
    T* wp = thread_scratch<T>(kScratchWeight, size_t(p.K * ldw));
    for (int64_t k = 0; k < p.K; ++k) std::copy(w + k * pl.CRS, w + (k + 1) * pl.CRS, wp + k * ldw);
    wk = wp;
  }
  // channels_last 1x1 with the input as its own column matrix: the images are consecutive rows of one
  // (N*H*W, C) matrix, so one GEMM per group covers the whole batch. Per-image GEMMs of small planes
  // wasted partial row panels (a 7x7 plane is 49 rows: 3.5 panels of 14) and packed the weight per image.
  if (whole_batch) {
    DenormalGuard guard;
    for (int64_t g = 0; g < p.groups; ++g) {
      GemmArgs<T> a;
      a.M = p.N * pl.npix, a.N = pl.Kg, a.K = pl.Cg;
      a.A = x + g * pl.Cg, a.rsA = p.C, a.csA = 1;
      if (wk == w)  // the (Kg, Cg) weight read as its transpose (the GEMM's B pack transposes it anyway)
        a.B = w + g * pl.Kg * pl.Cg, a.rsB = 1, a.csB = pl.Cg;
      else
        a.B = wk + g * pl.Cg * pl.Kg, a.rsB = pl.Kg, a.csB = 1;
      a.C = y + g * pl.Kg, a.rsC = p.K, a.csC = 1;
      a.bias_col = bias ? bias + g * pl.Kg : nullptr;
      gemm_parallel(a, pl.nt);
    }
    return;
  }
  // channels_last with output planes of up to 14x14: the column matrices of several whole images stacked
  // into one GEMM (their output rows are consecutive in y), so the weight is packed once per such stack
  // instead of once per image, and a 7x7 plane's 49 rows do not leave its last row panel half empty
  // (ResNet-50's 1024->2048 1x1 stride-2 downsample 1.06x -> 1.30x of torch, ResNet-18's 256->512 1.03x ->
  // 1.12x).
  if (p.layout == Layout::NHWC && p.groups == 1 && p.N > 1 && pl.npix <= kMaxStackedImagePixels) {
    const int64_t per_image = pl.npix * pl.CRS, ipc = images_per_stack(p, pl);
    T* col = thread_scratch<T>(kScratchCol, size_t(ipc * per_image));
    DenormalGuard guard;
    for (int64_t n0 = 0; n0 < p.N; n0 += ipc) {
      const int64_t ni = std::min(ipc, p.N - n0);
      const int nt = static_cast<int>(std::min<int64_t>(pl.nt, ni));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
      for (int64_t i = 0; i < ni; ++i) im2col_nhwc(p, x + (n0 + i) * pl.HW * p.C, 0, p.OH, col + i * per_image);
      GemmArgs<T> a;
      a.M = ni * pl.npix, a.N = p.K, a.K = pl.CRS;
      a.A = col, a.rsA = pl.CRS, a.csA = 1;
      a.B = wk, a.rsB = p.K, a.csB = 1;
      a.C = y + n0 * pl.npix * p.K, a.rsC = p.K, a.csC = 1;
      a.bias_col = bias;
      gemm_parallel(a, pl.nt);
    }
    return;
  }
  // NCHW with output planes of up to 7x7 and a long GEMM depth: the same stacking, with the images' columns
  // side by side (the GEMM's N is the stack's pixels: 49 per image filled 64 columns of micro-tiles) and the
  // result copied out image by image (ResNet layer4's stride-2 3x3 and 1x1 1.07-1.12x faster; at 14x14, or
  // with a short depth such as ResNet-18's 256->512 downsample, the copy cost more than it saved).
  if (p.layout == Layout::NCHW && p.groups == 1 && p.N > 1 && pl.npix <= kMaxStackedNchwPixels &&
      pl.CRS >= kMinStackedNchwDepth && !pl.identity_col) {
    const int64_t per_image = pl.npix * pl.CRS, ipc = images_per_stack(p, pl);
    T* col = thread_scratch<T>(kScratchCol, size_t(ipc * per_image));
    T* out = thread_scratch<T>(kScratchAcc, size_t(ipc * pl.npix * p.K));
    DenormalGuard guard;
    for (int64_t n0 = 0; n0 < p.N; n0 += ipc) {
      const int64_t ni = std::min(ipc, p.N - n0), cols = ni * pl.npix;
      const int nt = static_cast<int>(std::min<int64_t>(pl.nt, ni));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
      for (int64_t i = 0; i < ni; ++i) im2col_nchw(p, x + (n0 + i) * p.C * pl.HW, 0, p.OH, col + i * pl.npix, cols);
      GemmArgs<T> a;
      a.M = p.K, a.N = cols, a.K = pl.CRS;
      a.A = wk, a.rsA = ldw, a.csA = 1;
      a.B = col, a.rsB = cols, a.csB = 1;
      a.C = out, a.rsC = cols, a.csC = 1;
      a.bias_row = bias;
      gemm_parallel(a, pl.nt);
      const int nt2 = threads_for_work(ni * p.K * pl.npix, pl.nt);
#pragma omp parallel for num_threads(nt2) schedule(static) if (nt2 > 1)
      for (int64_t e = 0; e < ni * p.K; ++e) {
        const int64_t i = e / p.K, k = e % p.K;
        std::copy(out + k * cols + i * pl.npix, out + k * cols + (i + 1) * pl.npix, y + ((n0 + i) * p.K + k) * pl.npix);
      }
    }
    return;
  }
  // Items write disjoint outputs: one parallel region, items handed out dynamically (on shared cores a
  // descheduled thread then holds up only its current item, not a fixed share of the work).
  const int64_t items = p.N * p.groups * pl.bands;
  if (pl.nt > 1 && items >= 2 * pl.nt) {
#pragma omp parallel num_threads(pl.nt)
    {
      DenormalGuard guard;
#pragma omp for schedule(dynamic)
      for (int64_t i = 0; i < items; ++i) forward_item(p, pl, i, x, wk, ldw, bias, y, 1);
    }
  } else {
    DenormalGuard guard;
    for (int64_t i = 0; i < items; ++i) forward_item(p, pl, i, x, wk, ldw, bias, y, pl.nt);
  }
}

template void conv_forward_gemm<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void conv_forward_gemm<double>(const ConvParams&, const double*, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
