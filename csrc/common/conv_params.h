// Shape and parameter description of one 2-d convolution (1-d is H == 1).
// Torch-free: shared by the CPU kernels, the CUDA kernels and the binding layer.
#pragma once

#include <cstdint>

namespace fastconv {

enum class PaddingMode : int { Zeros = 0, Reflect = 1, Replicate = 2, Circular = 3 };

// Memory layout of activations (input, output and their gradients).
// Weights are (K, C/groups, R, S) contiguous, or for the CPU forward and input gradient (K, R, S, C/groups)
// contiguous (a channels_last weight, weight_rsc below).
enum class Layout : int { NCHW = 0, NHWC = 1 };

struct ConvParams {
  int64_t N = 0;        // batch
  int64_t C = 0;        // input channels
  int64_t H = 0, W = 0; // input spatial size
  int64_t K = 0;        // output channels
  int64_t R = 1, S = 1; // kernel height, width
  int64_t OH = 0, OW = 0; // output spatial size (may be smaller than the formula: see below)
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_t = 0, pad_b = 0, pad_l = 0, pad_r = 0; // asymmetric padding ('same' with even kernels)
  int64_t dil_h = 1, dil_w = 1;
  int64_t groups = 1;
  PaddingMode mode = PaddingMode::Zeros;
  Layout layout = Layout::NCHW;
  int num_threads = 1; // OpenMP threads to use (the binding passes torch's setting)
  // CPU forward only: the weight already through cpu::winograd_transform_weight (the binding's cache of
  // transformed weights, for inference), used when the Winograd path runs; null: transformed per call.
  const void* winograd_weight = nullptr;
  // CPU forward and input gradient: the weight is stored (K, R, S, C/groups). The Winograd weight transforms
  // read it in place; conv_dispatch.cpp makes it (K, C/groups, R, S) for every other path.
  bool weight_rsc = false;

  int64_t C_per_group() const { return C / groups; }
  int64_t K_per_group() const { return K / groups; }
};

// ceil(a / b) for b > 0 and a of any sign (C++ division truncates toward zero).
inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// Output size along one axis, the formula torch uses: floor((in + pads - dil*(k-1) - 1) / stride) + 1.
// Returns a value <= 0 when the (padded) input is smaller than the dilated kernel.
inline int64_t conv_out_size(int64_t in, int64_t pad_lo, int64_t pad_hi, int64_t k, int64_t stride,
                             int64_t dil) {
  const int64_t span = in + pad_lo + pad_hi - dil * (k - 1) - 1;
  if (span < 0) return 0;
  return span / stride + 1;
}

// Padded input rows that `band` consecutive output rows read (their kernel rows included).
inline int64_t band_input_rows(const ConvParams& p, int64_t band) {
  return (band - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1;
}

// Maps a padded coordinate (may be < 0 or >= n) to an input coordinate, or -1 for a zero pad.
// Valid for |overhang| within the limits validate_conv enforces (reflect: pad < n; circular: pad <= n).
inline int64_t remap_index(int64_t i, int64_t n, PaddingMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PaddingMode::Zeros: return -1;
    case PaddingMode::Reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PaddingMode::Replicate: return i < 0 ? 0 : n - 1;
    case PaddingMode::Circular: return i < 0 ? i + n : i - n;
  }
  return -1;
}

}  // namespace fastconv
