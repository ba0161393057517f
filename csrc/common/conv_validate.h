// Validation of convolution parameters, shared by every backend. Returns an empty string when the
// parameters are valid, else a message that names the offending argument and its value.
#pragma once

#include <sstream>
#include <string>

#include "conv_params.h"

namespace fastconv {

inline std::string validate_conv(const ConvParams& p, const char* op) {
  std::ostringstream e;
  e << "fastconv." << op << ": ";
  if (p.stride_h <= 0 || p.stride_w <= 0) {
    e << "stride must be positive, got (" << p.stride_h << ", " << p.stride_w << ")";
    return e.str();
  }
  if (p.dil_h <= 0 || p.dil_w <= 0) {
    e << "dilation must be positive, got (" << p.dil_h << ", " << p.dil_w << ")";
    return e.str();
  }
  if (p.pad_t < 0 || p.pad_b < 0 || p.pad_l < 0 || p.pad_r < 0) {
    e << "padding must be non-negative, got (" << p.pad_t << ", " << p.pad_b << ", " << p.pad_l << ", "
      << p.pad_r << ")";
    return e.str();
  }
  if (p.groups <= 0) {
    e << "groups must be positive, got " << p.groups;
    return e.str();
  }
  if (p.C % p.groups != 0) {
    e << "groups=" << p.groups << " does not divide in_channels=" << p.C;
    return e.str();
  }
  if (p.K % p.groups != 0) {
    e << "groups=" << p.groups << " does not divide out_channels=" << p.K;
    return e.str();
  }
  if (p.R <= 0 || p.S <= 0) {
    e << "kernel_size must be positive, got (" << p.R << ", " << p.S << ")";
    return e.str();
  }
  if (p.mode == PaddingMode::Reflect &&
      (p.pad_t >= p.H || p.pad_b >= p.H || p.pad_l >= p.W || p.pad_r >= p.W) &&
      (p.pad_t + p.pad_b + p.pad_l + p.pad_r) > 0) {
    e << "padding_mode='reflect' needs padding smaller than the input size, got padding (" << p.pad_t
      << ", " << p.pad_b << ", " << p.pad_l << ", " << p.pad_r << ") for input (" << p.H << ", " << p.W
      << ")";
    return e.str();
  }
  if (p.mode == PaddingMode::Circular &&
      (p.pad_t > p.H || p.pad_b > p.H || p.pad_l > p.W || p.pad_r > p.W)) {
    e << "padding_mode='circular' needs padding no larger than the input size, got padding (" << p.pad_t
      << ", " << p.pad_b << ", " << p.pad_l << ", " << p.pad_r << ") for input (" << p.H << ", " << p.W
      << ")";
    return e.str();
  }
  if (p.mode == PaddingMode::Replicate && (p.H == 0 || p.W == 0) && p.pad_t + p.pad_b + p.pad_l + p.pad_r > 0) {
    e << "padding_mode='replicate' needs a non-empty input";
    return e.str();
  }
  const int64_t eh = p.dil_h * (p.R - 1) + 1, ew = p.dil_w * (p.S - 1) + 1;
  if (p.H + p.pad_t + p.pad_b < eh || p.W + p.pad_l + p.pad_r < ew) {
    e << "kernel size (dilated) (" << eh << ", " << ew << ") is larger than the padded input ("
      << p.H + p.pad_t + p.pad_b << ", " << p.W + p.pad_l + p.pad_r << ")";
    return e.str();
  }
  const int64_t oh = conv_out_size(p.H, p.pad_t, p.pad_b, p.R, p.stride_h, p.dil_h);
  const int64_t ow = conv_out_size(p.W, p.pad_l, p.pad_r, p.S, p.stride_w, p.dil_w);
  if (p.OH < 0 || p.OW < 0 || p.OH > oh || p.OW > ow) {
    e << "grad_output spatial size (" << p.OH << ", " << p.OW << ") does not fit the input size ("
      << p.H << ", " << p.W << "), whose output size is (" << oh << ", " << ow << ")";
    return e.str();
  }
  return std::string();
}

}  // namespace fastconv
