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

// Argument checks live in ../conv_args.cpp (shared with the CPU bindings); here: allocate and launch.

at::Tensor conv2d_cuda(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                       c10::string_view padding_mode) {
  const char* op = "conv2d";
  const auto [p, fmt] = plan_conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode,
                                    check_floating_cuda);
  const c10::cuda::CUDAGuard guard(input.device());
  at::Tensor y = at::empty({p.N, p.K, p.OH, p.OW}, input.options().memory_format(fmt));
  if (y.numel() == 0) return y;
  const at::Tensor x = input.contiguous(fmt), w = weight.contiguous();
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  const auto opt = conv_options();
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_forward<T>(p, cptr<T>(x), cptr<T>(w), cptr_or_null<T>(b), mptr<T>(y), opt, current_stream()); });
  });
  return y;
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
  const at::Tensor gy = grad_output.contiguous(fmt), w = weight.contiguous();
  const auto opt = conv_options();
  dispatch_floating(gy.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_backward_input<T>(p, cptr<T>(gy), cptr<T>(w), mptr<T>(gx), opt, current_stream()); });
  });
  return gx;
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
  const at::Tensor x = input.contiguous(fmt), gy = grad_output.contiguous(fmt);
  const auto opt = conv_options();
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] { cuda::conv_backward_weight<T>(p, cptr<T>(x), cptr<T>(gy), mptr<T>(gw), opt, current_stream()); });
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
  const at::Tensor x = input.contiguous(fmt), w = weight.contiguous();
  const at::Tensor b = bias.has_value() ? bias->contiguous() : at::Tensor();
  const auto opt = conv_options();
  dispatch_floating(x.scalar_type(), op, [&]<typename T>() {
    launch(op, [&] {
      const cudaStream_t stream = current_stream();
      cuda::conv_backward_input<T>(p, cptr<T>(x), cptr<T>(w), mptr<T>(y), opt, stream);
      if (b.defined()) cuda::bias_add<T>(p.N, p.C, p.H * p.W, p.layout, cptr<T>(b), mptr<T>(y), stream);
    });
  });
  return y;
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
