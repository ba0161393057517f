// CUDA implementations of the adaptive pooling ops (schemas and CPU versions in ../adaptive_pool_ops.cpp;
// argument checks shared with them in ../adaptive_pool_args.cpp, with the CUDA dtype rule). The max
// backward and its gather run the pooling index scatter / gather kernels (csrc/cuda/pool.cu); the scatter uses atomics unless
// torch.use_deterministic_algorithms(True).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <limits>
#include <tuple>

#include "../../common/pool_params.h"
#include "../../cuda/pool_kernels.cuh"
#include "../adaptive_pool_args.h"
#include "cuda_op_utils.h"

namespace fastconv {
namespace {

using namespace cuda_ops;

// The index kernels' view of an adaptive pooling: only sizes and layout matter to them.
PoolParams index_params(const AdaptivePoolParams& a) {
  PoolParams p;
  p.N = a.N, p.C = a.C, p.H = a.H, p.W = a.W, p.OH = a.OH, p.OW = a.OW;
  p.layout = a.layout;
  return p;
}

at::Tensor adaptive_avg_pool2d_cuda(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_avg_pool2d";
  if (averages_an_empty_plane(input, output_size, check_floating_cuda, op)) {
    return at::full({input.size(0), input.size(1), 1, 1}, std::numeric_limits<double>::quiet_NaN(), input.options());
  }
  const auto [p, fmt] = plan_adaptive_pool2d(input, output_size, check_floating_cuda, op);
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
  if (averages_an_empty_plane_backward(grad_output, input_size, check_floating_cuda, "adaptive_avg_pool2d_backward")) {
    return at::zeros(input_size, grad_output.options());  // no elements
  }
  const auto [p, fmt] = plan_adaptive_avg_pool2d_backward(grad_output, input_size, channels_last, check_floating_cuda);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  if (grad_output.numel() == 0) return gx.zero_();  // output_size 0: nothing reached the input
  const at::Tensor gy = grad_output.contiguous(fmt);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::adaptive_avg_pool_backward<T>(p, cptr<T>(gy), mptr<T>(gx), current_stream()); });
  });
  return gx;
}

std::tuple<at::Tensor, at::Tensor> adaptive_max_pool2d_cuda(const at::Tensor& input, at::IntArrayRef output_size) {
  const char* op = "adaptive_max_pool2d";
  const auto [p, fmt] = plan_adaptive_max_pool2d(input, output_size, check_floating_cuda);
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
  const auto [p, fmt] =
      plan_adaptive_max_pool2d_backward(grad_output, indices, input_size, channels_last, check_floating_cuda);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty(input_size, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  if (grad_output.numel() == 0) return gx.zero_();  // output_size 0: nothing reached the input
  const at::Tensor gy = grad_output.contiguous(fmt), idx = indices.contiguous(fmt);
  const PoolParams ip = index_params(p);
  const bool deterministic = at::globalContext().deterministicAlgorithms();
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    const size_t ws_bytes = cuda::pool_scatter_workspace_bytes<T>(ip, true);
    at::Tensor ws = ws_bytes ? at::empty({static_cast<int64_t>(ws_bytes)}, gy.options().dtype(at::kByte)) : at::Tensor();
    launch(op, [&] {
      cuda::pool_scatter<T>(ip, cptr<T>(gy), idx.const_data_ptr<int64_t>(), mptr<T>(gx), true, deterministic,
                            ws.defined() ? ws.mutable_data_ptr() : nullptr, nullptr,
                            current_stream());
    });
  });
  return gx;
}

at::Tensor adaptive_max_pool2d_gather_cuda(const at::Tensor& input, const at::Tensor& indices) {
  const char* op = "adaptive_max_pool2d_gather";
  const auto [p, fmt] = plan_adaptive_max_pool2d_gather(input, indices, check_floating_cuda);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty(indices.sizes(), input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), idx = indices.contiguous(fmt);
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      cuda::pool_gather<T>(index_params(p), cptr<T>(x), idx.const_data_ptr<int64_t>(), mptr<T>(y),
                           nullptr, current_stream());
    });
  });
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
