// Validation of convolution parameters, shared by every backend. Returns an empty string when the
// parameters are valid, else a message that names the offending argument and its value.
#pragma once

#include <string>

#include "conv_params.h"
#include "op_error.h"

namespace fastconv {

inline std::string validate_conv(const ConvParams& p, const char* op) {
  // Bounds first, so the arithmetic below (padded sizes, dilated kernel extents) cannot overflow int64.
  constexpr int64_t kMax = (int64_t(1) << 31) - 1;
  const struct { const char* name; int64_t value; } sizes[] = {
      {"batch size", p.N}, {"in_channels", p.C}, {"input height", p.H}, {"input width", p.W},
      {"out_channels", p.K}, {"kernel height", p.R}, {"kernel width", p.S},
      {"stride", p.stride_h}, {"stride", p.stride_w}, {"padding", p.pad_t}, {"padding", p.pad_b},
      {"padding", p.pad_l}, {"padding", p.pad_r}, {"dilation", p.dil_h}, {"dilation", p.dil_w}};
  for (const auto& s : sizes) {
    if (s.value > kMax) {
      return op_error(op, s.name, " must be smaller than 2^31, got ", s.value);
    }
  }
  if (p.N < 0 || p.C < 0 || p.H < 0 || p.W < 0 || p.K < 0) {
    return op_error(op, "sizes must be non-negative, got input (", p.N, ", ", p.C, ", ", p.H, ", ", p.W,
        ") and out_channels ", p.K);
  }
  if (p.stride_h <= 0 || p.stride_w <= 0) {
    return op_error(op, "stride must be positive, got (", p.stride_h, ", ", p.stride_w, ")");
  }
  if (p.dil_h <= 0 || p.dil_w <= 0) {
    return op_error(op, "dilation must be positive, got (", p.dil_h, ", ", p.dil_w, ")");
  }
  if (p.pad_t < 0 || p.pad_b < 0 || p.pad_l < 0 || p.pad_r < 0) {
    return op_error(op, "padding must be non-negative, got (", p.pad_t, ", ", p.pad_b, ", ", p.pad_l, ", ", p.pad_r,
        ")");
  }
  if (p.groups <= 0) {
    return op_error(op, "groups must be positive, got ", p.groups);
  }
  if (p.C % p.groups != 0) {
    return op_error(op, "groups=", p.groups, " does not divide in_channels=", p.C);
  }
  if (p.K % p.groups != 0) {
    return op_error(op, "groups=", p.groups, " does not divide out_channels=", p.K);
  }
  if (p.R <= 0 || p.S <= 0) {
    return op_error(op, "kernel_size must be positive, got (", p.R, ", ", p.S, ")");
  }
  if (p.mode == PaddingMode::Reflect &&
      (p.pad_t >= p.H || p.pad_b >= p.H || p.pad_l >= p.W || p.pad_r >= p.W) &&
      (p.pad_t + p.pad_b + p.pad_l + p.pad_r) > 0) {
    return op_error(op, "padding_mode='reflect' needs padding smaller than the input size, got padding (",
        p.pad_t, ", ", p.pad_b, ", ", p.pad_l, ", ", p.pad_r, ") for input (", p.H, ", ", p.W, ")");
  }
  if (p.mode == PaddingMode::Circular &&
      (p.pad_t > p.H || p.pad_b > p.H || p.pad_l > p.W || p.pad_r > p.W)) {
    return op_error(op, "padding_mode='circular' needs padding no larger than the input size, got padding (", p.pad_t,
        ", ", p.pad_b, ", ", p.pad_l, ", ", p.pad_r, ") for input (", p.H, ", ", p.W, ")");
  }
  if (p.mode == PaddingMode::Replicate && (p.H == 0 || p.W == 0) && p.pad_t + p.pad_b + p.pad_l + p.pad_r > 0) {
    return op_error(op, "padding_mode='replicate' needs a non-empty input");
  }
  const int64_t eh = p.dil_h * (p.R - 1) + 1, ew = p.dil_w * (p.S - 1) + 1;
  if (p.H + p.pad_t + p.pad_b < eh || p.W + p.pad_l + p.pad_r < ew) {
    return op_error(op, "kernel size (dilated) (", eh, ", ", ew, ") is larger than the padded input (",
        p.H + p.pad_t + p.pad_b, ", ", p.W + p.pad_l + p.pad_r, ")");
  }
  const int64_t oh = conv_out_size(p.H, p.pad_t, p.pad_b, p.R, p.stride_h, p.dil_h);
  const int64_t ow = conv_out_size(p.W, p.pad_l, p.pad_r, p.S, p.stride_w, p.dil_w);
  if (p.OH < 0 || p.OW < 0 || p.OH > oh || p.OW > ow) {
    return op_error(op, "grad_output spatial size (", p.OH, ", ", p.OW, ") does not fit the input size (", p.H, ", ",
        p.W, "), whose output size is (", oh, ", ", ow, ")");
  }
  return std::string();
}

}  // namespace fastconv
