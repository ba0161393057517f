// Transposed convolution (a.k.a. "deconvolution"): schema and CPU implementation.
//
// With weight (Cin, Cout/groups, R, S), conv_transpose2d(x, w) is exactly the input-gradient of the
// ordinary convolution that maps Cout -> Cin channels with the same weight tensor (whose layout
// (K, C/groups, R, S) then reads K = Cin, C = Cout):
//     conv_transpose2d(x, w) = conv_backward_input(grad_output = x, w, input_size = (N, Cout, Hout, Wout))
//     Hout = (H - 1) * stride - 2 * pad + dil * (R - 1) + output_padding + 1.
// So no new math kernel: we reuse cpu::conv_backward_input and add the bias afterwards.
// When output_padding >= stride (allowed if < dilation), the convolution formula applied to Hout gives
// more rows than H; conv_backward_input accepts such a smaller grad_output (p.OH < formula).
// Autograd (fastconv/ops/conv_transpose.py) is built from conv2d / conv2d_backward_weight / conv_backward_bias.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../cpu/bias_add.h"
#include "../cpu/conv_kernels.h"
#include "conv_args.h"
#include "tensor_checks.h"

namespace fastconv {
namespace {

// Output size of a transposed convolution along one axis (torch's formula).
int64_t transposed_out_size(int64_t in, int64_t stride, int64_t pad, int64_t k, int64_t dil, int64_t out_pad) {
  return (in - 1) * stride - 2 * pad + dil * (k - 1) + out_pad + 1;
}

void check_transpose_args(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef output_padding,
                          int64_t groups, at::IntArrayRef dilation, const char* op) {
  check_dim(input, 4, op, "input");
  check_floating(input, op, "input");
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
                    " channels but weight of shape ", weight.sizes(),
                    " expects in_channels=", cin, " (transposed convolution weight is (in_channels, "
                    "out_channels/groups, kH, kW))");
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

at::Tensor conv_transpose2d_cpu(const at::Tensor& input, const at::Tensor& weight,
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
  // The convolution whose input-gradient we compute: input (N, Cout, oh, ow), output (N, Cin, H, W).
  const std::vector<int64_t> conv_input{N, cout, oh, ow};
  const std::vector<int64_t> pad4{padding[0], padding[0], padding[1], padding[1]};
  ConvParams p = make_conv_params(conv_input, weight.sizes(), stride, pad4, dilation, groups, "zeros", H, W, op);
  const auto fmt = activation_format(input, weight);
  p.layout = fmt == at::MemoryFormat::ChannelsLast ? Layout::NHWC : Layout::NCHW;
  at::Tensor y = at::empty({N, cout, oh, ow}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), w = weight.contiguous();
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_conv_transpose2d", [&] {
    cpu::conv_backward_input<scalar_t>(p, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                       y.mutable_data_ptr<scalar_t>());
    if (b.defined())
      cpu::bias_add<scalar_t>(N, cout, oh * ow, p.layout, b.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                              p.num_threads);
  });
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastconv, m) {
  m.def(
      "conv_transpose2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[2] padding, "
      "int[2] output_padding, int groups, int[2] dilation) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastconv, CPU, m) { m.impl("conv_transpose2d", &conv_transpose2d_cpu); }

}  // namespace fastconv
