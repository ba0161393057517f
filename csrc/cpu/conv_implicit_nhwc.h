// NHWC input gradient without a column matrix ("implicit GEMM"), for the common case of one group,
// stride 1 and zero padding no wider than the kernel's reach (e.g. 3x3 pad 1). See the .cpp.
#pragma once

#include "../common/conv_params.h"

namespace fastconv {
namespace cpu {

bool implicit_backward_input_applies(const ConvParams& p, int64_t elem_size);

template <typename T>
void conv_backward_input_implicit_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx);

}  // namespace cpu
}  // namespace fastconv
