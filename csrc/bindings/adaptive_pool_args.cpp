#include "adaptive_pool_args.h"

#include <ATen/Parallel.h>

#include <string>

namespace fastconv {
namespace {

void check_activation(const at::Tensor& t, DtypeCheck check_dtype, const char* op, const char* name) {
  check_dim(t, 4, op, name);
  check_dtype(t, op, name);
}

void check_indices(const at::Tensor& indices, const at::Tensor& like, const char* like_name, const char* op) {
  check_dim(indices, 4, op, "indices");
  TORCH_CHECK_TYPE(indices.scalar_type() == at::kLong, "fastconv.", op, ": indices must be int64, got ",
                   indices.scalar_type());
  TORCH_CHECK(indices.device() == like.device(), "fastconv.", op, ": indices and ", like_name,
              " must be on the same device, got ", indices.device(), " and ", like.device());
}

AdaptivePoolPlan make_plan(at::IntArrayRef input_size, int64_t oh, int64_t ow, at::MemoryFormat fmt, const char* op) {
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
  return {p, fmt};
}

// The backward ops take a channels_last flag: grad_input follows the input's layout even when grad_output
// cannot carry it (global pooling: (N, C, 1, 1) is dense in both layouts).
at::MemoryFormat backward_format(bool channels_last, const at::Tensor& a, const at::Tensor& b) {
  return channels_last ? at::MemoryFormat::ChannelsLast : activation_format(a, b);
}

void check_grad_output_matches(const at::Tensor& grad_output, const AdaptivePoolParams& p,
                               at::IntArrayRef input_size, const char* op) {
  TORCH_CHECK_VALUE(grad_output.size(0) == p.N && grad_output.size(1) == p.C, "fastconv.", op,
                    ": grad_output of shape ", grad_output.sizes(), " does not match input_size ", input_size);
}

}  // namespace

AdaptivePoolPlan plan_adaptive_pool2d(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype,
                                      const char* op) {
  check_activation(input, check_dtype, op, "input");
  check_list_size(output_size, 2, op, "output_size");
  return make_plan(input.sizes(), output_size[0], output_size[1], activation_format(input, input), op);
}

bool averages_an_empty_plane(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype,
                             const char* op) {
  check_activation(input, check_dtype, op, "input");
  check_list_size(output_size, 2, op, "output_size");
  return output_size[0] == 1 && output_size[1] == 1 && (input.size(2) == 0 || input.size(3) == 0);
}

bool averages_an_empty_plane_backward(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                      DtypeCheck check_dtype, const char* op) {
  check_activation(grad_output, check_dtype, op, "grad_output");
  check_list_size(input_size, 4, op, "input_size");
  if (grad_output.size(2) != 1 || grad_output.size(3) != 1 || (input_size[2] != 0 && input_size[3] != 0)) return false;
  TORCH_CHECK_VALUE(input_size[0] >= 0 && input_size[1] >= 0 && input_size[2] >= 0 && input_size[3] >= 0,
                    "fastconv.", op, ": input_size must be non-negative, got ", input_size);
  AdaptivePoolParams p;
  p.N = input_size[0];
  p.C = input_size[1];
  check_grad_output_matches(grad_output, p, input_size, op);
  return true;
}

AdaptivePoolPlan plan_adaptive_max_pool2d(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype) {
  const char* op = "adaptive_max_pool2d";
  const AdaptivePoolPlan plan = plan_adaptive_pool2d(input, output_size, check_dtype, op);
  TORCH_CHECK_VALUE(plan.p.C > 0, "fastconv.", op, ": input must have non-zero channels (torch's adaptive max pooling "
                    "rejects them), got shape ", input.sizes());
  return plan;
}

AdaptivePoolPlan plan_adaptive_avg_pool2d_backward(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                                   bool channels_last, DtypeCheck check_dtype) {
  const char* op = "adaptive_avg_pool2d_backward";
  check_activation(grad_output, check_dtype, op, "grad_output");
  check_list_size(input_size, 4, op, "input_size");
  const auto fmt = backward_format(channels_last, grad_output, grad_output);
  const AdaptivePoolPlan plan = make_plan(input_size, grad_output.size(2), grad_output.size(3), fmt, op);
  check_grad_output_matches(grad_output, plan.p, input_size, op);
  return plan;
}

AdaptivePoolPlan plan_adaptive_max_pool2d_backward(const at::Tensor& grad_output, const at::Tensor& indices,
                                                   at::IntArrayRef input_size, bool channels_last,
                                                   DtypeCheck check_dtype) {
  const char* op = "adaptive_max_pool2d_backward";
  check_activation(grad_output, check_dtype, op, "grad_output");
  check_indices(indices, grad_output, "grad_output", op);
  check_list_size(input_size, 4, op, "input_size");
  TORCH_CHECK_VALUE(indices.sizes() == grad_output.sizes(), "fastconv.", op, ": indices of shape ",
                    indices.sizes(), " must match grad_output of shape ", grad_output.sizes());
  const auto fmt = backward_format(channels_last, grad_output, indices);
  const AdaptivePoolPlan plan = make_plan(input_size, grad_output.size(2), grad_output.size(3), fmt, op);
  check_grad_output_matches(grad_output, plan.p, input_size, op);
  return plan;
}

AdaptivePoolPlan plan_adaptive_max_pool2d_gather(const at::Tensor& input, const at::Tensor& indices,
                                                 DtypeCheck check_dtype) {
  const char* op = "adaptive_max_pool2d_gather";
  check_activation(input, check_dtype, op, "input");
  check_indices(indices, input, "input", op);
  TORCH_CHECK_VALUE(indices.size(0) == input.size(0) && indices.size(1) == input.size(1), "fastconv.", op,
                    ": indices of shape ", indices.sizes(), " do not match input of shape ", input.sizes(),
                    " in batch and channels");
  return make_plan(input.sizes(), indices.size(2), indices.size(3), activation_format(input, indices), op);
}

}  // namespace fastconv
