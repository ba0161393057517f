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

// adaptive_avg_pool2d (and the shared checks of adaptive_max_pool2d).
AdaptivePoolPlan plan_adaptive_pool2d(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype,
                                      const char* op);

// adaptive_max_pool2d: plan_adaptive_pool2d's checks, and non-zero channels (torch's max pooling rejects C == 0;
// its average pooling returns an empty result).
AdaptivePoolPlan plan_adaptive_max_pool2d(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype);

// torch computes an adaptive average to 1x1 as a mean over the plane: for an empty plane, (N, C, 1, 1) NaNs
// (0 / 0), and an empty gradient, where its pooling kernel (and validate_adaptive_pool) would reject the input.
// True for that case, after the checks that still apply; the bindings then answer without the kernels.
bool averages_an_empty_plane(const at::Tensor& input, at::IntArrayRef output_size, DtypeCheck check_dtype,
                             const char* op);
bool averages_an_empty_plane_backward(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                      DtypeCheck check_dtype, const char* op);

AdaptivePoolPlan plan_adaptive_avg_pool2d_backward(const at::Tensor& grad_output, at::IntArrayRef input_size,
                                                   bool channels_last, DtypeCheck check_dtype);

AdaptivePoolPlan plan_adaptive_max_pool2d_backward(const at::Tensor& grad_output, const at::Tensor& indices,
                                                   at::IntArrayRef input_size, bool channels_last,
                                                   DtypeCheck check_dtype);

AdaptivePoolPlan plan_adaptive_max_pool2d_gather(const at::Tensor& input, const at::Tensor& indices,
                                                 DtypeCheck check_dtype);

}  // namespace fastconv
