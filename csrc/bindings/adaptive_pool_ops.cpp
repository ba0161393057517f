// Schemas of the adaptive pooling ops and their CPU implementations. Backward ops are closed under
// differentiation (see adaptive_pool_autograd.cpp):
//   adaptive_avg_pool2d_backward is linear in grad_output and the adjoint of adaptive_avg_pool2d;
//   adaptive_max_pool2d_backward (scatter-add by indices) and adaptive_max_pool2d_gather are adjoints.
// The backward ops take the input's size and a channels_last flag instead of the input tensor, so
// autograd does not keep the input alive; the flag makes grad_input follow the input's layout even when
// grad_output cannot carry it (global pooling: (N, C, 1, 1) is dense in both layouts).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>

#include "../cpu/pool/adaptive_pool_kernels.h"
#include "adaptive_pool_args.h"

namespace fastconv {
namespace {

// Argument checks: adaptive_pool_args.cpp (shared with the CUDA bindings). Here: allocate and run the kernel.

at::Tensor adaptive_avg_pool2d_cpu(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_avg_pool2d";
  if (averages_an_empty_plane(input, output_size, check_floating, op)) {
    return at::full({input.size(0), input.size(1), 1, 1}, std::numeric_limits<double>::quiet_NaN(), input.options());
  }
  const auto [p, fmt] = plan_adaptive_pool2d(input, output_size, check_floating, op);
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_adaptive_avg_pool2d", [&] {
    cpu::adaptive_avg_pool_forward<scalar_t>(p, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>());
  });
  return y;
}

at::Tensor adaptive_avg_pool2d_backward_cpu(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                            bool channels_last) {
  if (averages_an_empty_plane_backward(grad_output, input_size, check_floating, "adaptive_avg_pool2d_backward")) {
    return at::zeros(input_size, grad_output.options());  // no elements
  }
  const auto [p, fmt] = plan_adaptive_avg_pool2d_backward(grad_output, input_size, channels_last, check_floating);
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  if (grad_output.numel() == 0) return gx.zero_();  // output_size 0: nothing reached the input
  const at::Tensor gy = grad_output.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "fastconv_adaptive_avg_pool2d_backward", [&] {
    cpu::adaptive_avg_pool_backward<scalar_t>(p, gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>());
  });
  return gx;
}

std::tuple<at::Tensor, at::Tensor> adaptive_max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef output_size) {
  const auto [p, fmt] = plan_adaptive_max_pool2d(input, output_size, check_floating);
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  at::Tensor idx = at::empty({p.N, p.C, p.OH, p.OW}, input.options().dtype(at::kLong).memory_format(fmt));
  if (y.numel() == 0) return {y, idx};
  const at::Tensor x = input.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_adaptive_max_pool2d", [&] {
    cpu::adaptive_max_pool_forward<scalar_t>(p, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                                             idx.mutable_data_ptr<int64_t>());
  });
  return {y, idx};
}

at::Tensor adaptive_max_pool2d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& indices,
                                            at::IntArrayRef input_size, bool channels_last) {
  const char* op = "adaptive_max_pool2d_backward";
  const auto [p, fmt] =
      plan_adaptive_max_pool2d_backward(grad_output, indices, input_size, channels_last, check_floating);
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  if (grad_output.numel() == 0) return gx.zero_();  // output_size 0: nothing reached the input
  const at::Tensor gy = grad_output.contiguous(fmt), idx = indices.contiguous(fmt);
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "fastconv_adaptive_max_pool2d_backward", [&] {
    ok = cpu::adaptive_max_pool_backward<scalar_t>(p, gy.const_data_ptr<scalar_t>(), idx.const_data_ptr<int64_t>(),
                                                   gx.mutable_data_ptr<scalar_t>());
  });
  TORCH_CHECK_INDEX(ok, "fastconv.", op, ": indices must lie in [0, ", p.H * p.W, ") (positions in an input plane of ",
                    p.H, "x", p.W, ")");
  return gx;
}

at::Tensor adaptive_max_pool2d_gather_cpu(const at::Tensor& input, const at::Tensor& indices) {
  const char* op = "adaptive_max_pool2d_gather";
  const auto [p, fmt] = plan_adaptive_max_pool2d_gather(input, indices, check_floating);
  at::Tensor y = at::empty(indices.sizes(), input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), idx = indices.contiguous(fmt);
  bool ok = true;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_adaptive_max_pool2d_gather", [&] {
    ok = cpu::adaptive_max_pool_gather<scalar_t>(p, x.const_data_ptr<scalar_t>(), idx.const_data_ptr<int64_t>(),
                                                 y.mutable_data_ptr<scalar_t>());
  });
  TORCH_CHECK_INDEX(ok, "fastconv.", op, ": indices must lie in [0, ", p.H * p.W, ") (positions in an input plane of ",
                    p.H, "x", p.W, ")");
  return y;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastconv, m) {
  m.def("adaptive_avg_pool2d(Tensor input, SymInt[2] output_size) -> Tensor");
  m.def("adaptive_avg_pool2d_backward(Tensor grad_output, SymInt[4] input_size, bool channels_last) -> Tensor");
  m.def("adaptive_max_pool2d(Tensor input, SymInt[2] output_size) -> (Tensor, Tensor)");
  m.def(
      "adaptive_max_pool2d_backward(Tensor grad_output, Tensor indices, SymInt[4] input_size, bool channels_last) "
      "-> Tensor");
  m.def("adaptive_max_pool2d_gather(Tensor input, Tensor indices) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastconv, CPU, m) {
  m.impl("adaptive_avg_pool2d", &adaptive_avg_pool2d_cpu);
  m.impl("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward_cpu);
  m.impl("adaptive_max_pool2d", &adaptive_max_pool2d_cpu);
  m.impl("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward_cpu);
  m.impl("adaptive_max_pool2d_gather", &adaptive_max_pool2d_gather_cpu);
}

}  // namespace fastconv
