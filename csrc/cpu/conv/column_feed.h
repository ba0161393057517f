// The column-reuse step of the direct kernels that slide a row of output pixels over an input row (the
// channels_last depthwise forward, conv_depthwise_nhwc.cpp, and the small-group kernels, conv_small_group.cpp).
#pragma once

#if defined(__AVX512F__)
#include "../gemm/gemm_microkernel.h"  // Zmm<T>

namespace fastconv {
namespace cpu {

// Column j of a row of a KS-wide kernel at stride STRIDE, loaded once (xv), into the NP pixels that read it: pixel
// (j - s) / STRIDE takes it as tap s, times w[s * kStep] (kStep: the weights' spacing, for callers that interleave
// several sets). With j a constant (the callers' loops are unrolled) acc stays in registers.
template <typename T, int KS, int STRIDE, int NP, int kStep = 1>
inline void feed_column(int j, typename Zmm<T>::V xv, const typename Zmm<T>::V* w, typename Zmm<T>::V* acc) {
  using Z = Zmm<T>;
#pragma GCC unroll 7
  for (int s = 0; s < KS; ++s)
    if (j >= s && (j - s) % STRIDE == 0 && (j - s) / STRIDE < NP) {
      const int q = (j - s) / STRIDE;
      acc[q] = Z::fma(w[s * kStep], xv, acc[q]);
    }
}

}  // namespace cpu
}  // namespace fastconv
#endif
