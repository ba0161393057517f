// Output phases of a strided input gradient, along one axis: the gradient's indices i = ph + stride*a (a < count)
// receive exactly the taps r = r0 + stride*t (t < taps), each from the forward output index a + q - t; the other
// taps never reach them. So a strided input gradient splits into stride-1 problems, one per phase, with no
// multiplications by the zeros a dilated grad_output would hold (conv_implicit_nhwc.cpp, conv_depthwise_nchw.cpp).
#pragma once

#include <cstdint>

namespace fastconv {

struct AxisPhase {
  int64_t r0, taps, q, count;
};

// Phase ph (0 <= ph < stride) of an axis of `in` input indices, padding `pad` before it, kernel size k
// (dilation 1).
inline AxisPhase axis_phase(int64_t ph, int64_t pad, int64_t stride, int64_t k, int64_t in) {
  AxisPhase f{(ph + pad) % stride, 0, 0, ph < in ? (in - ph + stride - 1) / stride : 0};
  f.taps = f.r0 < k ? (k - f.r0 + stride - 1) / stride : 0;
  f.q = (ph + pad - f.r0) / stride;
  return f;
}

}  // namespace fastconv
