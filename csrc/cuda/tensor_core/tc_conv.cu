// tc_conv.cuh's entry points: which pass and element type take the tensor-core kernels, and their launch.
#include <type_traits>

#include "tc_conv.cuh"
#include "tc_passes.cuh"

namespace fastconv {
namespace cuda {

template <typename T>
bool tc_conv_applies(const ConvParams& p, ConvPass pass, const ConvOptions& opt) {
  if constexpr (std::is_same_v<T, double>) {
    (void)p, (void)pass, (void)opt;
    return false;  // no float64 tensor-core path
  } else {
    if (std::is_same_v<T, float> && !opt.allow_tf32) return false;  // float32 stays exact unless TF32 is allowed
    switch (pass) {
      case ConvPass::Forward: return tc::fprop_applies<T>(p);
      case ConvPass::BackwardInput: return tc::dgrad_applies<T>(p);
      case ConvPass::BackwardWeight: return tc::wgrad_applies<T>(p);
    }
    return false;
  }
}

template <typename T>
size_t tc_conv_workspace_bytes(const ConvParams& p, ConvPass pass) {
  if constexpr (std::is_same_v<T, double>) {
    (void)p, (void)pass;
    return 0;
  } else {
    return pass == ConvPass::BackwardWeight ? tc::wgrad_workspace_bytes<T>(p) : 0;
  }
}

template <typename T>
void tc_conv_forward(const ConvParams& p, const T* x, const T* w_krsc, const T* bias, T* y, cudaStream_t stream) {
  tc::fprop<T>(p, x, w_krsc, bias, y, stream);
}

template <typename T>
void tc_conv_backward_input(const ConvParams& p, const T* gy, const T* w_krsc, T* gx, cudaStream_t stream) {
  tc::dgrad<T>(p, gy, w_krsc, gx, stream);
}

template <typename T>
void tc_conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream) {
  tc::wgrad<T>(p, x, gy, gw, workspace, workspace_bytes, stream);
}

template bool tc_conv_applies<double>(const ConvParams&, ConvPass, const ConvOptions&);
template size_t tc_conv_workspace_bytes<double>(const ConvParams&, ConvPass);
#define FASTCONV_INSTANTIATE(T)                                                                                   \
  template bool tc_conv_applies<T>(const ConvParams&, ConvPass, const ConvOptions&);                               \
  template size_t tc_conv_workspace_bytes<T>(const ConvParams&, ConvPass);                                        \
  template void tc_conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*, cudaStream_t);           \
  template void tc_conv_backward_input<T>(const ConvParams&, const T*, const T*, T*, cudaStream_t);              \
  template void tc_conv_backward_weight<T>(const ConvParams&, const T*, const T*, T*, void*, size_t, cudaStream_t);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(__half)
FASTCONV_INSTANTIATE(__nv_bfloat16)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
