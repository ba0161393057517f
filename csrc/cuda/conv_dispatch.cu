// The one place that says which CUDA convolution algorithm runs when (see conv_kernels.cuh):
//   1. tensor cores through CUTLASS's implicit GEMMs (tensor_core/): NHWC, groups 1, zero padding, channels a
//      multiple of 8 (float32: 4, and only with TF32 allowed), sm_80+; all three passes;
//   2. the depthwise kernels (conv_depthwise.cu): NHWC, groups == C == K, zero padding;
//   3. the WMMA implicit GEMM (conv_implicit_gemm.cu): other float16 / bfloat16 NHWC forwards (grouped ones);
//   4. the direct kernels (conv_direct.cu): everything else, and the reference of the tests.
#include <type_traits>

#include "conv_implicit_gemm.cuh"
#include "conv_kernels.cuh"
#include "cuda_common.cuh"
#include "tensor_core/tc_conv.cuh"

namespace fastconv {
namespace cuda {

template <typename T>
bool conv_uses_tensor_cores(const ConvParams& p, ConvPass pass, const ConvOptions& opt) {
  return tc_conv_applies<T>(p, pass, opt);
}

template <typename T>
size_t conv_backward_weight_workspace(const ConvParams& p, const ConvOptions& opt) {
  if (tc_conv_applies<T>(p, ConvPass::BackwardWeight, opt)) return tc_conv_workspace_bytes<T>(p, ConvPass::BackwardWeight);
  if (depthwise_applies<T>(p)) return depthwise_weight_workspace<T>(p);
  return 0;
}

// The tensor-core kernels exist for float, __half and __nv_bfloat16; float64 never reaches them.
template <typename T>
constexpr bool kHasTensorCorePath = !std::is_same_v<T, double>;

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, const ConvOptions& opt,
                  cudaStream_t stream) {
  if (p.weight_rsc) {
    if constexpr (kHasTensorCorePath<T>) {
      if (tc_conv_applies<T>(p, ConvPass::Forward, opt)) return tc_conv_forward<T>(p, x, w, bias, y, stream);
    }
    throw CudaError("fastconv: conv_forward got a (K, R, S, C) weight for a problem the tensor cores do not take");
  }
  if (depthwise_applies<T>(p)) return depthwise_forward<T>(p, x, w, bias, y, stream);
  if (implicit_gemm_forward<T>(p, x, w, bias, y, opt, stream)) return;
  conv_forward_direct<T>(p, x, w, bias, y, stream);
}

template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, const ConvOptions& opt,
                         cudaStream_t stream) {
  if (p.weight_rsc) {
    if constexpr (kHasTensorCorePath<T>) {
      if (tc_conv_applies<T>(p, ConvPass::BackwardInput, opt)) return tc_conv_backward_input<T>(p, gy, w, gx, stream);
    }
    throw CudaError("fastconv: conv_backward_input got a (K, R, S, C) weight for a problem the tensor cores do not take");
  }
  if (depthwise_applies<T>(p)) return depthwise_backward_input<T>(p, gy, w, gx, stream);
  conv_backward_input_direct<T>(p, gy, w, gx, stream);
}

template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, const ConvOptions& opt,
                          cudaStream_t stream, void* workspace, size_t workspace_bytes) {
  if constexpr (kHasTensorCorePath<T>) {
    // Only with the workspace the caller was told to allocate (none: the other kernels, same results up to
    // rounding; every path is deterministic).
    if (workspace != nullptr && tc_conv_applies<T>(p, ConvPass::BackwardWeight, opt))
      return tc_conv_backward_weight<T>(p, x, gy, gw, workspace, workspace_bytes, stream);
  }
  if (workspace != nullptr && depthwise_applies<T>(p))
    return depthwise_backward_weight<T>(p, x, gy, gw, workspace, workspace_bytes, stream);
  conv_backward_weight_direct<T>(p, x, gy, gw, stream);
}

#define FASTCONV_INSTANTIATE(T)                                                                              \
  template bool conv_uses_tensor_cores<T>(const ConvParams&, ConvPass, const ConvOptions&);                  \
  template size_t conv_backward_weight_workspace<T>(const ConvParams&, const ConvOptions&);                 \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*, const ConvOptions&,     \
                                cudaStream_t);                                                               \
  template void conv_backward_input<T>(const ConvParams&, const T*, const T*, T*, const ConvOptions&,        \
                                       cudaStream_t);                                                        \
  template void conv_backward_weight<T>(const ConvParams&, const T*, const T*, T*, const ConvOptions&,       \
                                        cudaStream_t, void*, size_t);
FASTCONV_CUDA_FOR_EACH_TYPE(FASTCONV_INSTANTIATE)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
