// Chooses the CPU algorithm for each convolution pass:
//   depthwise (groups == C, one input channel per group)  -> conv_depthwise*.cpp
//   everything else with a non-empty output               -> im2col + packed GEMM (conv_gemm*.cpp)
//   empty outputs / empty gradients                       -> the direct reference kernels
// FASTCONV_CPU_DIRECT=1 in the environment forces the direct kernels (used by tests as the reference).
#include <cstdlib>

#include "conv_gemm.h"
#include "conv_kernels.h"

namespace fastconv {
namespace cpu {
namespace {

bool force_direct() {
  static const bool v = [] {
    const char* e = std::getenv("FASTCONV_CPU_DIRECT");
    return e != nullptr && e[0] == '1';
  }();
  return v;
}

bool use_gemm(const ConvParams& p) { return !force_direct() && p.N > 0 && p.OH > 0 && p.OW > 0; }

}  // namespace

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  if (use_gemm(p)) return conv_forward_gemm(p, x, w, bias, y);
  conv_forward_direct(p, x, w, bias, y);
}

template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx) {
  if (use_gemm(p)) return conv_backward_input_gemm(p, gy, w, gx);
  conv_backward_input_direct(p, gy, w, gx);
}

template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw) {
  if (use_gemm(p)) return conv_backward_weight_gemm(p, x, gy, gw);
  conv_backward_weight_direct(p, x, gy, gw);
}

#define FASTCONV_INSTANTIATE(T)                                                           \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*);     \
  template void conv_backward_input<T>(const ConvParams&, const T*, const T*, T*);        \
  template void conv_backward_weight<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)

}  // namespace cpu
}  // namespace fastconv
