#include "pool_window_args.h"

#include "tensor_checks.h"

namespace fastconv {

PoolParams pool_window_params(at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                              at::IntArrayRef dilation, const char* op) {
  check_list_size(kernel, 2, op, "kernel_size");
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 2, op, "padding");
  check_list_size(dilation, 2, op, "dilation");
  TORCH_CHECK_VALUE(kernel[0] > 0 && kernel[1] > 0, "fastconv.", op, ": kernel_size must be positive, got ", kernel);
  TORCH_CHECK_VALUE(stride[0] > 0 && stride[1] > 0, "fastconv.", op, ": stride must be positive, got ", stride);
  TORCH_CHECK_VALUE(dilation[0] > 0 && dilation[1] > 0, "fastconv.", op, ": dilation must be positive, got ",
                    dilation);
  TORCH_CHECK_VALUE(padding[0] >= 0 && padding[1] >= 0, "fastconv.", op, ": padding must be non-negative, got ",
                    padding);
  PoolParams p;
  p.kh = kernel[0], p.kw = kernel[1];
  p.sh = stride[0], p.sw = stride[1];
  p.ph = padding[0], p.pw = padding[1];
  p.dh = dilation[0], p.dw = dilation[1];
  return p;
}

}  // namespace fastconv
