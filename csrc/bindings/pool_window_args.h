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

}  // namespace fastconv
