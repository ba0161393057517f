// See conv_subgrid.h. The regrouped activations live in the calling thread's kScratchSubgridIn/Out slots
// (the undilated pass may itself switch layouts, which uses the layout-switch slots).
#include "conv_subgrid.h"

#include <cstring>

#include "../../common/parallel.h"

#include "conv_kernels.h"
#include "../gemm/gemm_scratch.h"
#include "../winograd/winograd.h"

namespace fastconv {
namespace cpu {
namespace {

// The undilated problem on the subgrids of p.
ConvParams subgrid_params(const ConvParams& p) {
  ConvParams q = p;
  q.N = p.N * p.dil_h * p.dil_w;
  q.H = p.H / p.dil_h, q.W = p.W / p.dil_w;
  q.OH = p.OH / p.dil_h, q.OW = p.OW / p.dil_w;
  q.pad_t = p.pad_t / p.dil_h, q.pad_b = p.pad_b / p.dil_h;
  q.pad_l = p.pad_l / p.dil_w, q.pad_r = p.pad_r / p.dil_w;
  q.dil_h = q.dil_w = 1;
  return q;
}

// Between an (N, C, H, W) activation in p.layout and its (N*dh*dw, C, H/dh, W/dw) subgrids in the same layout:
// image (n, i, j) holds rows i, i + dh, ... and columns j, j + dw, ... of image n.
template <typename T, bool kToSubgrids>
void regroup(const ConvParams& p, int64_t C, int64_t H, int64_t W, const T* src, T* dst) {
  const int64_t dh = p.dil_h, dw = p.dil_w, Hs = H / dh, Ws = W / dw, rows = p.N * H;
  const int nt = threads_for_work(p.N * C * H * W, p.num_threads);
  // element `full` of the activation <-> element `sub` of the subgrids
  auto move = [&](int64_t full, int64_t sub, int64_t count) {
    if (kToSubgrids)
      std::memcpy(dst + sub, src + full, sizeof(T) * size_t(count));
    else
      std::memcpy(dst + full, src + sub, sizeof(T) * size_t(count));
  };
  if (p.layout == Layout::NHWC) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t n = row / H, h = row % H, i = h % dh, a = h / dh;
      for (int64_t wcol = 0; wcol < W; ++wcol) {
        const int64_t j = wcol % dw, b = wcol / dw;
        move((row * W + wcol) * C, ((((n * dh + i) * dw + j) * Hs + a) * Ws + b) * C, C);
      }
    }
    return;
  }
  // NCHW: one (n, c) plane (in L1 or L2) at a time, each of its dh*dw subplanes a contiguous block of the
  // subgrids. Walked row by row of the full activation instead, the subplane rows of one row went to dh*dw images
  // C*Hs*Ws apart, for 64 x 64 planes 16 KB apart: one L1 set, and the regroups took a fifth of a dilation-8
  // layer's forward+backward.
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t e = 0; e < p.N * C; ++e) {
    const int64_t n = e / C, c = e % C;
    for (int64_t i = 0; i < dh; ++i)
      for (int64_t j = 0; j < dw; ++j)
        for (int64_t a = 0; a < Hs; ++a) {
          const int64_t full = e * H * W + (a * dh + i) * W + j;
          const int64_t sub = ((((n * dh + i) * dw + j) * C + c) * Hs + a) * Ws;
          if constexpr (kToSubgrids)
            for (int64_t b = 0; b < Ws; ++b) dst[sub + b] = src[full + b * dw];
          else
            for (int64_t b = 0; b < Ws; ++b) dst[full + b * dw] = src[sub + b];
        }
  }
}

}  // namespace

bool use_subgrids(const ConvParams& p, ConvPass pass, int64_t elem_size) {
  if (p.dil_h == 1 && p.dil_w == 1) return false;
  if (p.stride_h != 1 || p.stride_w != 1 || p.mode != PaddingMode::Zeros || p.N <= 0) return false;
  if (p.H % p.dil_h || p.W % p.dil_w || p.pad_t % p.dil_h || p.pad_b % p.dil_h || p.pad_l % p.dil_w ||
      p.pad_r % p.dil_w)
    return false;
  // the full output (a cropped grad_output of a backward op keeps the general paths)
  if (p.OH != conv_out_size(p.H, p.pad_t, p.pad_b, p.R, 1, p.dil_h) ||
      p.OW != conv_out_size(p.W, p.pad_l, p.pad_r, p.S, 1, p.dil_w) || p.OH <= 0 || p.OW <= 0)
    return false;
  const ConvParams q = subgrid_params(p);
  switch (pass) {
    case ConvPass::Forward: return use_winograd_forward(q, elem_size);
    case ConvPass::BackwardInput: return use_winograd_backward_input(q, elem_size);
    case ConvPass::BackwardWeight: return use_winograd_backward_weight(q, elem_size);
  }
  return false;
}

template <typename T>
void conv_forward_subgrids(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const ConvParams q = subgrid_params(p);
  T* xs = thread_scratch<T>(kScratchSubgridIn, size_t(p.N * p.C * p.H * p.W));
  T* ys = thread_scratch<T>(kScratchSubgridOut, size_t(p.N * p.K * p.OH * p.OW));
  regroup<T, true>(p, p.C, p.H, p.W, x, xs);
  conv_forward(q, xs, w, bias, ys);
  regroup<T, false>(p, p.K, p.OH, p.OW, ys, y);
}

template <typename T>
void conv_backward_input_subgrids(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const ConvParams q = subgrid_params(p);
  T* gys = thread_scratch<T>(kScratchSubgridIn, size_t(p.N * p.K * p.OH * p.OW));
  T* gxs = thread_scratch<T>(kScratchSubgridOut, size_t(p.N * p.C * p.H * p.W));
  regroup<T, true>(p, p.K, p.OH, p.OW, gy, gys);
  conv_backward_input(q, gys, w, gxs);
  regroup<T, false>(p, p.C, p.H, p.W, gxs, gx);
}

template <typename T>
void conv_backward_weight_subgrids(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const ConvParams q = subgrid_params(p);
  T* xs = thread_scratch<T>(kScratchSubgridIn, size_t(p.N * p.C * p.H * p.W));
  T* gys = thread_scratch<T>(kScratchSubgridOut, size_t(p.N * p.K * p.OH * p.OW));
  regroup<T, true>(p, p.C, p.H, p.W, x, xs);
  regroup<T, true>(p, p.K, p.OH, p.OW, gy, gys);
  conv_backward_weight(q, xs, gys, gw);
}

#define FASTCONV_INSTANTIATE_SUBGRIDS(T)                                                              \
  template void conv_forward_subgrids<T>(const ConvParams&, const T*, const T*, const T*, T*);       \
  template void conv_backward_input_subgrids<T>(const ConvParams&, const T*, const T*, T*);          \
  template void conv_backward_weight_subgrids<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE_SUBGRIDS(float)
FASTCONV_INSTANTIATE_SUBGRIDS(double)

}  // namespace cpu
}  // namespace fastconv
