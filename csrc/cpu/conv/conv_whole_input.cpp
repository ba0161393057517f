// Whole-input-kernel convolutions as one GEMM per pass (see conv_whole_input.h).
#include "conv_whole_input.h"

#include "../../common/denormal_guard.h"
#include "conv_gemm.h"
#include "../gemm/gemm.h"
#include "../gemm/gemm_scratch.h"

namespace fastconv {
namespace cpu {
namespace {

// The weight with rows in the activation's (c, r, s) or (r, s, c) order: w itself, or repacked.
template <typename T>
const T* weight_rows(const ConvParams& p, const T* w) {
  if (p.layout == Layout::NCHW) return w;
  T* wt = thread_scratch<T>(kScratchWeight, size_t(p.K * p.C * p.R * p.S));
  weight_to_rsc(p, w, wt);
  return wt;
}

}  // namespace

bool is_whole_input_kernel(const ConvParams& p) {
  return p.groups == 1 && p.R == p.H && p.S == p.W && p.OH == 1 && p.OW == 1 && p.dil_h == 1 && p.dil_w == 1 &&
         p.pad_t == 0 && p.pad_b == 0 && p.pad_l == 0 && p.pad_r == 0;
}

template <typename T>
void whole_input_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t crs = p.C * p.R * p.S;
  DenormalGuard guard;
  GemmArgs<T> a;
  a.M = p.N, a.N = p.K, a.K = crs;
  a.A = x, a.rsA = crs, a.csA = 1;
  a.B = weight_rows(p, w), a.rsB = 1, a.csB = crs;
  a.C = y, a.rsC = p.K, a.csC = 1;
  a.bias_col = bias;
  gemm_parallel(a, p.num_threads);
}

template <typename T>
void whole_input_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const int64_t crs = p.C * p.R * p.S;
  DenormalGuard guard;
  GemmArgs<T> a;
  a.M = p.N, a.N = crs, a.K = p.K;
  a.A = gy, a.rsA = p.K, a.csA = 1;
  a.B = weight_rows(p, w), a.rsB = crs, a.csB = 1;
  a.C = gx, a.rsC = crs, a.csC = 1;
  gemm_parallel(a, p.num_threads);
}

template <typename T>
void whole_input_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const int64_t crs = p.C * p.R * p.S;
  const bool nhwc = p.layout == Layout::NHWC;
  T* out = nhwc ? thread_scratch<T>(kScratchWeight, size_t(p.K * crs)) : gw;
  DenormalGuard guard;
  GemmArgs<T> a;
  a.M = p.K, a.N = crs, a.K = p.N;
  a.A = gy, a.rsA = 1, a.csA = p.K;
  a.B = x, a.rsB = crs, a.csB = 1;
  a.C = out, a.rsC = crs, a.csC = 1;
  gemm_parallel(a, p.num_threads);
  if (nhwc) weight_from_rsc(p, out, gw);
}

#define FASTCONV_INSTANTIATE_WHOLE(T)                                                          \
  template void whole_input_forward<T>(const ConvParams&, const T*, const T*, const T*, T*);   \
  template void whole_input_backward_input<T>(const ConvParams&, const T*, const T*, T*);      \
  template void whole_input_backward_weight<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE_WHOLE(float)
FASTCONV_INSTANTIATE_WHOLE(double)

}  // namespace cpu
}  // namespace fastconv
