// CUDA implementations of the pooling ops (schemas and CPU versions in ../pool_ops.cpp; the argument
// checks mirror those, with the CUDA dtypes). An out-of-range index in an index-consuming op stops its kernel
// with a device-side assertion, as torch's max_unpool does (csrc/cuda/pool_index.cuh): no stream
// synchronisation per call, and CUDA-graph capture works. The CPU ops raise an IndexError instead.
// Determinism: the scatter ops (max_pool2d_backward, max_unpool2d) use atomics unless
// torch.use_deterministic_algorithms(True), where they take a fixed-order kernel instead.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "../../common/pool_params.h"
#include "../../cuda/pool_kernels.cuh"
#include "../pool_window_args.h"
#include "cuda_op_utils.h"

namespace fastconv {
namespace {

using namespace cuda_ops;

void check_indices(const at::Tensor& ind, const at::Tensor& like, const char* like_name, const char* op) {
  check_dim(ind, 4, op, "indices");
  TORCH_CHECK_TYPE(ind.scalar_type() == at::kLong, "fastconv.", op, ": indices must be int64, got ",
                   ind.scalar_type());
  TORCH_CHECK(ind.device() == like.device(), "fastconv.", op, ": indices and ", like_name,
              " must be on the same device, got ", ind.device(), " and ", like.device());
  TORCH_CHECK_VALUE(ind.sizes() == like.sizes(), "fastconv.", op, ": indices of shape ", ind.sizes(),
                    " must have the shape of ", like_name, " ", like.sizes());
}

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
  return p;
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices_cuda(const at::Tensor& input, at::IntArrayRef kernel_size,
                                                                at::IntArrayRef stride, at::IntArrayRef padding,
                                                                at::IntArrayRef dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  check_activation_cuda(input, op, "input");
  PoolParams p = make_pool_params(input.size(0), input.size(1), input.size(2), input.size(3), kernel_size, stride,
                                  padding, dilation, ceil_mode, op, true);
  const auto fmt = activation_format(input, input);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  at::Tensor ind = at::empty({p.N, p.C, p.OH, p.OW}, input.options().dtype(at::kLong).memory_format(fmt));
  if (y.numel() == 0) return {y, ind};
  const at::Tensor x = input.contiguous(fmt);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      cuda::max_pool_forward<T>(p, cptr<T>(x), mptr<T>(y), ind.mutable_data_ptr<int64_t>(), current_stream());
    });
  });
  return {y, ind};
}

// The values only (the CUDA kernel writes the indices too; they are dropped).
at::Tensor max_pool2d_cuda(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  return std::get<0>(max_pool2d_with_indices_cuda(input, kernel_size, stride, padding, dilation, ceil_mode));
}

// The ops that take a pooled-side src (N, C, OH, OW) with its indices and write an (N, C, H, W) result of spatial
// size out_hw: checks the three, fills p's sizes and layout (its window fields are kept) and returns the layout.
at::MemoryFormat plan_by_indices(const at::Tensor& src, const char* src_name, const at::Tensor& indices,
                                 at::IntArrayRef out_hw, const char* size_name, const char* op, PoolParams& p) {
  check_activation_cuda(src, op, src_name);
  check_indices(indices, src, src_name, op);
  check_list_size(out_hw, 2, op, size_name);
  TORCH_CHECK_VALUE(out_hw[0] >= 0 && out_hw[1] >= 0, "fastconv.", op, ": ", size_name,
                    " must be non-negative, got ", out_hw);
  p.N = src.size(0), p.C = src.size(1), p.OH = src.size(2), p.OW = src.size(3);
  p.H = out_hw[0], p.W = out_hw[1];
  const auto fmt = activation_format(src, indices);
  p.layout = to_layout(fmt);
  return fmt;
}

// max_pool2d_backward (scatter-add) and max_unpool2d (scatter-assign): src (N, C, OH, OW) scattered by
// indices into a (N, C, H, W) result.
at::Tensor scatter_by_indices(const at::Tensor& src, const char* src_name, const at::Tensor& indices,
                              at::IntArrayRef out_hw, const char* size_name, bool accumulate, const char* op) {
  PoolParams p;
  const auto fmt = plan_by_indices(src, src_name, indices, out_hw, size_name, op, p);
  const c10::cuda::CUDAGuard guard(src.device());
  at::Tensor out = at::empty({p.N, p.C, p.H, p.W}, src.options().memory_format(fmt));
  // max_unpool2d into an empty plane checks no index, as torch's (see pool_ops.cpp)
  if (out.numel() == 0 && (src.numel() == 0 || !accumulate)) return out;
  const at::Tensor s = src.contiguous(fmt), ind = indices.contiguous(fmt);
  const bool deterministic = at::globalContext().deterministicAlgorithms();
  dispatch_floating(s.scalar_type(), op, [&]<typename T>() {
    const size_t ws_bytes = cuda::pool_scatter_workspace_bytes<T>(p, accumulate);
    at::Tensor ws = ws_bytes ? at::empty({static_cast<int64_t>(ws_bytes)}, src.options().dtype(at::kByte)) : at::Tensor();
    launch(op, [&] {
      cuda::pool_scatter<T>(p, cptr<T>(s), ind.const_data_ptr<int64_t>(), mptr<T>(out), accumulate, deterministic,
                            ws.defined() ? ws.mutable_data_ptr() : nullptr, nullptr,
                            current_stream());
    });
  });
  return out;
}

at::Tensor max_pool2d_backward_cuda(const at::Tensor& grad_output, const at::Tensor& indices,
                                    at::IntArrayRef input_size) {
  return scatter_by_indices(grad_output, "grad_output", indices, input_size, "input_size", true,
                            "max_pool2d_backward");
}

// With the window (what autograd calls): the gather over the windows holding each input (pool.cu): deterministic
// without atomics or a float workspace. Checked like on the CPU so both backends reject the same arguments.
at::Tensor max_pool2d_backward_window_cuda(const at::Tensor& grad_output, const at::Tensor& indices,
                                           at::IntArrayRef input_size, at::IntArrayRef kernel_size,
                                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  const char* op = "max_pool2d_backward";
  PoolParams p = pool_window_params(kernel_size, stride, padding, dilation, op);
  check_window_grad_output(p, grad_output, input_size, op);
  const auto fmt = plan_by_indices(grad_output, "grad_output", indices, input_size, "input_size", op, p);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt), ind = indices.contiguous(fmt);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      cuda::max_pool_backward<T>(p, cptr<T>(gy), ind.const_data_ptr<int64_t>(), mptr<T>(gx), nullptr,
                                 current_stream());
    });
  });
  return gx;
}

at::Tensor max_unpool2d_cuda(const at::Tensor& input, const at::Tensor& indices, at::IntArrayRef output_size) {
  return scatter_by_indices(input, "input", indices, output_size, "output_size", false, "max_unpool2d");
}

at::Tensor max_pool2d_gather_cuda(const at::Tensor& input, const at::Tensor& indices) {
  const char* op = "max_pool2d_gather";
  check_activation_cuda(input, op, "input");
  check_dim(indices, 4, op, "indices");
  TORCH_CHECK_TYPE(indices.scalar_type() == at::kLong, "fastconv.", op, ": indices must be int64, got ",
                   indices.scalar_type());
  TORCH_CHECK(indices.device() == input.device(), "fastconv.", op, ": indices and input must be on the same device, got ",
              indices.device(), " and ", input.device());
  TORCH_CHECK_VALUE(indices.size(0) == input.size(0) && indices.size(1) == input.size(1), "fastconv.", op,
                    ": indices of shape ", indices.sizes(), " do not match the batch and channels of input ",
                    input.sizes());
  PoolParams p;
  p.N = input.size(0), p.C = input.size(1), p.H = input.size(2), p.W = input.size(3);
  p.OH = indices.size(2), p.OW = indices.size(3);
  const auto fmt = activation_format(input, indices);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), ind = indices.contiguous(fmt);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      cuda::pool_gather<T>(p, cptr<T>(x), ind.const_data_ptr<int64_t>(), mptr<T>(y), nullptr,
                           current_stream());
    });
  });
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

at::Tensor avg_pool2d_cuda(const at::Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                           std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  check_activation_cuda(input, op, "input");
  const int64_t one[2] = {1, 1};
  PoolParams p = make_pool_params(input.size(0), input.size(1), input.size(2), input.size(3), kernel_size, stride,
                                  padding, one, ceil_mode, op, false);
  set_avg_options(p, count_include_pad, divisor_override, op);
  const auto fmt = activation_format(input, input);
  p.layout = to_layout(fmt);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::avg_pool_forward<T>(p, cptr<T>(x), mptr<T>(y), current_stream()); });
  });
  return y;
}

at::Tensor avg_pool2d_backward_cuda(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                    bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d_backward";
  check_activation_cuda(grad_output, op, "grad_output");
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
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::avg_pool_backward<T>(p, cptr<T>(gy), mptr<T>(gx), current_stream()); });
  });
  return gx;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastconv, CUDA, m) {
  m.impl("max_pool2d_with_indices", &max_pool2d_with_indices_cuda);
  m.impl("max_pool2d", &max_pool2d_cuda);
  m.impl("max_pool2d_backward", &max_pool2d_backward_cuda);
  m.impl("max_pool2d_backward_window", &max_pool2d_backward_window_cuda);
  m.impl("max_pool2d_gather", &max_pool2d_gather_cuda);
  m.impl("max_unpool2d", &max_unpool2d_cuda);
  m.impl("avg_pool2d", &avg_pool2d_cuda);
  m.impl("avg_pool2d_backward", &avg_pool2d_backward_cuda);
}

}  // namespace fastconv
