// Autograd kernels of the adaptive pooling ops, in C++ for the reason given in pool_autograd.cpp (the
// Python autograd.Function path cost tens of microseconds per call; global average pooling closes every
// ResNet, on a tensor small enough for that to be most of its time).
//
// Each backward is built from the ops themselves, so derivatives of any order exist:
//   adaptive_avg_pool2d(x, out)                 -> dx  = adaptive_avg_pool2d_backward(gy, x.shape, cl)
//   adaptive_avg_pool2d_backward(gy, size, cl)  -> dgy = adaptive_avg_pool2d(ggx, gy.shape[2:])  (adjoint)
//   adaptive_max_pool2d(x, out) -> (y, idx)     -> dx  = adaptive_max_pool2d_backward(gy, idx, x.shape, cl)
//   adaptive_max_pool2d_backward(gy, idx, ...)  -> dgy = adaptive_max_pool2d_gather(ggx, idx)
//   adaptive_max_pool2d_gather(x, idx)          -> dx  = adaptive_max_pool2d_backward(gy, idx, x.shape, cl)
// (cl: whether grad_input takes the channels_last layout of the forward's input.)
#include <torch/library.h>

#include "autograd_util.h"
#include "tensor_checks.h"

namespace fastconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using at::Tensor;

using AvgSig = Tensor(const Tensor&, c10::SymIntArrayRef);
using AvgBackwardSig = Tensor(const Tensor&, c10::SymIntArrayRef, bool);
using MaxSig = std::tuple<Tensor, Tensor>(const Tensor&, c10::SymIntArrayRef);
using MaxBackwardSig = Tensor(const Tensor&, const Tensor&, c10::SymIntArrayRef, bool);
using GatherSig = Tensor(const Tensor&, const Tensor&);

const auto& avg_op() {
  static const auto h = op_handle<AvgSig>("fastconv::adaptive_avg_pool2d");
  return h;
}
const auto& avg_backward_op() {
  static const auto h = op_handle<AvgBackwardSig>("fastconv::adaptive_avg_pool2d_backward");
  return h;
}
const auto& max_op() {
  static const auto h = op_handle<MaxSig>("fastconv::adaptive_max_pool2d");
  return h;
}
const auto& max_backward_op() {
  static const auto h = op_handle<MaxBackwardSig>("fastconv::adaptive_max_pool2d_backward");
  return h;
}
const auto& gather_op() {
  static const auto h = op_handle<GatherSig>("fastconv::adaptive_max_pool2d_gather");
  return h;
}

// What a grad_input needs of the forward's input: its full size and whether it was channels_last.
void save_input_shape(AutogradContext* ctx, const Tensor& input) {
  ctx->saved_data["input_size"] = saved_sizes(input);
  ctx->saved_data["channels_last"] = is_channels_last(input);
}

// adaptive_max_pool2d_backward(grad, indices, <the saved input shape>).
Tensor scatter_to_input(AutogradContext* ctx, const Tensor& grad, const Tensor& indices) {
  return max_backward_op().call(grad, indices, ctx->saved_data["input_size"].toSymIntVector(),
                                ctx->saved_data["channels_last"].toBool());
}

struct AdaptiveAvgFunction : torch::autograd::Function<AdaptiveAvgFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, c10::SymIntArrayRef output_size) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor y = avg_op().call(input, output_size);
    save_input_shape(ctx, input);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0))
      g = avg_backward_op().call(grads[0], ctx->saved_data["input_size"].toSymIntVector(),
                                 ctx->saved_data["channels_last"].toBool());
    return first_only(g, 2);
  }
};

struct AdaptiveAvgBackwardFunction : torch::autograd::Function<AdaptiveAvgBackwardFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_output, c10::SymIntArrayRef input_size,
                        bool channels_last) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor gi = avg_backward_op().call(grad_output, input_size, channels_last);
    ctx->saved_data["output_size"] = saved_sizes(grad_output, 2);
    return gi;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0)) g = avg_op().call(grads[0], ctx->saved_data["output_size"].toSymIntVector());
    return first_only(g, 3);
  }
};

struct AdaptiveMaxFunction : torch::autograd::Function<AdaptiveMaxFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& input, c10::SymIntArrayRef output_size) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [y, indices] = max_op().call(input, output_size);
    ctx->save_for_backward({indices});
    save_input_shape(ctx, input);
    ctx->mark_non_differentiable({indices});
    ctx->set_materialize_grads(false);  // no zero-filled int64 gradient for the indices on every backward
    return {y, indices};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0) && grads[0].defined())
      g = scatter_to_input(ctx, grads[0], ctx->get_saved_variables()[0]);
    return first_only(g, 2);
  }
};

struct AdaptiveMaxBackwardFunction : torch::autograd::Function<AdaptiveMaxBackwardFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_output, const Tensor& indices,
                        c10::SymIntArrayRef input_size, bool channels_last) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor gi = max_backward_op().call(grad_output, indices, input_size, channels_last);
    ctx->save_for_backward({indices});
    return gi;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0)) g = gather_op().call(grads[0], ctx->get_saved_variables()[0]);
    return first_only(g, 4);
  }
};

struct AdaptiveGatherFunction : torch::autograd::Function<AdaptiveGatherFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& indices) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor y = gather_op().call(input, indices);
    ctx->save_for_backward({indices});
    save_input_shape(ctx, input);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0)) g = scatter_to_input(ctx, grads[0], ctx->get_saved_variables()[0]);
    return first_only(g, 2);
  }
};

// ---- the kernels registered at the Autograd key ----

Tensor adaptive_avg_pool2d_autograd(const Tensor& input, c10::SymIntArrayRef output_size) {
  return AdaptiveAvgFunction::apply(input, output_size);
}

Tensor adaptive_avg_pool2d_backward_autograd(const Tensor& grad_output, c10::SymIntArrayRef input_size,
                                             bool channels_last) {
  return AdaptiveAvgBackwardFunction::apply(grad_output, input_size, channels_last);
}

std::tuple<Tensor, Tensor> adaptive_max_pool2d_autograd(const Tensor& input, c10::SymIntArrayRef output_size) {
  auto out = AdaptiveMaxFunction::apply(input, output_size);
  return {out[0], out[1]};
}

Tensor adaptive_max_pool2d_backward_autograd(const Tensor& grad_output, const Tensor& indices,
                                             c10::SymIntArrayRef input_size, bool channels_last) {
  return AdaptiveMaxBackwardFunction::apply(grad_output, indices, input_size, channels_last);
}

Tensor adaptive_max_pool2d_gather_autograd(const Tensor& input, const Tensor& indices) {
  return AdaptiveGatherFunction::apply(input, indices);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastconv, Autograd, m) {
  m.impl("adaptive_avg_pool2d", &adaptive_avg_pool2d_autograd);
  m.impl("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward_autograd);
  m.impl("adaptive_max_pool2d", &adaptive_max_pool2d_autograd);
  m.impl("adaptive_max_pool2d_backward", &adaptive_max_pool2d_backward_autograd);
  m.impl("adaptive_max_pool2d_gather", &adaptive_max_pool2d_gather_autograd);
}

}  // namespace fastconv
