// Argument checks and layout choice shared by every op's binding (the only code that includes ATen).
// Errors surface in Python as ValueError / TypeError whose message names the argument.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
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
// cuda_ops::check_floating_cuda (also float16/bfloat16). Shared argument checks take one, and apply it to
// every floating tensor argument before comparing dtypes, so an unsupported dtype is reported as such
// ("input and weight must have the same dtype, got Float and Byte" hid that uint8 is not implemented).
using DtypeCheck = void (*)(const at::Tensor& t, const char* op, const char* name);

// The one error of every dtype rule: names the dtypes the backend implements (Python's names), e.g.
// "fastconv.conv2d: weight must be float32 or float64 on cpu, got uint8".
inline void check_dtype_supported(const at::Tensor& t, std::initializer_list<at::ScalarType> supported,
                                  const char* device, const char* op, const char* name) {
  const at::ScalarType s = t.scalar_type();
  for (const at::ScalarType ok : supported)
    if (s == ok) return;
  std::string names;
  size_t i = 0;
  for (const at::ScalarType ok : supported) {
    if (i++) names += i == supported.size() ? " or " : ", ";
    names += c10::getDtypeNames(ok).first;
  }
  TORCH_CHECK_TYPE(false, "fastconv.", op, ": ", name, " must be ", names, " on ", device, ", got ",
                   c10::getDtypeNames(s).first);
}

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  check_dtype_supported(t, {at::kFloat, at::kDouble}, "cpu", op, name);
}

// The device first: a meta tensor among CPU ones (shape inference) is a device mismatch whatever the dtypes.
inline void check_same_dtype_device(const at::Tensor& a, const char* an, const at::Tensor& b, const char* bn,
                                    const char* op) {
  TORCH_CHECK(a.device() == b.device(), "fastconv.", op, ": ", an, " and ", bn,
              " must be on the same device, got ", a.device(), " and ", b.device());
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), "fastconv.", op, ": ", an, " and ", bn,
                   " must have the same dtype, got ", a.scalar_type(), " and ", b.scalar_type());
}

inline void check_dim(const at::Tensor& t, int64_t dim, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == dim, "fastconv.", op, ": expected ", name, " with ", dim,
                    " dimensions, got ", t.dim(), " (shape ", t.sizes(), ")");
}

inline void check_list_size(at::IntArrayRef v, size_t n, const char* op, const char* name) {
  TORCH_CHECK_VALUE(v.size() == n, "fastconv.", op, ": ", name, " must have ", n, " values, got ", v);
}

}  // namespace fastconv
