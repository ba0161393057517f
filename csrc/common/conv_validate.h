// Validation of convolution parameters, shared by every backend. Returns an empty string when the
// parameters are valid, else a message that names the offending argument and its value.
#pragma once

#include <cstdint>
#include <string>

#include "conv_params.h"
#include "op_error.h"

namespace fastconv {

// Bounds that keep the kernels' int64 arithmetic exact without capping what torch accepts: sizes below
// 2^48 (no tensor is larger), stride / padding / dilation below 2^62, and the padded input and dilated
// kernel extents (computed in 128 bits here) below 2^62, so o * stride - pad + r * dil never overflows.
// torch takes a stride, padding or dilation of 2^31 or more (a 1x1 kernel with dilation 2^40, a stride
// past the input), so the old 2^31 cap rejected valid calls.
inline constexpr int64_t kMaxConvSize = int64_t(1) << 48;
inline constexpr int64_t kMaxConvArg = int64_t(1) << 62;

inline std::string validate_conv(const ConvParams& p, const char* op) {
  const struct { const char* name; int64_t value, limit; const char* limit_text; } bounds[] = {
      {"batch size", p.N, kMaxConvSize, "2^48"}, {"in_channels", p.C, kMaxConvSize, "2^48"},
      {"input height", p.H, kMaxConvSize, "2^48"}, {"input width", p.W, kMaxConvSize, "2^48"},
      {"out_channels", p.K, kMaxConvSize, "2^48"}, {"kernel height", p.R, kMaxConvSize, "2^48"},
      {"kernel width", p.S, kMaxConvSize, "2^48"},
      {"stride", p.stride_h, kMaxConvArg, "2^62"}, {"stride", p.stride_w, kMaxConvArg, "2^62"},
      {"padding", p.pad_t, kMaxConvArg, "2^62"}, {"padding", p.pad_b, kMaxConvArg, "2^62"},
      {"padding", p.pad_l, kMaxConvArg, "2^62"}, {"padding", p.pad_r, kMaxConvArg, "2^62"},
      {"dilation", p.dil_h, kMaxConvArg, "2^62"}, {"dilation", p.dil_w, kMaxConvArg, "2^62"}};
  for (const auto& b : bounds) {
    if (b.value >= b.limit) {
      return op_error(op, b.name, " must be smaller than ", b.limit_text, ", got ", b.value);
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
  using Wide = __int128;  // exact for the bounded values above
  const Wide eh = Wide(p.dil_h) * (p.R - 1) + 1, ew = Wide(p.dil_w) * (p.S - 1) + 1;
  const Wide ph = Wide(p.H) + p.pad_t + p.pad_b, pw = Wide(p.W) + p.pad_l + p.pad_r;
  if (ph < eh || pw < ew) {
    // A dilated extent past int64 is shown saturated; torch also rejects these (the kernel cannot fit).
    const auto show = [](Wide v) { return v > Wide(INT64_MAX) ? INT64_MAX : int64_t(v); };
    return op_error(op, "kernel size (dilated) (", show(eh), ", ", show(ew), ") is larger than the padded input (",
        show(ph), ", ", show(pw), ")");
  }
  if ((p.H == 0 || p.W == 0) && p.N > 0 && p.C > 0) {  // torch: only the batch or the channels may be empty
    return op_error(op, "input has an empty spatial dimension; only zero batch or zero channel inputs are supported, "
        "got (N, C, H, W) = (", p.N, ", ", p.C, ", ", p.H, ", ", p.W, ")");
  }
  if (ph >= kMaxConvArg || pw >= kMaxConvArg) {
    return op_error(op, "the padded input (", int64_t(ph), ", ", int64_t(pw), ") must be smaller than 2^62");
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
