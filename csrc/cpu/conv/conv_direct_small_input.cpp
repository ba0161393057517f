// Input gradient of a stride-1, zero-padded convolution as a forward convolution (so the direct kernel of
// conv_direct_small.cpp computes it): gx = conv(gy, w'), where w'[c, k, r, s] = w[k, c, R-1-r, S-1-s]
// (per group), with padding (R-1)*dil - pad on each side (the rest of the bottom / right side when the
// output is smaller than the formula's) and the same dilation.
#include <cstddef>
#include <vector>

#include "conv_direct_small.h"

namespace fastconv {
namespace cpu {
namespace {

// The forward problem whose output is gx; q.N = 0 when p has no such form (stride > 1, other padding
// modes, a padding larger than the dilated kernel).
ConvParams as_forward(const ConvParams& p) {
  ConvParams q = p;
  q.N = 0;
  if (p.stride_h != 1 || p.stride_w != 1 || p.mode != PaddingMode::Zeros) return q;
  q.C = p.K, q.K = p.C, q.H = p.OH, q.W = p.OW, q.OH = p.H, q.OW = p.W;
  q.pad_t = (p.R - 1) * p.dil_h - p.pad_t, q.pad_l = (p.S - 1) * p.dil_w - p.pad_l;
  q.pad_b = p.H - 1 + (p.R - 1) * p.dil_h - q.pad_t - (p.OH - 1);
  q.pad_r = p.W - 1 + (p.S - 1) * p.dil_w - q.pad_l - (p.OW - 1);
  if (q.pad_t < 0 || q.pad_l < 0 || q.pad_b < 0 || q.pad_r < 0) return q;
  q.N = p.N;
  return q;
}

}  // namespace

// The transposed forward judged by the NCHW thresholds in both layouts: in channels_last the alternative is a
// GEMM plus a col2im scatter of a few channels per pixel (LeNet-5 C3's input gradient, 6 channels, batch 256:
// 8.9 ms that way, 2.0 ms direct, torch 2.4-3.0; MNIST 1->16 5x5: 3.8 -> 0.57 ms).
bool use_direct_small_input(const ConvParams& p, int64_t elem_size) {
  ConvParams q = as_forward(p);
  q.layout = Layout::NCHW;
  return q.N > 0 && use_direct_small(q, elem_size);
}

template <typename T>
void conv_backward_input_direct_small(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const ConvParams q = as_forward(p);
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S;
  std::vector<T> wt(size_t(p.K * Cg * RS));  // (groups, Cg, Kg, R, S), taps reversed
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t k = 0; k < Kg; ++k) {
        const T* src = w + ((g * Kg + k) * Cg + c) * RS;
        T* dst = wt.data() + ((g * Cg + c) * Kg + k) * RS;
        for (int64_t t = 0; t < RS; ++t) dst[t] = src[RS - 1 - t];
      }
  conv_forward_direct_small(q, gy, wt.data(), static_cast<const T*>(nullptr), gx);
}

template void conv_backward_input_direct_small<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_direct_small<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
