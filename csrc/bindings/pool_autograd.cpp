// Autograd kernels of the pooling ops, in C++ (one registration at the Autograd key serves CPU and CUDA).
//
// Why C++: the Python autograd.Function path these ops had before (a register_autograd helper) walks several Python frames, dicts
// and objects per call. Measured on this project's 2-core machine after a 64 MiB cache flush (what a layer
// sees between two large tensors in a real network), fastconv.nn.AvgPool2d on a 1x16x8x8 input took 184 us
// against torch's 43 us, 56 us of it in that Python autograd step alone; on 8x64x112x112 channels_last that
// overhead alone made fastconv's forward 10-20% slower than torch's with an equally fast kernel.
//
// Each backward is built from the ops themselves (through the dispatcher, so it records a graph when
// create_graph is set), hence derivatives of any order:
//   max_pool2d_with_indices(x)          -> dx  = max_pool2d_backward_window(gy, idx, window)
//   max_pool2d(x) (values only)         -> max_pool2d_with_indices' where a gradient is wanted
//   max_pool2d_backward_window(gy, idx) -> dgy = max_pool2d_gather(ggx, idx)    (scatter-add's adjoint)
//   max_pool2d_backward(gy, idx)        -> dgy = max_pool2d_gather(ggx, idx)
//   max_pool2d_gather(x, idx)           -> dx  = max_pool2d_backward(gy, idx)
//   max_unpool2d(x, idx)                -> dx  = max_pool2d_gather(gy, idx)
//   avg_pool2d(x)                       -> dx  = avg_pool2d_backward(gy)        (linear; adjoint pair)
//   avg_pool2d_backward(gy)             -> dgy = avg_pool2d(ggx)
// Indices are never differentiable.
#include <torch/library.h>

#include "autograd_util.h"

namespace fastconv {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using at::Tensor;

using MaxPoolSig = std::tuple<Tensor, Tensor>(const Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef,
                                              at::IntArrayRef, bool);
using ScatterSig = Tensor(const Tensor&, const Tensor&, c10::SymIntArrayRef);
using ScatterWindowSig = Tensor(const Tensor&, const Tensor&, c10::SymIntArrayRef, at::IntArrayRef, at::IntArrayRef,
                                at::IntArrayRef, at::IntArrayRef);
using GatherSig = Tensor(const Tensor&, const Tensor&);
using AvgPoolSig = Tensor(const Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, bool, bool,
                          std::optional<int64_t>);
using AvgBackwardSig = Tensor(const Tensor&, c10::SymIntArrayRef, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef,
                              bool, bool, std::optional<int64_t>);

const auto& max_pool_op() {
  static const auto h = op_handle<MaxPoolSig>("fastconv::max_pool2d_with_indices");
  return h;
}
using MaxValuesSig = Tensor(const Tensor&, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, at::IntArrayRef, bool);
const auto& max_values_op() {
  static const auto h = op_handle<MaxValuesSig>("fastconv::max_pool2d");
  return h;
}
const auto& scatter_add_op() {
  static const auto h = op_handle<ScatterSig>("fastconv::max_pool2d_backward");
  return h;
}
const auto& scatter_window_op() {
  static const auto h = op_handle<ScatterWindowSig>("fastconv::max_pool2d_backward_window");
  return h;
}
const auto& gather_op() {
  static const auto h = op_handle<GatherSig>("fastconv::max_pool2d_gather");
  return h;
}
const auto& unpool_op() {
  static const auto h = op_handle<ScatterSig>("fastconv::max_unpool2d");
  return h;
}
const auto& avg_pool_op() {
  static const auto h = op_handle<AvgPoolSig>("fastconv::avg_pool2d");
  return h;
}
const auto& avg_backward_op() {
  static const auto h = op_handle<AvgBackwardSig>("fastconv::avg_pool2d_backward");
  return h;
}

struct MaxPoolFunction : torch::autograd::Function<MaxPoolFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& input, at::IntArrayRef kernel_size,
                               at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                               bool ceil_mode) {
    at::AutoDispatchBelowADInplaceOrView below;
    auto [y, indices] = max_pool_op().call(input, kernel_size, stride, padding, dilation, ceil_mode);
    ctx->save_for_backward({indices});
    ctx->saved_data["input_hw"] = saved_sizes(input, 2);
    ctx->saved_data["kernel_size"] = kernel_size;
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["dilation"] = dilation;
    ctx->mark_non_differentiable({indices});
    // Otherwise autograd hands backward a materialised zero tensor for the indices' gradient: an int64
    // tensor of the output's shape filled on every backward (12.8 MB, ~0.5 ms, for 8x64x112x112 k2s2).
    ctx->set_materialize_grads(false);
    return {y, indices};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor gi;
    if (ctx->needs_input_grad(0) && grads[0].defined()) {
      const Tensor indices = ctx->get_saved_variables()[0];
      auto& d = ctx->saved_data;
      gi = scatter_window_op().call(grads[0], indices, d["input_hw"].toSymIntVector(),
                                    d["kernel_size"].toIntVector(), d["stride"].toIntVector(),
                                    d["padding"].toIntVector(), d["dilation"].toIntVector());
    }
    return first_only(gi, 6);
  }
};

// Shared by the scatters by indices (max_pool2d_backward, max_pool2d_backward_window, max_unpool2d): each is
// linear in its first input, and its adjoint gathers by the same indices.
struct ScatterFunction : torch::autograd::Function<ScatterFunction> {
  template <typename Run>
  static Tensor forward(AutogradContext* ctx, const Tensor& src, const Tensor& indices, const Run& run) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor out = run();
    ctx->save_for_backward({indices});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0)) g = gather_op().call(grads[0], ctx->get_saved_variables()[0]);
    return first_only(g, 3);  // apply's inputs: src, indices and the functor that runs the op
  }
};

struct GatherFunction : torch::autograd::Function<GatherFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& indices) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor y = gather_op().call(input, indices);
    ctx->save_for_backward({indices});
    ctx->saved_data["input_hw"] = saved_sizes(input, 2);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0))
      g = scatter_add_op().call(grads[0], ctx->get_saved_variables()[0],
                                ctx->saved_data["input_hw"].toSymIntVector());
    return first_only(g, 2);
  }
};

// The window arguments of avg_pool2d and avg_pool2d_backward, saved for the adjoint op.
void save_avg_window(AutogradContext* ctx, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                     at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                     std::optional<int64_t> divisor_override) {
  auto& d = ctx->saved_data;
  d["kernel_size"] = kernel_size;
  d["stride"] = stride;
  d["padding"] = padding;
  d["ceil_mode"] = ceil_mode;
  d["count_include_pad"] = count_include_pad;
  d["divisor_override"] = divisor_override;
}

struct AvgPoolFunction : torch::autograd::Function<AvgPoolFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, at::IntArrayRef kernel_size,
                        at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                        std::optional<int64_t> divisor_override) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor y = avg_pool_op().call(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                  divisor_override);
    save_avg_window(ctx, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
    ctx->saved_data["input_hw"] = saved_sizes(input, 2);
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0)) {
      auto& d = ctx->saved_data;
      g = avg_backward_op().call(grads[0], d["input_hw"].toSymIntVector(), d["kernel_size"].toIntVector(),
                                 d["stride"].toIntVector(), d["padding"].toIntVector(), d["ceil_mode"].toBool(),
                                 d["count_include_pad"].toBool(), d["divisor_override"].toOptional<int64_t>());
    }
    return first_only(g, 7);
  }
};

struct AvgPoolBackwardFunction : torch::autograd::Function<AvgPoolBackwardFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& grad_output, c10::SymIntArrayRef input_size,
                        at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding, bool ceil_mode,
                        bool count_include_pad, std::optional<int64_t> divisor_override) {
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor gi = avg_backward_op().call(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                                       count_include_pad, divisor_override);
    save_avg_window(ctx, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
    return gi;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Tensor g;
    if (ctx->needs_input_grad(0)) {
      auto& d = ctx->saved_data;
      g = avg_pool_op().call(grads[0], d["kernel_size"].toIntVector(), d["stride"].toIntVector(),
                             d["padding"].toIntVector(), d["ceil_mode"].toBool(), d["count_include_pad"].toBool(),
                             d["divisor_override"].toOptional<int64_t>());
    }
    return first_only(g, 8);
  }
};

// ---- the kernels registered at the Autograd key ----

std::tuple<Tensor, Tensor> max_pool2d_with_indices_autograd(const Tensor& input, at::IntArrayRef kernel_size,
                                                            at::IntArrayRef stride, at::IntArrayRef padding,
                                                            at::IntArrayRef dilation, bool ceil_mode) {
  auto out = MaxPoolFunction::apply(input, kernel_size, stride, padding, dilation, ceil_mode);
  return {out[0], out[1]};
}

// max_pool2d (values only): where a gradient is wanted, the values of max_pool2d_with_indices (whose backward has
// the indices); else the values-only kernel, below autograd.
Tensor max_pool2d_autograd(const Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  if (at::GradMode::is_enabled() && input.requires_grad())
    return MaxPoolFunction::apply(input, kernel_size, stride, padding, dilation, ceil_mode)[0];
  at::AutoDispatchBelowADInplaceOrView guard;
  return max_values_op().call(input, kernel_size, stride, padding, dilation, ceil_mode);
}

Tensor max_pool2d_backward_autograd(const Tensor& grad_output, const Tensor& indices, c10::SymIntArrayRef input_size) {
  return ScatterFunction::apply(grad_output, indices,
                                [&] { return scatter_add_op().call(grad_output, indices, input_size); });
}

Tensor max_pool2d_backward_window_autograd(const Tensor& grad_output, const Tensor& indices,
                                           c10::SymIntArrayRef input_size, at::IntArrayRef kernel_size,
                                           at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation) {
  return ScatterFunction::apply(grad_output, indices, [&] {
    return scatter_window_op().call(grad_output, indices, input_size, kernel_size, stride, padding, dilation);
  });
}

Tensor max_unpool2d_autograd(const Tensor& input, const Tensor& indices, c10::SymIntArrayRef output_size) {
  return ScatterFunction::apply(input, indices,
                                [&] { return unpool_op().call(input, indices, output_size); });
}

Tensor max_pool2d_gather_autograd(const Tensor& input, const Tensor& indices) {
  return GatherFunction::apply(input, indices);
}

Tensor avg_pool2d_autograd(const Tensor& input, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                           at::IntArrayRef padding, bool ceil_mode, bool count_include_pad,
                           std::optional<int64_t> divisor_override) {
  return AvgPoolFunction::apply(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override);
}

Tensor avg_pool2d_backward_autograd(const Tensor& grad_output, c10::SymIntArrayRef input_size,
                                    at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                    bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  return AvgPoolBackwardFunction::apply(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override);
}

}  // namespace

TORCH_LIBRARY_IMPL(fastconv, Autograd, m) {
  m.impl("max_pool2d_with_indices", &max_pool2d_with_indices_autograd);
  m.impl("max_pool2d", &max_pool2d_autograd);
  m.impl("max_pool2d_backward", &max_pool2d_backward_autograd);
  m.impl("max_pool2d_backward_window", &max_pool2d_backward_window_autograd);
  m.impl("max_unpool2d", &max_unpool2d_autograd);
  m.impl("max_pool2d_gather", &max_pool2d_gather_autograd);
  m.impl("avg_pool2d", &avg_pool2d_autograd);
  m.impl("avg_pool2d_backward", &avg_pool2d_backward_autograd);
}

}  // namespace fastconv
