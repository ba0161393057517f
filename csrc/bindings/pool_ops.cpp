// Schemas of the pooling ops and their CPU implementations. Backward passes are themselves these ops
// (see pool_autograd.cpp), so derivatives of any order exist:
//   max_pool2d_with_indices -> max_pool2d_backward_window (max_pool2d_backward, which knows the window)
//   max_pool2d (values only, for inference) -> through max_pool2d_with_indices where a gradient is wanted
//   max_pool2d_backward (scatter-add by indices) <-adjoint-> max_pool2d_gather
//   max_unpool2d (scatter by indices) -> max_pool2d_gather
//   avg_pool2d <-adjoint-> avg_pool2d_backward
// Indices are int64, flattened per (n, c) plane of the un-pooled side (ih * W + iw), as torch's.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <tuple>

#include "../common/pool_params.h"
#include "../cpu/pool/pool_kernels.h"
#include "../cpu/pool/pool_window.h"
#include "pool_window_args.h"
#include "tensor_checks.h"

namespace fastconv {
namespace {

void check_activation(const at::Tensor& t, const char* op, const char* name) {
  check_dim(t, 4, op, name);
  check_floating(t, op, name);
}

void check_indices(const at::Tensor& ind, const at::Tensor& like, const char* like_name, const char* op) {
  check_dim(ind, 4, op, "indices");
  TORCH_CHECK_TYPE(ind.scalar_type() == at::kLong, "fastconv.", op, ": indices must be int64, got ",
                   ind.scalar_type());
  TORCH_CHECK(ind.device() == like.device(), "fastconv.", op, ": indices and ", like_name,
              " must be on the same device, got ", ind.device(), " and ", like.device());
  TORCH_CHECK_VALUE(ind.sizes() == like.sizes(), "fastconv.", op, ": indices of shape ", ind.sizes(),
                    " must have the shape of ", like_name, " ", like.sizes());
}

// A RuntimeError, as torch's (its max_unpool forward and the gathers of its backward raise one): a ValueError
// would escape `except RuntimeError` where it comes out of a backward pass, unwidened by the functional API.
void raise_bad_index(const cpu::IndexCheck& r, const PoolParams& p, const char* op) {
  TORCH_CHECK(r.ok, "fastconv.", op, ": indices: found an invalid index ", r.value,
                    " outside the plane of size ", p.H, "x", p.W, " (valid range [0, ", p.H * p.W, "))");
}

// Threads for a kernel touching `elements` values (see cpu::pool_thread_count: serial for small work).
int pool_threads(int64_t elements) { return cpu::pool_thread_count(elements, at::get_num_threads()); }

Layout to_layout(at::MemoryFormat fmt) { return fmt == at::MemoryFormat::ChannelsLast ? Layout::NHWC : Layout::NCHW; }

// Window parameters of a pooling of an input of spatial size (H, W); sets and validates the output size.
PoolParams make_pool_params(int64_t N, int64_t C, int64_t H, int64_t W, at::IntArrayRef kernel,
                            at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode,
                            const char* op, bool is_max) {
  check_list_size(kernel, 2, op, "kernel_size");
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 2, op, "padding");
  check_list_size(dilation, 2, op, "dilation");
  PoolParams p;
  p.N = N, p.C = C, p.H = H, p.W = W;
  p.kh = kernel[0], p.kw = kernel[1];
  p.sh = stride[0], p.sw = stride[1];
  p.ph = padding[0], p.pw = padding[1];
  p.dh = dilation[0], p.dw = dilation[1];
  p.ceil_mode = ceil_mode;
  set_pool_output_size_checked(p, op);
  const std::string err = validate_pool(p, op, is_max);
  TORCH_CHECK_VALUE(err.empty(), err);
  p.num_threads = pool_threads(N * C * (H * W + p.OH * p.OW));
  return p;
}

// Max pooling's values and, when with_indices, its indices (else an undefined tensor).
std::tuple<at::Tensor, at::Tensor> max_pool2d_cpu_impl(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                       at::IntArrayRef stride, at::IntArrayRef padding,
                                                       at::IntArrayRef dilation, bool ceil_mode, bool with_indices) {
  const char* op = "max_pool2d";
  check_activation(input, op, "input");
  PoolParams p = make_pool_params(input.size(0), input.size(1), input.size(2), input.size(3), kernel_size, stride,
                                  padding, dilation, ceil_mode, op, true);
  const auto fmt = activation_format(input, input);
  p.layout = to_layout(fmt);
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  at::Tensor ind;
  if (with_indices) ind = at::empty({p.N, p.C, p.OH, p.OW}, input.options().dtype(at::kLong).memory_format(fmt));
  if (y.numel() == 0) return {y, ind};
  const at::Tensor x = input.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_max_pool2d", [&] {
    cpu::max_pool_forward<scalar_t>(p, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                                    with_indices ? ind.mutable_data_ptr<int64_t>() : nullptr);
  });
  return {y, ind};
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices_cpu(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                               at::IntArrayRef stride, at::IntArrayRef padding,
                                                               at::IntArrayRef dilation, bool ceil_mode) {
  return max_pool2d_cpu_impl(input, kernel_size, stride, padding, dilation, ceil_mode, true);
}

// The values only: what inference needs (no index tensor, twice the values' bytes, written and then dropped).
at::Tensor max_pool2d_cpu(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(max_pool2d_cpu_impl(input, kernel_size, stride, padding, dilation, ceil_mode, false));
}

// Shared body of max_pool2d_backward (scatter-add), max_pool2d_backward_window and max_unpool2d
// (scatter-assign): src (N, C, OH, OW) scattered by indices into a (N, C, H, W) result. `window` (the
// pooling's window, scatter-add only) lets NHWC take the window-side kernel cpu::max_pool_backward_nhwc;
// for indices that are not taps of their window it declines and the scatter redoes the result in the same
// tensor (a second 25 MB allocation while the first is alive comes fresh from the OS, and its page faults
// cost more than the kernel).
at::Tensor scatter_by_indices(const at::Tensor& src, const char* src_name, const at::Tensor& indices,
                              at::IntArrayRef out_hw, const char* size_name, bool accumulate, const char* op,
                              const PoolParams* window = nullptr) {
  check_activation(src, op, src_name);
  check_indices(indices, src, src_name, op);
  check_list_size(out_hw, 2, op, size_name);
  TORCH_CHECK_VALUE(out_hw[0] >= 0 && out_hw[1] >= 0, "fastconv.", op, ": ", size_name,
                    " must be non-negative, got ", out_hw);
  PoolParams p = window ? *window : PoolParams();
  p.N = src.size(0), p.C = src.size(1), p.OH = src.size(2), p.OW = src.size(3);
  p.H = out_hw[0], p.W = out_hw[1];
  p.num_threads = pool_threads(p.N * p.C * (p.H * p.W + p.OH * p.OW));
  const auto fmt = activation_format(src, indices);
  p.layout = to_layout(fmt);
  const bool window_side = window && accumulate && p.layout == Layout::NHWC;
  at::Tensor out = at::empty({p.N, p.C, p.H, p.W}, src.options().memory_format(fmt));
  // Nothing to compute. max_unpool2d into an empty plane (output_size (0, 8)) also checks no index, as torch's
  // (no index is valid there, and torch returns the empty result); the max-pool backward still rejects indices
  // into an empty plane, as torch's autograd does.
  if (out.numel() == 0 && (src.numel() == 0 || !accumulate)) return out;
  const at::Tensor s = src.contiguous(fmt), ind = indices.contiguous(fmt);
  cpu::IndexCheck r;
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "fastconv_pool_scatter", [&] {
    const scalar_t* sp = s.const_data_ptr<scalar_t>();
    const int64_t* ip = ind.const_data_ptr<int64_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    if (!(window_side && cpu::max_pool_backward_nhwc<scalar_t>(p, sp, ip, dst)))
      r = cpu::pool_scatter<scalar_t>(p, sp, ip, dst, accumulate);
  });
  raise_bad_index(r, p, op);
  return out;
}

at::Tensor max_pool2d_backward_cpu(const at::Tensor& grad_output, const at::Tensor& indices,
                                   at::IntArrayRef input_size) {
  return scatter_by_indices(grad_output, "grad_output", indices, input_size, "input_size", true,
                            "max_pool2d_backward");
}

// max_pool2d_with_indices' own backward: the scatter-add, told the window.
at::Tensor max_pool2d_backward_window_cpu(const at::Tensor& grad_output, const at::Tensor& indices,
                                          at::IntArrayRef input_size, at::IntArrayRef kernel_size,
                                          at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const PoolParams w = pool_window_params(kernel_size, stride, padding, dilation, "max_pool2d_backward");
  check_window_grad_output(w, grad_output, input_size, "max_pool2d_backward");
  return scatter_by_indices(grad_output, "grad_output", indices, input_size, "input_size", true,
                            "max_pool2d_backward", &w);
}

at::Tensor max_unpool2d_cpu(const at::Tensor& input, const at::Tensor& indices, at::IntArrayRef output_size) {
  return scatter_by_indices(input, "input", indices, output_size, "output_size", false, "max_unpool2d");
}

at::Tensor max_pool2d_gather_cpu(const at::Tensor& input, const at::Tensor& indices) {
  const char* op = "max_pool2d_gather";
  check_activation(input, op, "input");
  check_dim(indices, 4, op, "indices");
  TORCH_CHECK_TYPE(indices.scalar_type() == at::kLong, "fastconv.", op, ": indices must be int64, got ",
                   indices.scalar_type());
  TORCH_CHECK_VALUE(indices.size(0) == input.size(0) && indices.size(1) == input.size(1), "fastconv.", op,
                    ": indices of shape ", indices.sizes(), " do not match the batch and channels of input ",
                    input.sizes());
  PoolParams p;
  p.N = input.size(0), p.C = input.size(1), p.H = input.size(2), p.W = input.size(3);
  p.OH = indices.size(2), p.OW = indices.size(3);
  p.num_threads = pool_threads(2 * indices.numel());
  const auto fmt = activation_format(input, indices);
  p.layout = to_layout(fmt);
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), ind = indices.contiguous(fmt);
  cpu::IndexCheck r;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_pool_gather", [&] {
    r = cpu::pool_gather<scalar_t>(p, x.const_data_ptr<scalar_t>(), ind.const_data_ptr<int64_t>(),
                                   y.mutable_data_ptr<scalar_t>());
  });
  raise_bad_index(r, p, op);
  return y;
}

void set_avg_options(PoolParams& p, bool count_include_pad, std::optional<int64_t> divisor_override,
                     const char* op) {
  p.count_include_pad = count_include_pad;
  if (divisor_override.has_value()) {
    TORCH_CHECK_VALUE(*divisor_override != 0, "fastconv.", op, ": divisor_override must be non-zero");
    p.divisor_override = *divisor_override;
  }
}

at::Tensor avg_pool2d_cpu(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                          at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                          std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  check_activation(input, op, "input");
  const int64_t one[2] = {1, 1};
  PoolParams p = make_pool_params(input.size(0), input.size(1), input.size(2), input.size(3), kernel_size, stride,
                                  padding, one, ceil_mode, op, false);
  set_avg_options(p, count_include_pad, divisor_override, op);
  const auto fmt = activation_format(input, input);
  p.layout = to_layout(fmt);
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fastconv_avg_pool2d", [&] {
    cpu::avg_pool_forward<scalar_t>(p, x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>());
  });
  return y;
}

at::Tensor avg_pool2d_backward_cpu(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                   at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                   bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d_backward";
  check_activation(grad_output, op, "grad_output");
  check_list_size(input_size, 2, op, "input_size");
  const int64_t one[2] = {1, 1};
  PoolParams p = make_pool_params(grad_output.size(0), grad_output.size(1), input_size[0], input_size[1],
                                  kernel_size, stride, padding, one, ceil_mode, op, false);
  set_avg_options(p, count_include_pad, divisor_override, op);
  TORCH_CHECK_VALUE(grad_output.size(2) == p.OH && grad_output.size(3) == p.OW, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match the pooled size (", p.OH,
                    ", ", p.OW, ") of input_size ", input_size);
  const auto fmt = activation_format(grad_output, grad_output);
  p.layout = to_layout(fmt);
  at::Tensor gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt);
  AT_DISPATCH_FLOATING_TYPES(gy.scalar_type(), "fastconv_avg_pool2d_backward", [&] {
    cpu::avg_pool_backward<scalar_t>(p, gy.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>());
  });
  return gx;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fastconv, m) {
  m.def(
      "max_pool2d_with_indices(Tensor input, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, "
      "bool ceil_mode) -> (Tensor, Tensor)");
  m.def(
      "max_pool2d(Tensor input, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, "
      "bool ceil_mode) -> Tensor");
  m.def("max_pool2d_backward(Tensor grad_output, Tensor indices, SymInt[2] input_size) -> Tensor");
  m.def(
      "max_pool2d_backward_window(Tensor grad_output, Tensor indices, SymInt[2] input_size, int[2] kernel_size, "
      "int[2] stride, int[2] padding, int[2] dilation) -> Tensor");
  m.def("max_pool2d_gather(Tensor input, Tensor indices) -> Tensor");
  m.def("max_unpool2d(Tensor input, Tensor indices, SymInt[2] output_size) -> Tensor");
  m.def(
      "avg_pool2d(Tensor input, int[2] kernel_size, int[2] stride, int[2] padding, bool ceil_mode, "
      "bool count_include_pad, int? divisor_override) -> Tensor");
  m.def(
      "avg_pool2d_backward(Tensor grad_output, SymInt[2] input_size, int[2] kernel_size, int[2] stride, "
      "int[2] padding, bool ceil_mode, bool count_include_pad, int? divisor_override) -> Tensor");
}

TORCH_LIBRARY_IMPL(fastconv, CPU, m) {
  m.impl("max_pool2d_with_indices", &max_pool2d_with_indices_cpu);
  m.impl("max_pool2d", &max_pool2d_cpu);
  m.impl("max_pool2d_backward", &max_pool2d_backward_cpu);
  m.impl("max_pool2d_backward_window", &max_pool2d_backward_window_cpu);
  m.impl("max_pool2d_gather", &max_pool2d_gather_cpu);
  m.impl("max_unpool2d", &max_unpool2d_cpu);
  m.impl("avg_pool2d", &avg_pool2d_cpu);
  m.impl("avg_pool2d_backward", &avg_pool2d_backward_cpu);
}

}  // namespace fastconv
