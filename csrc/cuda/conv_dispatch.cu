// Entry points of the CUDA convolution: the tensor-core implicit GEMM (conv_implicit_gemm.cu) where it
// applies (forward, float16 / bfloat16, NHWC), else the direct kernels (conv_direct.cu).
#include "conv_implicit_gemm.cuh"
#include "conv_kernels.cuh"
#include "cuda_common.cuh"

namespace fastconv {
namespace cuda {

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, const ConvOptions& opt,
                  cudaStream_t stream) {
  if (implicit_gemm_forward<T>(p, x, w, bias, y, opt, stream)) return;
  conv_forward_direct<T>(p, x, w, bias, y, stream);
}

template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, const ConvOptions& opt,
                         cudaStream_t stream) {
  (void)opt;
  conv_backward_input_direct<T>(p, gy, w, gx, stream);
}

template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, const ConvOptions& opt,
                          cudaStream_t stream) {
  (void)opt;
  conv_backward_weight_direct<T>(p, x, gy, gw, stream);
}

#define FASTCONV_INSTANTIATE(T)                                                                              \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*, const ConvOptions&,     \
                                cudaStream_t);                                                               \
  template void conv_backward_input<T>(const ConvParams&, const T*, const T*, T*, const ConvOptions&,        \
                                       cudaStream_t);                                                        \
  template void conv_backward_weight<T>(const ConvParams&, const T*, const T*, T*, const ConvOptions&,       \
                                        cudaStream_t);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
FASTCONV_INSTANTIATE(__half)
FASTCONV_INSTANTIATE(__nv_bfloat16)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
