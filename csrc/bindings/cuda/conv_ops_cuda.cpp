// CUDA implementations of the convolution ops (schemas in ../conv_ops.cpp and ../conv_transpose_ops.cpp).
// Same argument checks and output layouts as the CPU implementations; work runs on the current stream of
// the input's device. conv_transpose2d is conv_backward_input of the Cout -> Cin convolution plus the bias
// (see ../conv_transpose_ops.cpp).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <vector>

#include "../../cuda/conv_kernels.cuh"
#include "../conv_args.h"
#include "cuda_op_utils.h"

namespace fastconv {
namespace {

using namespace cuda_ops;

cuda::ConvOptions conv_options() {
  cuda::ConvOptions o;
  o.allow_tf32 = at::globalContext().allowTF32CuDNN();
  return o;
}

at::Tensor conv2d_cuda(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                       c10::string_view padding_mode) {
  const char* op = "conv2d";
  check_activation_cuda(input, op, "input");
  check_dim(weight, 4, op, "weight");
  check_same_dtype_device(input, "input", weight, "weight", op);
  if (bias.has_value()) {
    check_same_dtype_device(input, "input", *bias, "bias", op);
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == weight.size(0), "fastconv.", op,
                      ": bias must have shape (", weight.size(0), ",) to match out_channels, got ", bias->sizes());
  }
  ConvParams p = make_conv_params(input.sizes(), weight.sizes(), stride, padding, dilation, groups, padding_mode,
                                  -1, -1, op);
  const auto fmt = activation_format(input, weight);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.K, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), w = weight.contiguous();
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  const auto opt = conv_options();
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_forward<T>(p, cptr<T>(x), cptr<T>(w), cptr_or_null<T>(b), mptr<T>(y), opt, current_stream()); });
  });
  return y;
}

at::Tensor conv2d_backward_input_cuda(const at::Tensor& grad_output, const at::Tensor& weight,
                                      at::IntArrayRef input_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                      at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  const char* op = "conv2d_backward_input";
  check_activation_cuda(grad_output, op, "grad_output");
  check_dim(weight, 4, op, "weight");
  check_same_dtype_device(grad_output, "grad_output", weight, "weight", op);
  ConvParams p = make_conv_params(input_size, weight.sizes(), stride, padding, dilation, groups, padding_mode,
                                  grad_output.size(2), grad_output.size(3), op);
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.K, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match batch ", p.N,
                    " and out_channels ", p.K);
  const auto fmt = activation_format(grad_output, weight);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt), w = weight.contiguous();
  const auto opt = conv_options();
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_backward_input<T>(p, cptr<T>(gy), cptr<T>(w), mptr<T>(gx), opt, current_stream()); });
  });
  return gx;
}

at::Tensor conv2d_backward_weight_cuda(const at::Tensor& grad_output, const at::Tensor& input,
                                       at::IntArrayRef weight_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                       at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  const char* op = "conv2d_backward_weight";
  check_activation_cuda(grad_output, op, "grad_output");
  check_activation_cuda(input, op, "input");
  check_same_dtype_device(grad_output, "grad_output", input, "input", op);
  ConvParams p = make_conv_params(input.sizes(), weight_size, stride, padding, dilation, groups, padding_mode,
                                  grad_output.size(2), grad_output.size(3), op);
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.K, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match batch ", p.N,
                    " and out_channels ", p.K);
  const auto fmt = activation_format(input, grad_output);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor gw = at::empty(weight_size, input.options());
  if (gw.numel() == 0) return gw;
  if (p.N == 0 || p.OH == 0 || p.OW == 0) return gw.zero_();
  const at::Tensor x = input.contiguous(fmt), gy = grad_output.contiguous(fmt);
  const auto opt = conv_options();
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_backward_weight<T>(p, cptr<T>(x), cptr<T>(gy), mptr<T>(gw), opt, current_stream()); });
  });
  return gw;
}

at::Tensor conv_backward_bias_cuda(const at::Tensor& grad_output) {
  const char* op = "conv_backward_bias";
  check_activation_cuda(grad_output, op, "grad_output");
  ConvParams p;
  p.N = grad_output.size(0);
  p.K = grad_output.size(1);
  p.OH = grad_output.size(2);
  p.OW = grad_output.size(3);
  const auto fmt = activation_format(grad_output, grad_output);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gb = at::empty({p.K}, grad_output.options());
  if (gb.numel() == 0) return gb;
  const at::Tensor gy = grad_output.contiguous(fmt);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_backward_bias<T>(p, cptr<T>(gy), mptr<T>(gb), current_stream()); });
  });
  return gb;
}

// ---- transposed convolution (argument checks mirror ../conv_transpose_ops.cpp, with the CUDA dtypes) ----

int64_t transposed_out_size(int64_t in, int64_t stride, int64_t pad, int64_t k, int64_t dil, int64_t out_pad) {
  return (in - 1) * stride - 2 * pad + dil * (k - 1) + out_pad + 1;
}

void check_transpose_args(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                          int64_t groups, at::IntArrayRef dilation, const char* op) {
  check_activation_cuda(input, op, "input");
  check_dim(weight, 4, op, "weight");
  check_same_dtype_device(input, "input", weight, "weight", op);
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 2, op, "padding");
  check_list_size(output_padding, 2, op, "output_padding");
  check_list_size(dilation, 2, op, "dilation");
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
  TORCH_CHECK_VALUE(weight.size(2) > 0 && weight.size(3) > 0, "fastconv.", op,
                    ": kernel_size must be positive, got weight of shape ", weight.sizes());
  TORCH_CHECK_VALUE(input.size(2) > 0 && input.size(3) > 0, "fastconv.", op,
                    ": input spatial size must be positive, got input of shape ", input.sizes());
  if (bias.has_value()) {
    check_same_dtype_device(input, "input", *bias, "bias", op);
    const int64_t cout = weight.size(1) * groups;
    TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == cout, "fastconv.", op, ": bias must have shape (", cout,
                      ",) to match out_channels, got ", bias->sizes());
  }
}

at::Tensor conv_transpose2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef output_padding, int64_t groups,
                                 at::IntArrayRef dilation) {
  const char* op = "conv_transpose2d";
  check_transpose_args(input, weight, bias, stride, padding, output_padding, groups, dilation, op);
  const int64_t N = input.size(0), H = input.size(2), W = input.size(3);
  const int64_t cout = weight.size(1) * groups;
  const int64_t oh = transposed_out_size(H, stride[0], padding[0], weight.size(2), dilation[0], output_padding[0]);
  const int64_t ow = transposed_out_size(W, stride[1], padding[1], weight.size(3), dilation[1], output_padding[1]);
  TORCH_CHECK_VALUE(oh > 0 && ow > 0, "fastconv.", op, ": output size (", oh, ", ", ow,
                    ") is not positive for input spatial size (", H, ", ", W, "), padding ", padding,
                    " and kernel (", weight.size(2), ", ", weight.size(3), ")");
  const std::vector<int64_t> conv_input{N, cout, oh, ow};
  const std::vector<int64_t> pad4{padding[0], padding[0], padding[1], padding[1]};
  ConvParams p = make_conv_params(conv_input, weight.sizes(), stride, pad4, dilation, groups, "zeros", H, W, op);
  const auto fmt = activation_format(input, weight);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({N, cout, oh, ow}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), w = weight.contiguous();
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  const auto opt = conv_options();
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      const cudaStream_t stream = current_stream();
      cuda::conv_backward_input<T>(p, cptr<T>(x), cptr<T>(w), mptr<T>(y), opt, stream);
      if (b.defined()) cuda::bias_add<T>(N, cout, oh * ow, p.layout, cptr<T>(b), mptr<T>(y), stream);
    });
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastconv, CUDA, m) {
  m.impl("conv2d", &conv2d_cuda);
  m.impl("conv2d_backward_input", &conv2d_backward_input_cuda);
  m.impl("conv2d_backward_weight", &conv2d_backward_weight_cuda);
  m.impl("conv_backward_bias", &conv_backward_bias_cuda);
  m.impl("conv_transpose2d", &conv_transpose2d_cuda);
}

}  // namespace fastconv
