// Schemas of the convolution ops and their CPU implementations.
// conv2d's backward is itself made of these ops (see conv_autograd.cpp), so any order of
// derivative works: conv2d_backward_input is the adjoint of conv2d in its input, conv2d_backward_weight
// the adjoint in its weight.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../cpu/conv/conv_kernels.h"
#include "conv_args.h"
#include "tensor_checks.h"
#include "weight_layout.h"
#include "winograd_weight_cache.h"

namespace fastconv {
namespace {

// Argument checks live in conv_args.cpp (shared with the CUDA bindings); here: allocate and run the kernel.

at::Tensor conv2d_cpu(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                      at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                      c10::string_view padding_mode) {
  const auto [p, fmt] = plan_conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode,
                                    check_floating);
  at::Tensor y = at::empty({p.N, p.K, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const bool rsc = is_rsc_weight(weight);  // passed as it is (ConvParams::weight_rsc)
  const at::Tensor x = input.contiguous(fmt), w = rsc ? weight : dense_weight(weight);
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  ConvParams q = p;
  q.weight_rsc = rsc;
  const at::Tensor transformed = cached_winograd_weight(q, w, weight);  // inference: kept between calls
  if (transformed.defined()) q.winograd_weight = transformed.const_data_ptr();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_conv2d", [&] {
    cpu::conv_forward<scalar_t>(q, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                b.defined() ? b.const_data_ptr<scalar_t>() : nullptr, y.mutable_data_ptr<scalar_t>());
  });
  return y;
}

at::Tensor conv2d_backward_input_cpu(const at::Tensor& grad_output, const at::Tensor& weight,
                                     at::IntArrayRef input_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                     at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  const auto [p, fmt] = plan_conv2d_backward_input(grad_output, weight, input_size, stride, padding, dilation, groups,
                                                   padding_mode, check_floating);
  at::Tensor gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const bool rsc = is_rsc_weight(weight);  // passed as it is (ConvParams::weight_rsc)
  const at::Tensor gy = grad_output.contiguous(fmt), w = rsc ? weight : dense_weight(weight);
  ConvParams q = p;
  q.weight_rsc = rsc;
  AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "fastconv_conv2d_backward_input", [&] {
    cpu::conv_backward_input<scalar_t>(q, gy.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                       gx.mutable_data_ptr<scalar_t>());
  });
  return gx;
}

at::Tensor conv2d_backward_weight_cpu(const at::Tensor& grad_output, const at::Tensor& input,
                                      at::IntArrayRef weight_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                      at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  const auto [p, fmt] = plan_conv2d_backward_weight(grad_output, input, weight_size, stride, padding, dilation,
                                                    groups, padding_mode, check_floating);
  at::Tensor gw = at::empty(weight_size, input.options());
  if (gw.numel() == 0) return gw;
  const at::Tensor x = input.contiguous(fmt), gy = grad_output.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_conv2d_backward_weight", [&] {
    cpu::conv_backward_weight<scalar_t>(p, x.const_data_ptr<scalar_t>(), gy.const_data_ptr<scalar_t>(),
                                        gw.mutable_data_ptr<scalar_t>());
  });
  return gw;
}

at::Tensor conv_backward_bias_cpu(const at::Tensor& grad_output) {
  const auto [p, fmt] = plan_conv_backward_bias(grad_output, check_floating);
  at::Tensor gb = at::empty({p.K}, grad_output.options());
  if (gb.numel() == 0) return gb;
  const at::Tensor gy = grad_output.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "fastconv_conv_backward_bias", [&] {
    cpu::conv_backward_bias<scalar_t>(p, gy.const_data_ptr<scalar_t>(), gb.mutable_data_ptr<scalar_t>());
  });
  return gb;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastconv, m) {
  m.def(
      "conv2d(Tensor input, Tensor weight, Tensor? bias, int[2] stride, int[4] padding, int[2] dilation, "
      "int groups, str padding_mode) -> Tensor");
  m.def(
      "conv2d_backward_input(Tensor grad_output, Tensor weight, SymInt[4] input_size, int[2] stride, "
      "int[4] padding, int[2] dilation, int groups, str padding_mode) -> Tensor");
  m.def(
      "conv2d_backward_weight(Tensor grad_output, Tensor input, SymInt[4] weight_size, int[2] stride, "
      "int[4] padding, int[2] dilation, int groups, str padding_mode) -> Tensor");
  m.def("conv_backward_bias(Tensor grad_output) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastconv, CPU, m) {
  m.impl("conv2d", &conv2d_cpu);
  m.impl("conv2d_backward_input", &conv2d_backward_input_cpu);
  m.impl("conv2d_backward_weight", &conv2d_backward_weight_cpu);
  m.impl("conv_backward_bias", &conv_backward_bias_cpu);
}

}  // namespace fastconv
