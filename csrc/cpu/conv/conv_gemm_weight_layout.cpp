// Weight repacking between the (K, Cg, R, S) layout of the API and the (K, R, S, Cg) layout whose rows
// match NHWC im2col columns.
#include <algorithm>

#include "../../common/parallel.h"
#include "conv_gemm.h"
#include "../transpose.h"

namespace fastconv {
namespace cpu {

template <typename T>
void weight_to_rsc(const ConvParams& p, const T* w, T* wt, int slices) {
  const int64_t Cg = p.C_per_group(), RS = p.R * p.S;
  for (int sl = 0; sl < slices; ++sl) {
    int64_t c0, c1;
    split_range(Cg, slices, sl, c0, c1);
    const int64_t cn = c1 - c0;
    for (int64_t k = 0; k < p.K; ++k) {
      T* row = wt + k * RS * Cg + RS * c0;  // this slice's (R, S, cn) block of row k
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t rs = 0; rs < RS; ++rs) row[rs * cn + (c - c0)] = w[(k * Cg + c) * RS + rs];
    }
  }
}

template <typename T>
void weight_from_rsc(const ConvParams& p, const T* wt, T* w) {
  const int64_t Cg = p.C_per_group(), RS = p.R * p.S;
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t rs = 0; rs < RS; ++rs) w[(k * Cg + c) * RS + rs] = wt[(k * RS + rs) * Cg + c];
}

template <typename T>
void weight_to_rsck(const ConvParams& p, const T* w, T* wt) {
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S;
  // Per (group, tap): the (Kg x Cg) slice w[g, :, :, rs] transposed into wt[g, rs] (Cg x Kg).
  for (int64_t g = 0; g < p.groups; ++g)
    transpose_tiled_batch(RS, Kg, Cg, w + g * Kg * Cg * RS, 1, Cg * RS, RS, wt + g * RS * Cg * Kg, Cg * Kg, Kg,
                          p.num_threads);
}

template <typename T>
void weight_from_crsk(const ConvParams& p, const T* wt, T* w) {
  const int64_t Kg = p.K_per_group(), CRS = p.C_per_group() * p.R * p.S;
  for (int64_t g = 0; g < p.groups; ++g)
    transpose_tiled(CRS, Kg, wt + g * CRS * Kg, Kg, 1, w + g * Kg * CRS, CRS, p.num_threads);
}

template void weight_to_rsck<float>(const ConvParams&, const float*, float*);
template void weight_to_rsck<double>(const ConvParams&, const double*, double*);
template void weight_from_crsk<float>(const ConvParams&, const float*, float*);
template void weight_from_crsk<double>(const ConvParams&, const double*, double*);
template void weight_to_rsc<float>(const ConvParams&, const float*, float*, int);
template void weight_to_rsc<double>(const ConvParams&, const double*, double*, int);
template void weight_from_rsc<float>(const ConvParams&, const float*, float*);
template void weight_from_rsc<double>(const ConvParams&, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
