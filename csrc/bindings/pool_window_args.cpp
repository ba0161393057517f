#include "pool_window_args.h"

#include "tensor_checks.h"

namespace fastconv {

PoolParams pool_window_params(at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                              at::IntArrayRef dilation, const char* op) {
  check_list_size(kernel, 2, op, "kernel_size");
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 2, op, "padding");
  check_list_size(dilation, 2, op, "dilation");
  PoolParams p;
  p.kh = kernel[0], p.kw = kernel[1];
  p.sh = stride[0], p.sw = stride[1];
  p.ph = padding[0], p.pw = padding[1];
  p.dh = dilation[0], p.dw = dilation[1];
  const std::string err = validate_pool_window(p, op);
  TORCH_CHECK_VALUE(err.empty(), err);
  return p;
}

}  // namespace fastconv
