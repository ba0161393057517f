// Depthwise 3x3 forward in NCHW on planes whose rows fit one AVX-512 vector (MobileNet's 14x14 and 7x7
// layers): every input row is loaded once, masked (the lanes past the row are the right padding), and its
// left / right neighbours are lane shifts in registers (stride 1), or its even and odd columns lane
// permutes (stride 2). An output row is 9 FMAs and one masked store; nothing is copied or padded in memory.
// The stride-1 input gradient is the same forward on grad_output with the kernel flipped.
// The general NCHW kernel pads each plane into a buffer and runs 14-element loops, and the NHWC route costs
// two transposes of the activations: 0.55-0.77x of torch on 8x512x14x14 against this kernel's ~1.x.
#include <algorithm>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_depthwise.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fastconv {
namespace cpu {

bool depthwise_small_plane_applies(const ConvParams& p, int64_t elem_size) {
#if defined(__AVX512F__)
  const int64_t s = p.stride_h;
  return elem_size == 4 && p.layout == Layout::NCHW && is_depthwise(p) && p.K == p.C && p.R == 3 && p.S == 3 &&
         p.dil_h == 1 && p.dil_w == 1 && p.mode == PaddingMode::Zeros && p.pad_t == 1 && p.pad_b == 1 &&
         p.pad_l == 1 && p.pad_r == 1 && (s == 1 || s == 2) && p.stride_w == s && p.W <= 16 && p.H >= 1 &&
         p.OH == conv_out_size(p.H, 1, 1, 3, s, 1) && p.OW == conv_out_size(p.W, 1, 1, 3, s, 1);
#else
  (void)p, (void)elem_size;
  return false;
#endif
}

#if defined(__AVX512F__)
namespace {

// One plane (H x W input, OH x OW output), weights wk[9], bias b.
inline void plane_s1(const ConvParams& p, const float* x, const float* wk, float b, float* y) {
  const __mmask16 m = static_cast<__mmask16>((1u << p.W) - 1);
  const __m512i zero = _mm512_setzero_si512();
  __m512 w[9];
  for (int i = 0; i < 9; ++i) w[i] = _mm512_set1_ps(wk[i]);
  // Row ih and its neighbour columns: lm[j] = row[j - 1], rm[j] = row[j + 1] (zeros past either edge).
  auto load = [&](int64_t ih, __m512& lm, __m512& c, __m512& rm) {
    c = _mm512_maskz_loadu_ps(m, x + ih * p.W);
    const __m512i ci = _mm512_castps_si512(c);
    lm = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFF, ci, zero, 15));
    rm = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFF, zero, ci, 1));
  };
  const __m512 vb = _mm512_set1_ps(b), vz = _mm512_setzero_ps();
  __m512 a0 = vz, a1 = vz, a2 = vz;  // row oh - 1 (zero above the plane)
  __m512 b0, b1, b2;                 // row oh
  load(0, b0, b1, b2);
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    __m512 c0 = vz, c1 = vz, c2 = vz;  // row oh + 1 (zero below the plane)
    if (oh + 1 < p.H) load(oh + 1, c0, c1, c2);
    __m512 acc = vb;
    acc = _mm512_fmadd_ps(w[0], a0, acc), acc = _mm512_fmadd_ps(w[1], a1, acc), acc = _mm512_fmadd_ps(w[2], a2, acc);
    acc = _mm512_fmadd_ps(w[3], b0, acc), acc = _mm512_fmadd_ps(w[4], b1, acc), acc = _mm512_fmadd_ps(w[5], b2, acc);
    acc = _mm512_fmadd_ps(w[6], c0, acc), acc = _mm512_fmadd_ps(w[7], c1, acc), acc = _mm512_fmadd_ps(w[8], c2, acc);
    _mm512_mask_storeu_ps(y + oh * p.OW, m, acc);
    a0 = b0, a1 = b1, a2 = b2, b0 = c0, b1 = c1, b2 = c2;
  }
}

inline void plane_s2(const ConvParams& p, const float* x, const float* wk, float b, float* y) {
  const __mmask16 m = static_cast<__mmask16>((1u << p.W) - 1), mo = static_cast<__mmask16>((1u << p.OW) - 1);
  const __m512i zero = _mm512_setzero_si512();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);  // lanes 8-15 masked off
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 0, 0, 0, 0, 0, 0, 0, 0);
  __m512 w[9];
  for (int i = 0; i < 9; ++i) w[i] = _mm512_set1_ps(wk[i]);
  const __m512 vb = _mm512_set1_ps(b);
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    __m512 acc = vb;
    for (int r = 0; r < 3; ++r) {
      const int64_t ih = 2 * oh - 1 + r;
      if (ih < 0 || ih >= p.H) continue;
      // Output ow reads columns 2ow - 1, 2ow, 2ow + 1: odd[ow - 1], even[ow], odd[ow].
      const __m512 row = _mm512_maskz_loadu_ps(m, x + ih * p.W);
      const __m512 ev = _mm512_maskz_permutexvar_ps(0xFF, even, row), od = _mm512_maskz_permutexvar_ps(0xFF, odd, row);
      const __m512 odm = _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFF, _mm512_castps_si512(od), zero, 15));
      acc = _mm512_fmadd_ps(w[3 * r], odm, acc);
      acc = _mm512_fmadd_ps(w[3 * r + 1], ev, acc);
      acc = _mm512_fmadd_ps(w[3 * r + 2], od, acc);
    }
    _mm512_mask_storeu_ps(y + oh * p.OW, mo, acc);
  }
}

// fn(plane, channel) for every (image, channel) plane, shared among the threads (planes are independent).
template <typename Fn>
void for_planes(const ConvParams& p, int64_t work_per_plane, Fn fn) {
  const int64_t planes = p.N * p.C;
  const int nt = threads_for_work(planes * work_per_plane, p.num_threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) fn(plane, plane % p.C);
  }
}

}  // namespace

void depthwise_forward_nchw_small(const ConvParams& p, const float* x, const float* w, const float* bias, float* y) {
  const int64_t in = p.H * p.W, out = p.OH * p.OW;
  for_planes(p, out * 9, [&](int64_t plane, int64_t c) {
    const float b = bias ? bias[c] : 0.f;
    if (p.stride_h == 1)
      plane_s1(p, x + plane * in, w + c * 9, b, y + plane * out);
    else
      plane_s2(p, x + plane * in, w + c * 9, b, y + plane * out);
  });
}

// Stride 1: the input gradient is the forward of grad_output with the kernel flipped (same padding, same size).
void depthwise_backward_input_nchw_small(const ConvParams& p, const float* gy, const float* w, float* gx) {
  const int64_t hw = p.H * p.W;
  for_planes(p, hw * 9, [&](int64_t plane, int64_t c) {
    float flipped[9];
    for (int i = 0; i < 9; ++i) flipped[i] = w[c * 9 + 8 - i];
    plane_s1(p, gy + plane * hw, flipped, 0.f, gx + plane * hw);
  });
}
#endif

}  // namespace cpu
}  // namespace fastconv
