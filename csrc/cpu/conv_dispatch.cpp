// Chooses the CPU algorithm for each convolution pass.
#include "conv_kernels.h"

namespace fastconv {
namespace cpu {

template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  conv_forward_direct(p, x, w, bias, y);
}

template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx) {
  conv_backward_input_direct(p, gy, w, gx);
}

template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw) {
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
