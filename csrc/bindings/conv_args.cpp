#include "conv_args.h"

#include <ATen/Parallel.h>

#include "../common/conv_validate.h"
#include "tensor_checks.h"

namespace fastconv {

PaddingMode parse_padding_mode(c10::string_view mode, const char* op) {
  if (mode == "zeros") return PaddingMode::Zeros;
  if (mode == "reflect") return PaddingMode::Reflect;
  if (mode == "replicate") return PaddingMode::Replicate;
  if (mode == "circular") return PaddingMode::Circular;
  TORCH_CHECK_VALUE(false, "fastconv.", op,
                    ": padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', got '", mode, "'");
  return PaddingMode::Zeros;
}

ConvParams make_conv_params(at::IntArrayRef input_size, at::IntArrayRef weight_size, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                            c10::string_view padding_mode, int64_t out_h, int64_t out_w, const char* op) {
  check_list_size(input_size, 4, op, "input size");
  check_list_size(weight_size, 4, op, "weight size");
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 4, op, "padding (top, bottom, left, right)");
  check_list_size(dilation, 2, op, "dilation");
  ConvParams p;
  p.N = input_size[0];
  p.C = input_size[1];
  p.H = input_size[2];
  p.W = input_size[3];
  p.K = weight_size[0];
  p.R = weight_size[2];
  p.S = weight_size[3];
  p.stride_h = stride[0];
  p.stride_w = stride[1];
  p.pad_t = padding[0];
  p.pad_b = padding[1];
  p.pad_l = padding[2];
  p.pad_r = padding[3];
  p.dil_h = dilation[0];
  p.dil_w = dilation[1];
  p.groups = groups;
  p.mode = parse_padding_mode(padding_mode, op);
  p.num_threads = at::get_num_threads();
  TORCH_CHECK_VALUE(groups > 0, "fastconv.", op, ": groups must be positive, got ", groups);
  TORCH_CHECK_VALUE(p.C == weight_size[1] * groups, "fastconv.", op, ": input has ", p.C,
                    " channels but weight of shape ", weight_size, " with groups=", groups, " expects ",
                    weight_size[1] * groups, " channels");
  // Validate strides/dilation/padding before the formula uses them.
  p.OH = 0;
  p.OW = 0;
  std::string err = validate_conv(p, op);
  TORCH_CHECK_VALUE(err.empty(), err);
  p.OH = out_h >= 0 ? out_h : conv_out_size(p.H, p.pad_t, p.pad_b, p.R, p.stride_h, p.dil_h);
  p.OW = out_w >= 0 ? out_w : conv_out_size(p.W, p.pad_l, p.pad_r, p.S, p.stride_w, p.dil_w);
  err = validate_conv(p, op);
  TORCH_CHECK_VALUE(err.empty(), err);
  return p;
}

}  // namespace fastconv
