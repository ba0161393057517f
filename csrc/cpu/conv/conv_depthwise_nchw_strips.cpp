// Depthwise forward in NCHW for square 3x3 (other than the padding-1 case of conv_depthwise_nchw_3x3.cpp), 5x5
// and 7x7 kernels, stride 1 or 2, any zero padding within the kernel, float32 on AVX-512 (the 5x5 layers of
// MobileNet-V3 and EfficientNet). Each plane is walked in strips of 16 output columns; an output row's vector is
// the sum of R*S FMAs on input row vectors loaded at the tap's column offset, masked at the plane's edges (the
// zero padding), so nothing is copied or padded in memory. Stride 2 loads 32 input columns per tap and keeps
// the even ones (one lane permute).
// Before: the general kernel padded each plane into a buffer and ran one loop per tap along whole rows:
// 0.44-0.68x of torch on 240x28x28 and 96x56x56/2 5x5 layers.
#include <algorithm>

#include "conv_depthwise.h"
#include "conv_depthwise_planes.h"

namespace fastconv {
namespace cpu {

bool depthwise_strips_applies(const ConvParams& p, int64_t elem_size) {
  const int64_t k = p.R;
  auto within = [k](int64_t pad) { return pad >= 0 && pad < k; };
  return nchw_register_depthwise(p, elem_size) && p.R == p.S && (k == 3 || k == 5 || k == 7) && within(p.pad_t) &&
         within(p.pad_b) && within(p.pad_l) && within(p.pad_r) && p.OH >= 1 && p.OW >= 1 &&
         !depthwise_3x3_registers_applies(p, elem_size);
}

#if defined(__AVX512F__)
namespace {

// Output rows computed together: every input row they read is loaded once for all of them, and their 2 * kRows
// FMA chains (even and odd kernel rows apart) hide the FMA latency.
constexpr int kRows = 4;

// One plane (H x W input, OH x OW output) of a K x K kernel wk (row-major), bias b, stride SW in both directions.
template <int K, int SW>
void plane_strips(const ConvParams& p, const float* x, const float* wk, float b, float* y) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  constexpr int kInRows = K + (kRows - 1) * SW;  // input rows a group of kRows output rows reads
  const __m512 vb = _mm512_set1_ps(b), vz = _mm512_setzero_ps();
  for (int64_t ow0 = 0; ow0 < p.OW; ow0 += 16) {
    // Tap s of output column ow0 + i reads input column c0 + s + SW * i.
    const int64_t c0 = ow0 * SW - p.pad_l;
    __mmask16 lo[K], hi[K];
    for (int s = 0; s < K; ++s) {
      lo[s] = columns_inside(c0 + s, p.W);
      hi[s] = SW == 2 ? columns_inside(c0 + s + 16, p.W) : __mmask16(0);
    }
    const __mmask16 mo = columns_inside(ow0, p.OW);
    for (int64_t oh = 0; oh < p.OH; oh += kRows) {
      __m512 acc[kRows][2];
#pragma GCC unroll 4
      for (int j = 0; j < kRows; ++j) acc[j][0] = vb, acc[j][1] = vz;
      const int64_t ih0 = oh * SW - p.pad_t;
#pragma GCC unroll 16
      for (int t = 0; t < kInRows; ++t) {  // input row ih0 + t: kernel row t - j*SW of output row oh + j
        const int64_t ih = ih0 + t;
        if (ih < 0 || ih >= p.H) continue;
        const float* row = x + ih * p.W + c0;
#pragma GCC unroll 7
        for (int s = 0; s < K; ++s) {
          __m512 v = _mm512_maskz_loadu_ps(lo[s], row + s);
          if (SW == 2) v = _mm512_permutex2var_ps(v, even, _mm512_maskz_loadu_ps(hi[s], row + s + 16));
#pragma GCC unroll 4
          for (int j = 0; j < kRows; ++j) {
            const int r = t - j * SW;
            if (r >= 0 && r < K) acc[j][r & 1] = _mm512_fmadd_ps(_mm512_set1_ps(wk[r * K + s]), v, acc[j][r & 1]);
          }
        }
      }
      const int64_t rows = std::min<int64_t>(kRows, p.OH - oh);
#pragma GCC unroll 4
      for (int j = 0; j < kRows; ++j)
        if (j < rows) _mm512_mask_storeu_ps(y + (oh + j) * p.OW + ow0, mo, _mm512_add_ps(acc[j][0], acc[j][1]));
    }
  }
}

template <int K>
void plane_any_stride(const ConvParams& p, const float* x, const float* wk, float b, float* y) {
  p.stride_h == 1 ? plane_strips<K, 1>(p, x, wk, b, y) : plane_strips<K, 2>(p, x, wk, b, y);
}

}  // namespace

void depthwise_forward_nchw_strips(const ConvParams& p, const float* x, const float* w, const float* bias,
                                   float* y) {
  const int64_t in = p.H * p.W, out = p.OH * p.OW, taps = p.R * p.S;
  for_planes(p, out * taps, x, in, [&](int64_t plane, int64_t c) {
    const float b = bias ? bias[c] : 0.f;
    const float* xp = x + plane * in;
    const float* wk = w + c * taps;
    float* yp = y + plane * out;
    switch (p.R) {
      case 3: return plane_any_stride<3>(p, xp, wk, b, yp);
      case 5: return plane_any_stride<5>(p, xp, wk, b, yp);
      default: return plane_any_stride<7>(p, xp, wk, b, yp);
    }
  });
}
#endif

}  // namespace cpu
}  // namespace fastconv
