// Window arguments of a pooling backward op (which takes its sizes from its tensors), checked the same way
// by the CPU and CUDA bindings.
#pragma once

#include <ATen/ATen.h>

#include "../common/pool_params.h"

namespace fastconv {

// PoolParams with only the window fields set: kernel, stride and dilation positive, padding non-negative;
// a bad argument raises naming it.
PoolParams pool_window_params(at::IntArrayRef kernel_size, at::IntArrayRef stride, at::IntArrayRef padding,
                              at::IntArrayRef dilation, const char* op);

// max_pool2d_backward_window: grad_output (4-d) must have the shape a max pooling of an input of spatial size
// input_size with this window produces, in either ceil_mode (the op is not told which).
void check_window_grad_output(const PoolParams& window, const at::Tensor& grad_output, at::IntArrayRef input_size,
                              const char* op);

}  // namespace fastconv
