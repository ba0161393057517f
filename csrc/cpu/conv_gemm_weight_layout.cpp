// Weight repacking between the (K, Cg, R, S) layout of the API and the (K, R, S, Cg) layout whose rows
// match NHWC im2col columns.
#include "conv_gemm.h"

namespace fastconv {
namespace cpu {

template <typename T>
void weight_to_rsc(const ConvParams& p, const T* w, T* wt) {
  const int64_t Cg = p.C_per_group(), RS = p.R * p.S;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t rs = 0; rs < RS; ++rs) wt[(k * RS + rs) * Cg + c] = w[(k * Cg + c) * RS + rs];
}

template <typename T>
void weight_from_rsc(const ConvParams& p, const T* wt, T* w) {
  const int64_t Cg = p.C_per_group(), RS = p.R * p.S;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t rs = 0; rs < RS; ++rs) w[(k * Cg + c) * RS + rs] = wt[(k * RS + rs) * Cg + c];
}

template void weight_to_rsc<float>(const ConvParams&, const float*, float*);
template void weight_to_rsc<double>(const ConvParams&, const double*, double*);
template void weight_from_rsc<float>(const ConvParams&, const float*, float*);
template void weight_from_rsc<double>(const ConvParams&, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
