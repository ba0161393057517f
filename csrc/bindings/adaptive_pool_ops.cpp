// Schemas of the adaptive pooling ops and their CPU implementations. Backward ops are closed under
// differentiation (see fastconv/ops/adaptive_pool.py):
//   adaptive_avg_pool2d_backward is linear in grad_output and the adjoint of adaptive_avg_pool2d;
//   adaptive_max_pool2d_backward (scatter-add by indices) and adaptive_max_pool2d_gather are adjoints.
// The backward ops take the input's size and a channels_last flag instead of the input tensor, so
// autograd does not keep the input alive; the flag makes grad_input follow the input's layout even when
// grad_output cannot carry it (global pooling: (N, C, 1, 1) is dense in both layouts).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "../common/adaptive_pool_params.h"
#include "../cpu/adaptive_pool_kernels.h"
#include "tensor_checks.h"

namespace fastconv {
namespace {

void check_activation(const at::Tensor& t, const char* op, const char* name) {
  check_dim(t, 4, op, name);
  check_floating(t, op, name);
}

void check_indices(const at::Tensor& indices, const at::Tensor& like, const char* like_name, const char* op) {
  check_dim(indices, 4, op, "indices");
  TORCH_CHECK_TYPE(indices.scalar_type() == at::kLong, "fastconv.", op, ": indices must be int64, got ",
                   indices.scalar_type());
  TORCH_CHECK(indices.device() == like.device(), "fastconv.", op, ": indices and ", like_name,
              " must be on the same device, got ", indices.device(), " and ", like.device());
}

AdaptivePoolParams make_params(at::IntArrayRef input_size, int64_t oh, int64_t ow, at::MemoryFormat fmt,
                               const char* op) {
  AdaptivePoolParams p;
  p.N = input_size[0];
  p.C = input_size[1];
  p.H = input_size[2];
  p.W = input_size[3];
  p.OH = oh;
  p.OW = ow;
  p.layout = fmt == at::MemoryFormat::ChannelsLast ? Layout::NHWC : Layout::NCHW;
  p.num_threads = at::get_num_threads();
  const std::string err = validate_adaptive_pool(p, op);
  TORCH_CHECK_VALUE(err.empty(), err);
  return p;
}

at::MemoryFormat backward_format(bool channels_last, const at::Tensor& a, const at::Tensor& b) {
  return channels_last ? at::MemoryFormat::ChannelsLast : activation_format(a, b);
}

at::Tensor adaptive_avg_pool2d_cpu(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_activation(input, op, "input");
  check_list_size(output_size, 2, op, "output_size");
  const auto fmt = activation_format(input, input);
  const AdaptivePoolParams p = make_params(input.sizes(), output_size[0], output_size[1], fmt, op);
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
  const char* op = "adaptive_avg_pool2d_backward";
  check_activation(grad_output, op, "grad_output");
  check_list_size(input_size, 4, op, "input_size");
  const auto fmt = backward_format(channels_last, grad_output, grad_output);
  const AdaptivePoolParams p = make_params(input_size, grad_output.size(2), grad_output.size(3), fmt, op);
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.C, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match input_size ", input_size);
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "fastconv_adaptive_avg_pool2d_backward", [&] {
    cpu::adaptive_avg_pool_backward<scalar_t>(p, gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>());
  });
  return gx;
}

std::tuple<at::Tensor, at::Tensor> adaptive_max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_max_pool2d";
  check_activation(input, op, "input");
  check_list_size(output_size, 2, op, "output_size");
  const auto fmt = activation_format(input, input);
  const AdaptivePoolParams p = make_params(input.sizes(), output_size[0], output_size[1], fmt, op);
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
  check_activation(grad_output, op, "grad_output");
  check_indices(indices, grad_output, "grad_output", op);
  check_list_size(input_size, 4, op, "input_size");
  TORCH_CHECK_VALUE(indices.sizes() == grad_output.sizes(), "fastconv.", op, ": indices of shape ",
                    indices.sizes(), " must match grad_output of shape ", grad_output.sizes());
  const auto fmt = backward_format(channels_last, grad_output, indices);
  const AdaptivePoolParams p = make_params(input_size, grad_output.size(2), grad_output.size(3), fmt, op);
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.C, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match input_size ", input_size);
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
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
  check_activation(input, op, "input");
  check_indices(indices, input, "input", op);
  TORCH_CHECK_VALUE(indices.size(0) == input.size(0) && indices.size(1) == input.size(1), "fastconv.", op,
                    ": indices of shape ", indices.sizes(), " do not match input of shape ", input.sizes(),
                    " in batch and channels");
  const auto fmt = activation_format(input, indices);
  const AdaptivePoolParams p = make_params(input.sizes(), indices.size(2), indices.size(3), fmt, op);
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
