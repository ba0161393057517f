// CUDA implementations of the adaptive pooling ops (schemas and CPU versions in ../adaptive_pool_ops.cpp;
// argument checks mirror those, with the CUDA dtypes). The max backward and its gather run the pooling
// index scatter / gather kernels (csrc/cuda/pool.cu); the scatter uses atomics unless
// torch.use_deterministic_algorithms(True).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

#include "../../common/adaptive_pool_params.h"
#include "../../common/pool_params.h"
#include "../../cuda/pool_kernels.cuh"
#include "cuda_op_utils.h"

namespace fastconv {
namespace {

using namespace cuda_ops;

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
  p.layout = to_layout(fmt);
  const std::string err = validate_adaptive_pool(p, op);
  TORCH_CHECK_VALUE(err.empty(), err);
  return p;
}

// The index kernels' view of an adaptive pooling: only sizes and layout matter to them.
PoolParams index_params(const AdaptivePoolParams& a) {
  PoolParams p;
  p.N = a.N, p.C = a.C, p.H = a.H, p.W = a.W, p.OH = a.OH, p.OW = a.OW;
  p.layout = a.layout;
  return p;
}

void raise_if_bad_index(const at::Tensor& flag, const AdaptivePoolParams& p, const char* op) {
  TORCH_CHECK_INDEX(!read_bad_index(flag).first, "fastconv.", op, ": indices must lie in [0, ", p.H * p.W,
                    ") (positions in an input plane of ", p.H, "x", p.W, ")");
}

at::MemoryFormat backward_format(bool channels_last, const at::Tensor& a, const at::Tensor& b) {
  return channels_last ? at::MemoryFormat::ChannelsLast : activation_format(a, b);
}

at::Tensor adaptive_avg_pool2d_cuda(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_activation_cuda(input, op, "input");
  check_list_size(output_size, 2, op, "output_size");
  const auto fmt = activation_format(input, input);
  const AdaptivePoolParams p = make_params(input.sizes(), output_size[0], output_size[1], fmt, op);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::adaptive_avg_pool_forward<T>(p, cptr<T>(x), mptr<T>(y), current_stream()); });
  });
  return y;
}

at::Tensor adaptive_avg_pool2d_backward_cuda(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                             bool channels_last) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_activation_cuda(grad_output, op, "grad_output");
  check_list_size(input_size, 4, op, "input_size");
  const auto fmt = backward_format(channels_last, grad_output, grad_output);
  const AdaptivePoolParams p = make_params(input_size, grad_output.size(2), grad_output.size(3), fmt, op);
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.C, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match input_size ", input_size);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::adaptive_avg_pool_backward<T>(p, cptr<T>(gy), mptr<T>(gx), current_stream()); });
  });
  return gx;
}

std::tuple<at::Tensor, at::Tensor> adaptive_max_pool2d_cuda(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_max_pool2d";
  check_activation_cuda(input, op, "input");
  check_list_size(output_size, 2, op, "output_size");
  const auto fmt = activation_format(input, input);
  const AdaptivePoolParams p = make_params(input.sizes(), output_size[0], output_size[1], fmt, op);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.C, p.OH, p.OW}, input.options().memory_format(fmt));
  at::Tensor idx = at::empty({p.N, p.C, p.OH, p.OW}, input.options().dtype(at::kLong).memory_format(fmt));
  if (y.numel() == 0) return {y, idx};
  const at::Tensor x = input.contiguous(fmt);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      cuda::adaptive_max_pool_forward<T>(p, cptr<T>(x), mptr<T>(y), idx.mutable_data_ptr<int64_t>(), current_stream());
    });
  });
  return {y, idx};
}

at::Tensor adaptive_max_pool2d_backward_cuda(const at::Tensor& grad_output, const at::Tensor& indices,
                                             at::IntArrayRef input_size, bool channels_last) {
  const char* op = "adaptive_max_pool2d_backward";
  check_activation_cuda(grad_output, op, "grad_output");
  check_indices(indices, grad_output, "grad_output", op);
  check_list_size(input_size, 4, op, "input_size");
  TORCH_CHECK_VALUE(indices.sizes() == grad_output.sizes(), "fastconv.", op, ": indices of shape ",
                    indices.sizes(), " must match grad_output of shape ", grad_output.sizes());
  const auto fmt = backward_format(channels_last, grad_output, indices);
  const AdaptivePoolParams p = make_params(input_size, grad_output.size(2), grad_output.size(3), fmt, op);
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.C, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match input_size ", input_size);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const at::Tensor gy = grad_output.contiguous(fmt), idx = indices.contiguous(fmt);
  const PoolParams ip = index_params(p);
  const bool deterministic = at::globalContext().deterministicAlgorithms();
  const at::Tensor flag = bad_index_flag(grad_output);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    const size_t ws_bytes = cuda::pool_scatter_workspace_bytes<T>(ip, true);
    at::Tensor ws = ws_bytes ? at::empty({static_cast<int64_t>(ws_bytes)}, gy.options().dtype(at::kByte)) : at::Tensor();
    launch(op, [&] {
      cuda::pool_scatter<T>(ip, cptr<T>(gy), idx.const_data_ptr<int64_t>(), mptr<T>(gx), true, deterministic,
                            ws.defined() ? ws.mutable_data_ptr() : nullptr, flag.mutable_data_ptr<int64_t>(),
                            current_stream());
    });
  });
  raise_if_bad_index(flag, p, op);
  return gx;
}

at::Tensor adaptive_max_pool2d_gather_cuda(const at::Tensor& input, const at::Tensor& indices) {
  const char* op = "adaptive_max_pool2d_gather";
  check_activation_cuda(input, op, "input");
  check_indices(indices, input, "input", op);
  TORCH_CHECK_VALUE(indices.size(0) == input.size(0) && indices.size(1) == input.size(1), "fastconv.", op,
                    ": indices of shape ", indices.sizes(), " do not match input of shape ", input.sizes(),
                    " in batch and channels");
  const auto fmt = activation_format(input, indices);
  const AdaptivePoolParams p = make_params(input.sizes(), indices.size(2), indices.size(3), fmt, op);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty(indices.sizes(), input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), idx = indices.contiguous(fmt);
  const at::Tensor flag = bad_index_flag(input);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      cuda::pool_gather<T>(index_params(p), cptr<T>(x), idx.const_data_ptr<int64_t>(), mptr<T>(y),
                           flag.mutable_data_ptr<int64_t>(), current_stream());
    });
  });
  raise_if_bad_index(flag, p, op);
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastconv, CUDA, m) {
  m.impl("adaptive_avg_pool2d", &adaptive_avg_pool2d_cuda);
  m.impl("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward_cuda);
  m.impl("adaptive_max_pool2d", &adaptive_max_pool2d_cuda);
  m.impl("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward_cuda);
  m.impl("adaptive_max_pool2d_gather", &adaptive_max_pool2d_gather_cuda);
}

}  // namespace fastconv
