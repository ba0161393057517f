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

#include "../common/conv_params.h"

namespace fastconv {
namespace cpu {

template <typename T>
void conv_forward_gemm(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);
template <typename T>
void conv_backward_input_gemm(const ConvParams& p, const T* gy, const T* w, T* gx);
template <typename T>
void conv_backward_weight_gemm(const ConvParams& p, const T* x, const T* gy, T* gw);

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
  g.identity_col = p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 && p.pad_t == 0 && p.pad_b == 0 &&
                   p.pad_l == 0 && p.pad_r == 0 && p.OH == p.H && p.OW == p.W;
  // Keep one band of the column matrix around 512 KB (inside the 1-2 MB L2 of current x86 cores).
  const int64_t row_bytes = std::max<int64_t>(1, g.CRS * p.OW * elem_size);
  g.band_rows = g.identity_col ? std::max<int64_t>(p.OH, 1)
                               : std::clamp<int64_t>((512 << 10) / row_bytes, 1, std::max<int64_t>(p.OH, 1));
  g.bands = p.OH > 0 ? (p.OH + g.band_rows - 1) / g.band_rows : 0;
  g.nt = std::max(1, p.num_threads);
  // Whole images per thread when that balances (or nearly): otherwise thread the GEMM.
  g.per_image = g.nt > 1 && p.N >= g.nt && (p.N % g.nt == 0 || p.N >= 4 * g.nt);
  return g;
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
