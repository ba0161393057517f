// Argument checks and layout choice shared by every op's binding (the only code that includes ATen).
// Errors surface in Python as ValueError / TypeError whose message names the argument.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace fastconv {

// "channels_last" here means: 4-d, dense in NHWC order, and not also dense in NCHW order (the shapes
// that are both, e.g. C == 1, count as NCHW). fastconv/ops/_layout.py applies the same rule for fake
// tensors, so eager and compiled outputs get the same strides.
inline bool is_channels_last(const at::Tensor& t) {
  return t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous();
}

inline at::MemoryFormat activation_format(const at::Tensor& a, const at::Tensor& b) {
  return (is_channels_last(a) || is_channels_last(b)) ? at::MemoryFormat::ChannelsLast
                                                     : at::MemoryFormat::Contiguous;
}

// A backend's dtype rule for a floating tensor argument: check_floating here (CPU: float32/float64),
// cuda_ops::check_floating_cuda (also float16/bfloat16). Shared argument checks take one.
using DtypeCheck = void (*)(const at::Tensor& t, const char* op, const char* name);

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "fastconv.", op, ": ",
                   name, " must be float32 or float64, got ", t.scalar_type());
}

inline void check_same_dtype_device(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn,
                                    const char* op) {
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "fastconv.", op, ": ", an, " and ", bn,
                   " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), "fastconv.", op, ": ", an, " and ", bn,
              " must be on the same device, got ", a.device(), " and ", b.device());
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == dim, "fastconv.", op, ": expected ", name, " with ", dim,
                    " dimensions, got ", t.dim(), " (shape ", t.sizes(), ")");
}

inline void check_list_size(at::IntArrayRef v, size_t n, const char* op, const char* name) {
  TORCH_CHECK_VALUE(v.size() == n, "fastconv.", op, ": ", name, " must have ", n, " values, got ", v);
}

}  // namespace fastconv
