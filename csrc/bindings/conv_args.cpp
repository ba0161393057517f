#include "conv_args.h"

#include <ATen/Parallel.h>

#include <vector>

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
  // Arguments that cannot change the result take their plain values, so the kernels never multiply by a
  // huge one: a stride along an axis with one output (or none), a dilation along a 1-wide kernel.
  if (p.OH <= 1) p.stride_h = 1;
  if (p.OW <= 1) p.stride_w = 1;
  if (p.R == 1) p.dil_h = 1;
  if (p.S == 1) p.dil_w = 1;
  return p;
}

namespace {

void check_bias(const at::Tensor& input, const std::optional<at::Tensor>& bias, int64_t out_channels,
                DtypeCheck check_dtype, const char* op) {
  if (!bias.has_value()) return;
  check_dtype(*bias, op, "bias");
  check_same_dtype_device(input, "input", *bias, "bias", op);
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == out_channels, "fastconv.", op, ": bias must have shape (",
                    out_channels, ",) to match out_channels, got ", bias->sizes());
}

// The backward ops take grad_output of exactly the shape conv2d gives for their arguments: any other is the
// gradient of no forward (torch's autograd rejects it too), and a smaller one used to be summed silently
// over the rows it has. (conv_transpose2d's backward pads its input to this shape: conv_autograd.cpp.)
void check_grad_output_shape(const at::Tensor& grad_output, const ConvParams& p, const char* op) {
  const int64_t expected[4] = {p.N, p.K, p.OH, p.OW};
  TORCH_CHECK_VALUE(grad_output.sizes() == at::IntArrayRef(expected), "fastconv.", op, ": grad_output of shape ",
                    grad_output.sizes(), " does not match the convolution's output shape ", at::IntArrayRef(expected),
                    " for input size (", p.N, ", ", p.C, ", ", p.H, ", ", p.W, ") and out_channels ", p.K);
}

Layout to_layout(at::MemoryFormat fmt) { return fmt == at::MemoryFormat::ChannelsLast ? Layout::NHWC : Layout::NCHW; }

ConvPlan with_format(ConvParams p, at::MemoryFormat fmt) {
  p.layout = to_layout(fmt);
  return {p, fmt};
}

// Output size of a transposed convolution along one axis (torch's formula), in 128 bits: the factors are
// bounded (arguments below 2^31, sizes by memory) but their products are not bounded inside int64.
__int128 transposed_out_size(int64_t in, int64_t stride, int64_t pad, int64_t k, int64_t dil, int64_t out_pad) {
  using Wide = __int128;
  return Wide(in - 1) * stride - Wide(2) * pad + Wide(dil) * (k - 1) + out_pad + 1;
}

// torch converts a transposed convolution's stride, padding, output_padding and dilation to int and
// fails on 2^31 or more; fastconv rejects them up front, naming the argument.
void check_transpose_arg_bound(at::IntArrayRef values, const char* op, const char* name) {
  for (const int64_t v : values)
    TORCH_CHECK_VALUE(v < (int64_t(1) << 31), "fastconv.", op, ": ", name, " must be smaller than 2^31, got ",
                      values);
}

void check_transpose_args(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                          int64_t groups, at::IntArrayRef dilation, DtypeCheck check_dtype, const char* op) {
  check_dim(input, 4, op, "input");
  check_dtype(input, op, "input");
  check_dim(weight, 4, op, "weight");
  check_dtype(weight, op, "weight");
  check_same_dtype_device(input, "input", weight, "weight", op);
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 2, op, "padding");
  check_list_size(output_padding, 2, op, "output_padding");
  check_list_size(dilation, 2, op, "dilation");
  check_transpose_arg_bound(stride, op, "stride");
  check_transpose_arg_bound(padding, op, "padding");
  check_transpose_arg_bound(output_padding, op, "output_padding");
  check_transpose_arg_bound(dilation, op, "dilation");
  for (int i = 0; i < 2; ++i) {
    TORCH_CHECK_VALUE(stride[i] > 0, "fastconv.", op, ": stride must be positive, got ", stride);
    TORCH_CHECK_VALUE(dilation[i] > 0, "fastconv.", op, ": dilation must be positive, got ", dilation);
    TORCH_CHECK_VALUE(padding[i] >= 0, "fastconv.", op, ": padding must be non-negative, got ", padding);
    TORCH_CHECK_VALUE(output_padding[i] >= 0, "fastconv.", op, ": output_padding must be non-negative, got ",
                      output_padding);
    TORCH_CHECK_VALUE(output_padding[i] < stride[i] || output_padding[i] < dilation[i], "fastconv.", op,
                      ": output_padding must be smaller than either stride or dilation, got output_padding ",
                      output_padding, ", stride ", stride, ", dilation ", dilation);
  }
  TORCH_CHECK_VALUE(groups > 0, "fastconv.", op, ": groups must be positive, got ", groups);
  const int64_t cin = weight.size(0);
  TORCH_CHECK_VALUE(input.size(1) == cin, "fastconv.", op, ": input has ", input.size(1),
                    " channels but weight of shape ", weight.sizes(), " expects in_channels=", cin,
                    " (transposed convolution weight is (in_channels, out_channels/groups, kH, kW))");
  TORCH_CHECK_VALUE(cin % groups == 0, "fastconv.", op, ": groups=", groups, " does not divide in_channels=", cin);
  TORCH_CHECK_VALUE(weight.size(0) > 0 && weight.size(1) > 0, "fastconv.", op,
                    ": weight must have at least one input and one output channel, got weight of shape ",
                    weight.sizes());
  TORCH_CHECK_VALUE(weight.size(2) > 0 && weight.size(3) > 0, "fastconv.", op,
                    ": kernel_size must be positive, got weight of shape ", weight.sizes());
  TORCH_CHECK_VALUE(input.size(2) > 0 && input.size(3) > 0, "fastconv.", op,
                    ": input spatial size must be positive, got input of shape ", input.sizes());
  check_bias(input, bias, weight.size(1) * groups, check_dtype, op);
}

}  // namespace

ConvPlan plan_conv2d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                     at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                     c10::string_view padding_mode, DtypeCheck check_dtype) {
  const char* op = "conv2d";
  check_dim(input, 4, op, "input");
  check_dtype(input, op, "input");
  check_dim(weight, 4, op, "weight");
  check_dtype(weight, op, "weight");
  TORCH_CHECK_VALUE(weight.size(0) > 0, "fastconv.", op, ": weight must have at least one output channel, got weight of "
                    "shape ", weight.sizes());
  check_same_dtype_device(input, "input", weight, "weight", op);
  check_bias(input, bias, weight.size(0), check_dtype, op);
  const ConvParams p = make_conv_params(input.sizes(), weight.sizes(), stride, padding, dilation, groups,
                                        padding_mode, -1, -1, op);
  return with_format(p, activation_format(input, weight));
}

ConvPlan plan_conv2d_backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                                    at::IntArrayRef input_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                    at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode,
                                    DtypeCheck check_dtype) {
  const char* op = "conv2d_backward_input";
  check_dim(grad_output, 4, op, "grad_output");
  check_dtype(grad_output, op, "grad_output");
  check_dim(weight, 4, op, "weight");
  check_dtype(weight, op, "weight");
  check_same_dtype_device(grad_output, "grad_output", weight, "weight", op);
  const ConvParams p = make_conv_params(input_size, weight.sizes(), stride, padding, dilation, groups, padding_mode,
                                        -1, -1, op);
  check_grad_output_shape(grad_output, p, op);
  return with_format(p, activation_format(grad_output, weight));
}

ConvPlan plan_conv2d_backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                                     at::IntArrayRef weight_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                     at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode,
                                     DtypeCheck check_dtype) {
  const char* op = "conv2d_backward_weight";
  check_dim(grad_output, 4, op, "grad_output");
  check_dtype(grad_output, op, "grad_output");
  check_dim(input, 4, op, "input");
  check_dtype(input, op, "input");
  check_same_dtype_device(grad_output, "grad_output", input, "input", op);
  const ConvParams p = make_conv_params(input.sizes(), weight_size, stride, padding, dilation, groups, padding_mode,
                                        -1, -1, op);
  check_grad_output_shape(grad_output, p, op);
  return with_format(p, activation_format(input, grad_output));
}

ConvPlan plan_conv_backward_bias(const at::Tensor& grad_output, DtypeCheck check_dtype) {
  const char* op = "conv_backward_bias";
  check_dim(grad_output, 4, op, "grad_output");
  check_dtype(grad_output, op, "grad_output");
  ConvParams p;
  p.N = grad_output.size(0);
  p.K = grad_output.size(1);
  p.OH = grad_output.size(2);
  p.OW = grad_output.size(3);
  p.num_threads = at::get_num_threads();
  return with_format(p, activation_format(grad_output, grad_output));
}

ConvPlan plan_conv_transpose2d(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef output_padding, int64_t groups,
                               at::IntArrayRef dilation, DtypeCheck check_dtype) {
  const char* op = "conv_transpose2d";
  check_transpose_args(input, weight, bias, stride, padding, output_padding, groups, dilation, check_dtype, op);
  const int64_t N = input.size(0), H = input.size(2), W = input.size(3);
  const int64_t cout = weight.size(1) * groups;
  const __int128 oh_wide = transposed_out_size(H, stride[0], padding[0], weight.size(2), dilation[0], output_padding[0]);
  const __int128 ow_wide = transposed_out_size(W, stride[1], padding[1], weight.size(3), dilation[1], output_padding[1]);
  TORCH_CHECK_VALUE(oh_wide < kMaxConvSize && ow_wide < kMaxConvSize, "fastconv.", op,
                    ": the output size must be smaller than 2^48 along each axis, for input spatial size (", H, ", ",
                    W, "), stride ", stride, ", dilation ", dilation, " and kernel (", weight.size(2), ", ",
                    weight.size(3), ")");
  const int64_t oh = int64_t(oh_wide), ow = int64_t(ow_wide);
  TORCH_CHECK_VALUE(oh > 0 && ow > 0, "fastconv.", op, ": output size (", oh, ", ", ow,
                    ") is not positive for input spatial size (", H, ", ", W, "), padding ", padding,
                    " and kernel (", weight.size(2), ", ", weight.size(3), ")");
  // The convolution whose input-gradient is computed: input (N, Cout, oh, ow), output (N, Cin, H, W).
  const std::vector<int64_t> conv_input{N, cout, oh, ow};
  const std::vector<int64_t> pad4{padding[0], padding[0], padding[1], padding[1]};
  const ConvParams p =
      make_conv_params(conv_input, weight.sizes(), stride, pad4, dilation, groups, "zeros", H, W, op);
  return with_format(p, activation_format(input, weight));
}

}  // namespace fastconv
