// Convolution as GEMM (im2col + packed GEMM): the fast path for every non-depthwise convolution.
//   forward      NCHW: y_g[Kg, pix] = W_g[Kg, Cg*R*S] x col[Cg*R*S, pix]         (+ bias per row)
//                NHWC: y_g[pix, Kg] = col[pix, R*S*Cg] x W'_g^T                  (+ bias per column)
//   bwd input    NCHW: col = W_g^T x gy_g, then col2im;  NHWC: col = gy_g x W'_g, then col2im
//   bwd weight   NCHW: gw_g += gy_g x col^T;             NHWC: gw'_g += gy_g^T x col
// W' is the weight repacked to (K, R, S, Cg) so NHWC columns (r, s, c) match it. A 1x1, stride-1,
// unpadded convolution uses the activation itself as the column matrix. Images are spread over threads
// when there are at least as many as threads; otherwise the GEMM itself is threaded.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

template <typename T>
void conv_forward_gemm(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv_backward_input_gemm(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void conv_backward_weight_gemm(const ConvParams& p, const T* x, const T* gy, T* gw);

// A 1x1, stride-1, unpadded convolution whose output is the input's size: the input is its own column matrix.
inline bool is_identity_1x1(const ConvParams& p) {
  return p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 && p.pad_b == 0 &&
         p.pad_l == 0 && p.pad_r == 0 && p.OH == p.H && p.OW == p.W;
}

// Shared decisions of the three GEMM passes.
struct GemmConvPlan {
  int64_t Cg, Kg, CRS, npix, HW;
  bool identity_col;  // 1x1, stride 1, no padding, output == input size: col is the input itself
  int64_t band_rows;  // output rows per im2col band
  int64_t bands;      // bands per image and group
  bool per_image;     // threads over images (each runs a single-threaded GEMM)
  int nt;
};

inline GemmConvPlan make_gemm_plan(const ConvParams& p, int64_t elem_size) {
  GemmConvPlan g;
  g.Cg = p.C_per_group();
  g.Kg = p.K_per_group();
  g.CRS = g.Cg * p.R * p.S;
  g.npix = p.OH * p.OW;
  g.HW = p.H * p.W;
  g.identity_col = is_identity_1x1(p);
  // Keep one band of the column matrix around 512 KB (inside the 1-2 MB L2 of current x86 cores), but
  // give every band at least kMinBandPixels output pixels (one KC block of the GEMM) while the band stays
  // within kMaxBandBytes: each band's GEMM streams the whole weight (forward, input gradient) or the whole
  // weight-gradient accumulator, and the L2-sized bands of a 512-channel 14x14 layer are two rows (28
  // pixels), which left the GEMM at a few flops per byte of weight. Measured on VGG-16 conv5_1 (N=1,
  // 512x14x14, 2 threads): weight gradient 6.0 -> 3.1 ms (torch 2.9); see the commit for the rest.
  // Only for weights of kLargeWeightBytes or more per group: smaller ones stay in L2 across bands, and
  // there the longer bands measured 5% slower (ResNet-50 3x3 64->64 at 56x56).
  constexpr int64_t kMinBandPixels = 256, kMaxBandBytes = int64_t(8) << 20, kLargeWeightBytes = 512 << 10;
  const int64_t row_bytes = std::max<int64_t>(1, g.CRS * p.OW * elem_size);
  const int64_t oh = std::max<int64_t>(p.OH, 1);
  int64_t rows = std::clamp<int64_t>((512 << 10) / row_bytes, 1, oh);
  if (rows * p.OW < kMinBandPixels && p.OW > 0 && g.Kg * g.CRS * elem_size >= kLargeWeightBytes)
    rows = std::max(rows, std::min((kMinBandPixels + p.OW - 1) / p.OW, std::max<int64_t>(1, kMaxBandBytes / row_bytes)));
  g.band_rows = g.identity_col ? oh : std::min(rows, oh);
  g.bands = p.OH > 0 ? (p.OH + g.band_rows - 1) / g.band_rows : 0;
  g.nt = std::max(1, p.num_threads);
  // Whole images per thread when that balances (or nearly): otherwise thread the GEMM.
  g.per_image = g.nt > 1 && p.N >= g.nt && (p.N % g.nt == 0 || p.N >= 4 * g.nt);
  return g;
}

// Small output planes: the weight gradient and NCHW's input gradient run one GEMM over several images' pixels
// side by side, threaded inside (conv_gemm_backward_weight.cpp, conv_gemm_backward_input.cpp), rather than a GEMM
// per image whose few pixels pay for streaming the whole weight (input gradient) or gradient (weight gradient)
// through it. For planes under kShallowPlanePixels and weights of kBatchedMinWeightBytes or more (a smaller one
// stays in cache between images); kBatchedPixels pixels per GEMM, columns of at most kBatchedColBytes.
constexpr int64_t kShallowPlanePixels = 128, kBatchedPixels = 512;
constexpr int64_t kBatchedMinWeightBytes = int64_t(1) << 20, kBatchedColBytes = int64_t(16) << 20;

inline bool batch_small_planes(const ConvParams& p, const GemmConvPlan& pl, int64_t elem_size) {
  return p.N > 1 && pl.bands == 1 && !pl.identity_col && pl.npix > 0 && pl.npix < kShallowPlanePixels &&
         p.K * pl.CRS * elem_size >= kBatchedMinWeightBytes;
}

// Images per batched GEMM: kBatchedPixels pixels' worth, within kBatchedColBytes of columns, at least one.
inline int64_t images_per_batch(const ConvParams& p, const GemmConvPlan& pl, int64_t elem_size) {
  const int64_t by_depth = (kBatchedPixels + pl.npix - 1) / pl.npix;
  const int64_t by_bytes = kBatchedColBytes / std::max<int64_t>(1, pl.CRS * pl.npix * elem_size);
  return std::clamp<int64_t>(std::min(by_depth, by_bytes), 1, p.N);
}

// Image n's grad_output rows of group g (Kg rows of npix values) as columns [i*npix, (i+1)*npix) of gyc, whose
// rows are ld apart: the i-th of several images side by side in a batched GEMM's operand.
template <typename T>
void place_grad_output(const ConvParams& p, const GemmConvPlan& pl, const T* gy, int64_t n, int64_t g, int64_t i,
                       int64_t ld, T* gyc) {
  const T* src = gy + (n * p.K + g * pl.Kg) * pl.npix;
  for (int64_t k = 0; k < pl.Kg; ++k) std::copy(src + k * pl.npix, src + (k + 1) * pl.npix, gyc + k * ld + i * pl.npix);
}

// Weight repacking. w is (K, Cg, R, S) = (groups, Kg, Cg, R, S).
//   rsc:   (K, R, S, Cg)              rows match NHWC columns (bwd input B operand, bwd weight result);
//          with slices > 1 each row is split_range(Cg, slices) channel slices one after the other, each
//          (R, S, slice) (bwd input when threads own channel slices; slices == 1 is plain (R, S, Cg))
//   rsck:  (groups, R, S, Cg, Kg)     NHWC forward B operand with unit column stride
//   crsk:  (groups, Cg, R, S, Kg)     NCHW bwd weight result, computed transposed
template <typename T>
void weight_to_rsc(const ConvParams& p, const T* w, T* wt, int slices = 1);
template <typename T>
void weight_from_rsc(const ConvParams& p, const T* wt, T* w);
template <typename T>
void weight_to_rsck(const ConvParams& p, const T* w, T* wt);
template <typename T>
void weight_from_crsk(const ConvParams& p, const T* wt, T* w);

}  // namespace cpu
}  // namespace fastconv
