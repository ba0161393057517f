// Argument checks of the adaptive pooling ops, shared by the CPU and CUDA bindings: each plan_* function
// checks everything but the backend's dtype rule (passed in) and returns the kernel's parameters (layout
// set) with the memory format of the result.
#pragma once

#include <ATen/ATen.h>

#include "../common/adaptive_pool_params.h"
#include "tensor_checks.h"

namespace fastconv {

struct AdaptivePoolPlan {
  AdaptivePoolParams p;
  at::MemoryFormat fmt;
};

// adaptive_avg_pool2d and adaptive_max_pool2d (the same checks).
AdaptivePoolPlan plan_adaptive_pool2d(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype,
                                      const char* op);

AdaptivePoolPlan plan_adaptive_avg_pool2d_backward(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                                   bool channels_last, DtypeCheck check_dtype);

AdaptivePoolPlan plan_adaptive_max_pool2d_backward(const at::Tensor& grad_output, const at::Tensor& indices,
                                                   at::IntArrayRef input_size, bool channels_last,
                                                   DtypeCheck check_dtype);

AdaptivePoolPlan plan_adaptive_max_pool2d_gather(const at::Tensor& input, const at::Tensor& indices,
                                                 DtypeCheck check_dtype);

}  // namespace fastconv
