// Glue shared by the CUDA op bindings: dtype dispatch onto the CUDA kernels' element types, raw pointers,
// device guard + current stream, and the CUDA-side argument checks (float16/bfloat16 allowed).
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <exception>

#include "../../cuda/cuda_common.cuh"
#include "../tensor_checks.h"

namespace fastconv {
namespace cuda_ops {

// Calls fn.template operator()<T>() with T the kernels' element type of `type`.
template <typename F>
void dispatch_floating(at::ScalarType type, const char* op, F&& fn) {
  switch (type) {
    case at::kFloat: return fn.template operator()<float>();
    case at::kDouble: return fn.template operator()<double>();
    case at::kHalf: return fn.template operator()<__half>();
    case at::kBFloat16: return fn.template operator()<__nv_bfloat16>();
    default: TORCH_CHECK_TYPE(false, "fastconv.", op, ": unsupported dtype ", type);
  }
}

// at::Half / at::BFloat16 and __half / __nv_bfloat16 share their 16-bit representation.
template <typename T>
const T* cptr(const at::Tensor& t) {
  return reinterpret_cast<const T*>(t.const_data_ptr());
}
template <typename T>
T* mptr(at::Tensor& t) {
  return reinterpret_cast<T*>(t.mutable_data_ptr());
}
template <typename T>
const T* cptr_or_null(const at::Tensor& t) {
  return t.defined() ? cptr<T>(t) : nullptr;
}

// The current stream of the current device (the CUDAGuard of the op has made it the input's device).
inline cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Runs a launcher, turning its CudaError into a RuntimeError naming the op.
template <typename F>
void launch(const char* op, F&& fn) {
  try {
    fn();
  } catch (const cuda::CudaError& e) {
    TORCH_CHECK(false, "fastconv.", op, ": ", e.what());
  }
}

inline void check_floating_cuda(const at::Tensor& t, const char* op, const char* name) {
  check_dtype_supported(t, {at::kHalf, at::kBFloat16, at::kFloat, at::kDouble}, "cuda", op, name);
  TORCH_CHECK(t.is_cuda(), "fastconv.", op, ": ", name, " must be a CUDA tensor, got ", t.device());
}

inline void check_activation_cuda(const at::Tensor& t, const char* op, const char* name) {
  check_dim(t, 4, op, name);
  check_floating_cuda(t, op, name);
}

inline Layout to_layout(at::MemoryFormat fmt) {
  return fmt == at::MemoryFormat::ChannelsLast ? Layout::NHWC : Layout::NCHW;
}

}  // namespace cuda_ops
}  // namespace fastconv
