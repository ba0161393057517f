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

// torch.backends.cudnn.conv.fp32_precision / allow_tf32 for convolutions. The legacy no-argument
// allowTF32CuDNN() raises when the old and new TF32 settings disagree (for example after
// torch.backends.cuda.matmul.fp32_precision = "tf32"), which would fail every fastconv CUDA convolution; torch's
// own cuDNN convolutions ask with the op, as here.
cuda::ConvOptions conv_options() {
  cuda::ConvOptions o;
  o.allow_tf32 = at::globalContext().allowTF32CuDNN(at::Float32Op::CONV);
  return o;
}

// Argument checks live in ../conv_args.cpp (shared with the CPU bindings); here: choose the compute layout,
// allocate and launch.

// The tensor-core kernels (conv_dispatch.cu) compute in NHWC with a (K, R, S, C) weight. When they take the
// problem in NHWC, the op runs there: an NCHW input is transposed in and its result transposed back (as cuDNN
// does), since the tensor cores are far faster than the direct kernels that NCHW would run. Returns the memory
// format to compute in and updates p (layout, weight_rsc); otherwise p and fmt stay.
using cuda::ConvPass;

template <typename T>
at::MemoryFormat compute_format(ConvParams& p, ConvPass pass, const cuda::ConvOptions& opt, at::MemoryFormat fmt) {
  ConvParams q = p;
  q.layout = Layout::NHWC;
  if (!cuda::conv_uses_tensor_cores<T>(q, pass, opt)) return fmt;
  q.weight_rsc = pass != ConvPass::BackwardWeight;
  p = q;
  return at::MemoryFormat::ChannelsLast;
}

// The tensor-core kernels load 16-byte vectors: a view whose storage offset breaks that alignment is copied.
at::Tensor aligned16(const at::Tensor& t) {
  if (!t.defined() || reinterpret_cast<uintptr_t>(t.const_data_ptr()) % 16 == 0) return t;
  return t.clone(at::MemoryFormat::Preserve);
}

// The weight as the kernels read it: (K, R, S, C) for the tensor cores, else (K, C/groups, R, S).
at::Tensor kernel_weight(const at::Tensor& weight, const ConvParams& p) {
  return aligned16(p.weight_rsc ? weight.contiguous(at::MemoryFormat::ChannelsLast) : weight.contiguous());
}

at::Tensor conv2d_cuda(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                       c10::string_view padding_mode) {
  const char* op = "conv2d";
  const auto [p, fmt] = plan_conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode,
                                    check_floating_cuda);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.K, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const auto opt = conv_options();
  dispatch_floating(input.scalar_type(), op, [&]<typename T>() {
    ConvParams q = p;
    const auto cfmt = compute_format<T>(q, ConvPass::Forward, opt, fmt);
    if (cfmt != fmt) y = at::empty({p.N, p.K, p.OH, p.OW}, input.options().memory_format(cfmt));
    const at::Tensor x = aligned16(input.contiguous(cfmt)), w = kernel_weight(weight, q);
    const at::Tensor b = bias.has_value() ? aligned16(bias->contiguous()) : at::Tensor();
    launch(op, [&] { cuda::conv_forward<T>(q, cptr<T>(x), cptr<T>(w), cptr_or_null<T>(b), mptr<T>(y), opt, current_stream()); });
  });
  return y.contiguous(fmt);
}

at::Tensor conv2d_backward_input_cuda(const at::Tensor& grad_output, const at::Tensor& weight,
                                      at::IntArrayRef input_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                      at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  const char* op = "conv2d_backward_input";
  const auto [p, fmt] = plan_conv2d_backward_input(grad_output, weight, input_size, stride, padding, dilation, groups,
                                                   padding_mode, check_floating_cuda);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(fmt));
  if (gx.numel() == 0) return gx;
  const auto opt = conv_options();
  dispatch_floating(grad_output.scalar_type(), op, [&]<typename T>() {
    ConvParams q = p;
    const auto cfmt = compute_format<T>(q, ConvPass::BackwardInput, opt, fmt);
    if (cfmt != fmt) gx = at::empty({p.N, p.C, p.H, p.W}, grad_output.options().memory_format(cfmt));
    const at::Tensor gy = aligned16(grad_output.contiguous(cfmt)), w = kernel_weight(weight, q);
    launch(op, [&] { cuda::conv_backward_input<T>(q, cptr<T>(gy), cptr<T>(w), mptr<T>(gx), opt, current_stream()); });
  });
  return gx.contiguous(fmt);
}

at::Tensor conv2d_backward_weight_cuda(const at::Tensor& grad_output, const at::Tensor& input,
                                       at::IntArrayRef weight_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                       at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  const char* op = "conv2d_backward_weight";
  const auto [p, fmt] = plan_conv2d_backward_weight(grad_output, input, weight_size, stride, padding, dilation,
                                                    groups, padding_mode, check_floating_cuda);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor gw = at::empty(weight_size, input.options());
  if (gw.numel() == 0) return gw;
  if (p.N == 0 || p.OH == 0 || p.OW == 0) return gw.zero_();
  const auto opt = conv_options();
  dispatch_floating(input.scalar_type(), op, [&]<typename T>() {
    ConvParams q = p;
    const auto cfmt = compute_format<T>(q, ConvPass::BackwardWeight, opt, fmt);
    const at::Tensor x = aligned16(input.contiguous(cfmt)), gy = aligned16(grad_output.contiguous(cfmt));
    // Split-K / per-chunk partials of the tensor-core and depthwise weight gradients (from torch's caching
    // allocator: no cudaMalloc per call, and legal under CUDA-graph capture).
    const size_t bytes = cuda::conv_backward_weight_workspace<T>(q, opt);
    at::Tensor ws = bytes > 0 ? at::empty({static_cast<int64_t>(bytes)}, input.options().dtype(at::kByte)) : at::Tensor();
    void* wsp = bytes > 0 ? ws.mutable_data_ptr() : nullptr;
    launch(op, [&] {
      cuda::conv_backward_weight<T>(q, cptr<T>(x), cptr<T>(gy), mptr<T>(gw), opt, current_stream(), wsp, bytes);
    });
  });
  return gw;
}

at::Tensor conv_backward_bias_cuda(const at::Tensor& grad_output) {
  const char* op = "conv_backward_bias";
  const auto [p, fmt] = plan_conv_backward_bias(grad_output, check_floating_cuda);
  const c10::cuda::CUDAGuard guard(grad_output.device());
  at::Tensor gb = at::empty({p.K}, grad_output.options());
  if (gb.numel() == 0) return gb;
  const at::Tensor gy = grad_output.contiguous(fmt);
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_backward_bias<T>(p, cptr<T>(gy), mptr<T>(gb), current_stream()); });
  });
  return gb;
}

// conv_transpose2d: the input-gradient of the Cout -> Cin convolution, plus the bias (../conv_transpose_ops.cpp).
at::Tensor conv_transpose2d_cuda(const at::Tensor& input, const at::Tensor& weight,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef output_padding, int64_t groups,
                                 at::IntArrayRef dilation) {
  const char* op = "conv_transpose2d";
  const auto [p, fmt] = plan_conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation,
                                              check_floating_cuda);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.C, p.H, p.W}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  const auto opt = conv_options();
  dispatch_floating(input.scalar_type(), op, [&]<typename T>() {
    ConvParams q = p;
    const auto cfmt = compute_format<T>(q, ConvPass::BackwardInput, opt, fmt);
    if (cfmt != fmt) y = at::empty({p.N, p.C, p.H, p.W}, input.options().memory_format(cfmt));
    const at::Tensor x = aligned16(input.contiguous(cfmt)), w = kernel_weight(weight, q);
    launch(op, [&] {
      const cudaStream_t stream = current_stream();
      cuda::conv_backward_input<T>(q, cptr<T>(x), cptr<T>(w), mptr<T>(y), opt, stream);
      if (b.defined()) cuda::bias_add<T>(q.N, q.C, q.H * q.W, q.layout, cptr<T>(b), mptr<T>(y), stream);
    });
  });
  return y.contiguous(fmt);
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
