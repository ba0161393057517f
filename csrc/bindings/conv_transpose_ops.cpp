// Transposed convolution (a.k.a. "deconvolution"): schema and CPU implementation.
//
// With weight (Cin, Cout/groups, R, S), conv_transpose2d(x, w) is exactly the input-gradient of the
// ordinary convolution that maps Cout -> Cin channels with the same weight tensor (whose layout
// (K, C/groups, R, S) then reads K = Cin, C = Cout):
//     conv_transpose2d(x, w) = conv_backward_input(grad_output = x, w, input_size = (N, Cout, Hout, Wout))
//     Hout = (H - 1) * stride - 2 * pad + dil * (R - 1) + output_padding + 1.
// So no new math kernel: we reuse cpu::conv_backward_input and add the bias afterwards.
// When output_padding >= stride (allowed if < dilation), the convolution formula applied to Hout gives
// more rows than H; the kernel cpu::conv_backward_input accepts such a smaller grad_output (p.OH < formula),
// the op conv2d_backward_input does not (it takes exactly the formula's size).
// Autograd (conv_autograd.cpp) is built from conv2d / conv2d_backward_weight / conv_backward_bias.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "../cpu/conv/conv_kernels.h"
#include "conv_args.h"
#include "tensor_checks.h"
#include "weight_layout.h"

namespace fastconv {
namespace {

at::Tensor conv_transpose2d_cpu(const at::Tensor& input, const at::Tensor& weight,
                                const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                at::IntArrayRef padding, at::IntArrayRef output_padding, int64_t groups,
                                at::IntArrayRef dilation) {
  // Checks and the shape arithmetic: conv_args.cpp (shared with the CUDA binding).
  const auto [p, fmt] = plan_conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                              check_floating);
  at::Tensor y = at::empty({p.N, p.C, p.H, p.W}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  // A channels_last weight (C_in, R, S, C_out / groups) is the input gradient's (K, R, S, C / groups): passed as
  // it is (ConvParams::weight_rsc), as conv2d_backward_input passes it.
  const bool rsc = is_rsc_weight(weight);
  const at::Tensor x = input.contiguous(fmt), w = rsc ? weight : dense_weight(weight);
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  ConvParams q = p;
  q.weight_rsc = rsc;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_conv_transpose2d", [&] {
    cpu::conv_transpose_forward<scalar_t>(q, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                                          b.defined() ? b.const_data_ptr<scalar_t>() : nullptr,
                                          y.mutable_data_ptr<scalar_t>());
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
