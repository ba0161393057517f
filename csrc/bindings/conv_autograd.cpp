// Autograd kernels of the convolution ops, in C++ for the reason given in pool_autograd.cpp (the Python
// autograd.Function path cost tens of microseconds per call: most of a small layer's time, and several
// percent of a large one's after its caches were flushed).
//
// The backward of each op is built from the ops themselves, so derivatives of any order exist:
//   conv2d(x, w)                   -> dx = conv2d_backward_input(gy, w),  dw = conv2d_backward_weight(gy, x)
//   conv2d_backward_input(gy, w)   -> dgy = conv2d(ggx, w),               dw = conv2d_backward_weight(gy, ggx)
//   conv2d_backward_weight(gy, x)  -> dgy = conv2d(x, ggw),               dx = conv2d_backward_input(gy, ggw)
//   conv_backward_bias(gy)         -> dgy = ggb broadcast over (N, H, W)
// (backward_input is the adjoint of conv2d in x; backward_weight its adjoint in w.)
// conv_transpose2d(x, w) is conv2d_backward_input of the convolution Cout -> Cin with the same w (see
// conv_transpose_ops.cpp), so its derivatives are that convolution's other two adjoints:
//   dx = conv2d(gy, w) cropped to x's size, dw = conv2d_backward_weight(grad_output=x, input=gy), db = sum of gy
// (x zero-padded to that convolution's output size first when output_padding >= stride).
#include <torch/library.h>

#include <string>

#include "autograd_util.h"
#include "winograd_weight_cache.h"

namespace fastconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using at::IntArrayRef;
using at::Tensor;

using ConvSig = Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&, IntArrayRef, IntArrayRef,
                       IntArrayRef, int64_t, c10::string_view);
using ConvBackwardSig = Tensor(const Tensor&, const Tensor&, c10::SymIntArrayRef, IntArrayRef, IntArrayRef,
                               IntArrayRef, int64_t, c10::string_view);
using BiasSig = Tensor(const Tensor&);
using TransposeSig = Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&, IntArrayRef, IntArrayRef,
                            IntArrayRef, int64_t, IntArrayRef);

const auto& conv_op() {
  static const auto h = op_handle<ConvSig>("fastconv::conv2d");
  return h;
}
const auto& backward_input_op() {
  static const auto h = op_handle<ConvBackwardSig>("fastconv::conv2d_backward_input");
  return h;
}
const auto& backward_weight_op() {
  static const auto h = op_handle<ConvBackwardSig>("fastconv::conv2d_backward_weight");
  return h;
}
const auto& bias_op() {
  static const auto h = op_handle<BiasSig>("fastconv::conv_backward_bias");
  return h;
}
const auto& transpose_op() {
  static const auto h = op_handle<TransposeSig>("fastconv::conv_transpose2d");
  return h;
}

// The convolution's arguments after the tensors, saved for the ops of its backward.
struct ConvArgs {
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups;
  std::string padding_mode;

  void save(AutogradContext* ctx) const {
    auto& d = ctx->saved_data;
    d["stride"] = stride;
    d["padding"] = padding;
    d["dilation"] = dilation;
    d["groups"] = groups;
    d["padding_mode"] = padding_mode;
  }
  static ConvArgs load(AutogradContext* ctx) {
    auto& d = ctx->saved_data;
    return {d["stride"].toIntVector(), d["padding"].toIntVector(), d["dilation"].toIntVector(), d["groups"].toInt(),
            d["padding_mode"].toStringRef()};
  }

  Tensor conv(const Tensor& x, const Tensor& w) const {
    return conv_op().call(x, w, std::nullopt, stride, padding, dilation, groups, padding_mode);
  }
  Tensor backward_input(const Tensor& gy, const Tensor& w, c10::SymIntArrayRef input_size) const {
    return backward_input_op().call(gy, w, input_size, stride, padding, dilation, groups, padding_mode);
  }
  Tensor backward_weight(const Tensor& gy, const Tensor& x, c10::SymIntArrayRef weight_size) const {
    return backward_weight_op().call(gy, x, weight_size, stride, padding, dilation, groups, padding_mode);
  }
};

// conv2d gives the formula's output size; a transposed convolution's input may be smaller (output_padding >=
// stride): keep the leading rows and columns that exist.
Tensor crop_to(const Tensor& t, const Tensor& like) {
  const c10::SymInt h = like.sym_size(2), w = like.sym_size(3);
  if (t.sym_size(2) == h && t.sym_size(3) == w) return t;
  return t.slice_symint(2, 0, h).slice_symint(3, 0, w);
}

struct ConvFunction : torch::autograd::Function<ConvFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias, IntArrayRef stride, IntArrayRef padding,
                        IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor y = conv_op().call(input, weight, bias, stride, padding, dilation, groups, padding_mode);
    ctx->save_for_backward({input, weight});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    ConvArgs{stride.vec(), padding.vec(), dilation.vec(), groups, std::string(padding_mode)}.save(ctx);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &input = saved[0], &weight = saved[1], &grad = grads[0];
    const ConvArgs a = ConvArgs::load(ctx);
    variable_list out(8);
    if (ctx->needs_input_grad(0)) out[0] = a.backward_input(grad, weight, input.sym_sizes());
    if (ctx->needs_input_grad(1)) out[1] = a.backward_weight(grad, input, weight.sym_sizes());
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) out[2] = bias_op().call(grad);
    return out;
  }
};

struct ConvBackwardInputFunction : torch::autograd::Function<ConvBackwardInputFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_output, const Tensor& weight,
                        c10::SymIntArrayRef input_size, IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation,
                        int64_t groups, c10::string_view padding_mode) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor gi = backward_input_op().call(grad_output, weight, input_size, stride, padding, dilation, groups,
                                         padding_mode);
    ctx->save_for_backward({grad_output, weight});
    ConvArgs{stride.vec(), padding.vec(), dilation.vec(), groups, std::string(padding_mode)}.save(ctx);
    return gi;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &grad_output = saved[0], &weight = saved[1], &ggi = grads[0];
    const ConvArgs a = ConvArgs::load(ctx);
    variable_list out(8);
    if (ctx->needs_input_grad(0)) out[0] = crop_to(a.conv(ggi, weight), grad_output);
    if (ctx->needs_input_grad(1)) out[1] = a.backward_weight(grad_output, ggi, weight.sym_sizes());
    return out;
  }
};

struct ConvBackwardWeightFunction : torch::autograd::Function<ConvBackwardWeightFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_output, const Tensor& input,
                        c10::SymIntArrayRef weight_size, IntArrayRef stride, IntArrayRef padding,
                        IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor gw = backward_weight_op().call(grad_output, input, weight_size, stride, padding, dilation, groups,
                                          padding_mode);
    ctx->save_for_backward({grad_output, input});
    ConvArgs{stride.vec(), padding.vec(), dilation.vec(), groups, std::string(padding_mode)}.save(ctx);
    return gw;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &grad_output = saved[0], &input = saved[1], &ggw = grads[0];
    const ConvArgs a = ConvArgs::load(ctx);
    variable_list out(8);
    if (ctx->needs_input_grad(0)) out[0] = crop_to(a.conv(input, ggw), grad_output);
    if (ctx->needs_input_grad(1)) out[1] = a.backward_input(grad_output, ggw, input.sym_sizes());
    return out;
  }
};

struct BiasBackwardFunction : torch::autograd::Function<BiasBackwardFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_output) {
    at::AutoDispatchBelowADInplaceOrView below;
    ctx->saved_data["grad_output_size"] = saved_sizes(grad_output);
    return bias_op().call(grad_output);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto size = ctx->saved_data["grad_output_size"].toSymIntVector();
    return {grads[0].reshape_symint({1, size[1], 1, 1}).expand_symint(size)};
  }
};

struct ConvTransposeFunction : torch::autograd::Function<ConvTransposeFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& weight,
                        const std::optional<Tensor>& bias, IntArrayRef stride, IntArrayRef padding,
                        IntArrayRef output_padding, int64_t groups, IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor y = transpose_op().call(input, weight, bias, stride, padding, output_padding, groups, dilation);
    ctx->save_for_backward({input, weight});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    // Arguments of the underlying convolution (Cout -> Cin): symmetric padding, zeros mode.
    ConvArgs{stride.vec(), {padding[0], padding[0], padding[1], padding[1]}, dilation.vec(), groups, "zeros"}.save(
        ctx);
    // Rows / columns the convolution's output has beyond the input's (output_padding >= stride, allowed while
    // < dilation): conv2d_backward_weight takes grad_output at exactly the convolution's output size.
    ctx->saved_data["extra_hw"] = std::vector<int64_t>{output_padding[0] / stride[0], output_padding[1] / stride[1]};
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &input = saved[0], &weight = saved[1], &grad = grads[0];
    const ConvArgs a = ConvArgs::load(ctx);
    variable_list out(8);
    if (ctx->needs_input_grad(0)) out[0] = crop_to(a.conv(grad, weight), input);
    if (ctx->needs_input_grad(1)) {
      const auto extra = ctx->saved_data["extra_hw"].toIntVector();  // zero rows: they carry no gradient
      const Tensor gy = extra[0] || extra[1] ? at::constant_pad_nd(input, {0, extra[1], 0, extra[0]}) : input;
      out[1] = a.backward_weight(gy, grad, weight.sym_sizes());
    }
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) out[2] = bias_op().call(grad);
    return out;
  }
};

// ---- the kernels registered at the Autograd key ----

Tensor conv2d_autograd(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias, IntArrayRef stride,
                       IntArrayRef padding, IntArrayRef dilation, int64_t groups, c10::string_view padding_mode) {
  // a weight being trained changes every step: the forward keeps no transformed copy of it
  const TrainingWeightScope training(at::GradMode::is_enabled() && weight.requires_grad());
  return ConvFunction::apply(input, weight, bias, stride, padding, dilation, groups, padding_mode);
}

Tensor conv2d_backward_input_autograd(const Tensor& grad_output, const Tensor& weight, c10::SymIntArrayRef input_size,
                                      IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation, int64_t groups,
                                      c10::string_view padding_mode) {
  return ConvBackwardInputFunction::apply(grad_output, weight, input_size, stride, padding, dilation, groups,
                                          padding_mode);
}

Tensor conv2d_backward_weight_autograd(const Tensor& grad_output, const Tensor& input, c10::SymIntArrayRef weight_size,
                                       IntArrayRef stride, IntArrayRef padding, IntArrayRef dilation, int64_t groups,
                                       c10::string_view padding_mode) {
  return ConvBackwardWeightFunction::apply(grad_output, input, weight_size, stride, padding, dilation, groups,
                                           padding_mode);
}

Tensor conv_backward_bias_autograd(const Tensor& grad_output) { return BiasBackwardFunction::apply(grad_output); }

Tensor conv_transpose2d_autograd(const Tensor& input, const Tensor& weight, const std::optional<Tensor>& bias,
                                 IntArrayRef stride, IntArrayRef padding, IntArrayRef output_padding, int64_t groups,
                                 IntArrayRef dilation) {
  return ConvTransposeFunction::apply(input, weight, bias, stride, padding, output_padding, groups, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastconv, Autograd, m) {
  m.impl("conv2d", &conv2d_autograd);
  m.impl("conv2d_backward_input", &conv2d_backward_input_autograd);
  m.impl("conv2d_backward_weight", &conv2d_backward_weight_autograd);
  m.impl("conv_backward_bias", &conv_backward_bias_autograd);
  m.impl("conv_transpose2d", &conv_transpose2d_autograd);
}

}  // namespace fastconv
