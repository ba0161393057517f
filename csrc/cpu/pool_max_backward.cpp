// Max pooling backward from the window side, NHWC: every element of the input gradient is written once,
// as the sum of the grad_output entries of the windows that have a tap on it and whose index names it.
// No zero pass, no read-modify-write of the gradient, contiguous (streamed) stores; the scatter
// (pool_index.cpp) zeroes the whole gradient first and then adds into it in index order.
//
// Candidates are summed in output scan order (rows, then columns), as the scatter and torch add them, so
// the result is bit-identical. The kernel counts the entries it consumed: fewer than grad_output has means
// some index is not a tap of its own window (indices that did not come from this pooling, or -1 of an empty
// window), and the caller redoes the whole gradient with the scatter, which accepts any index.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "pool_kernels.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {
namespace {

// For each input coordinate i along one axis, the outputs o whose window has a tap on it
// (o * s - pad + t * d == i for a tap t in [0, k)), ascending: list[first[i] .. first[i + 1]).
struct TapOwners {
  std::vector<int64_t> first, list;
};

TapOwners tap_owners(int64_t n, int64_t out, int64_t k, int64_t s, int64_t pad, int64_t d) {
  TapOwners t;
  t.first.reserve(n + 1);
  for (int64_t i = 0; i < n; ++i) {
    t.first.push_back(static_cast<int64_t>(t.list.size()));
    for (int64_t tap = k - 1; tap >= 0; --tap) {  // o grows as the tap shrinks
      const int64_t num = i + pad - tap * d;
      if (num >= 0 && num % s == 0 && num / s < out) t.list.push_back(num / s);
    }
  }
  t.first.push_back(static_cast<int64_t>(t.list.size()));
  return t;
}

// The output pixels (oh, ow) of one image whose windows have a tap on one input pixel.
struct Owners {
  const int64_t *rows, *cols;
  int64_t nrows, ncols, OW;
  template <typename F>
  void each(F&& f) const {
    for (int64_t a = 0; a < nrows; ++a)
      for (int64_t b = 0; b < ncols; ++b) f(rows[a] * OW + cols[b]);
  }
};

#if defined(__AVX512F__)
// All C channels of one input pixel, float: 16 channels per register; returns the entries consumed.
template <bool kStream>
inline int64_t gather_pixel_f32(const float* gy, const int64_t* ind, int64_t C, int64_t pos, const Owners& own,
                                float* out) {
  const __m512i vpos = _mm512_set1_epi64(pos);
  __m512i count = _mm512_setzero_si512();
  const __m512i one = _mm512_set1_epi32(1);
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    __m512 acc = _mm512_setzero_ps();
    own.each([&](int64_t o) {
      const int64_t e = o * C + c;
      const __mmask8 lo = _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(ind + e), vpos);
      const __mmask8 hi = _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(ind + e + 8), vpos);
      const __mmask16 m = _mm512_kunpackb(hi, lo);
      acc = _mm512_mask_add_ps(acc, m, acc, _mm512_loadu_ps(gy + e));
      count = _mm512_mask_add_epi32(count, m, count, one);
    });
    if constexpr (kStream)
      _mm512_stream_ps(out + c, acc);
    else
      _mm512_storeu_ps(out + c, acc);
  }
  if (c < C) {  // the last 1..15 channels (never with kStream: streaming needs C % 16 == 0)
    const __mmask16 live = static_cast<__mmask16>((1u << (C - c)) - 1u);
    const __mmask8 live_lo = static_cast<__mmask8>(live), live_hi = static_cast<__mmask8>(live >> 8);
    __m512 acc = _mm512_setzero_ps();
    own.each([&](int64_t o) {
      const int64_t e = o * C + c;
      const __mmask8 lo = _mm512_mask_cmpeq_epi64_mask(live_lo, _mm512_maskz_loadu_epi64(live_lo, ind + e), vpos);
      const __mmask8 hi =
          _mm512_mask_cmpeq_epi64_mask(live_hi, _mm512_maskz_loadu_epi64(live_hi, ind + e + 8), vpos);
      const __mmask16 m = _mm512_kunpackb(hi, lo);
      acc = _mm512_mask_add_ps(acc, m, acc, _mm512_maskz_loadu_ps(m, gy + e));
      count = _mm512_mask_add_epi32(count, m, count, one);
    });
    _mm512_mask_storeu_ps(out + c, live, acc);
  }
  return _mm512_reduce_add_epi32(count);
}

// double: 8 channels per register.
inline int64_t gather_pixel_f64(const double* gy, const int64_t* ind, int64_t C, int64_t pos, const Owners& own,
                                double* out) {
  const __m512i vpos = _mm512_set1_epi64(pos);
  int64_t count = 0;
  for (int64_t c = 0; c < C; c += 8) {
    const __mmask8 live = C - c >= 8 ? __mmask8(0xFF) : static_cast<__mmask8>((1u << (C - c)) - 1u);
    __m512d acc = _mm512_setzero_pd();
    own.each([&](int64_t o) {
      const int64_t e = o * C + c;
      const __mmask8 m = _mm512_mask_cmpeq_epi64_mask(live, _mm512_maskz_loadu_epi64(live, ind + e), vpos);
      acc = _mm512_mask_add_pd(acc, m, acc, _mm512_maskz_loadu_pd(m, gy + e));
      count += __builtin_popcount(m);
    });
    _mm512_mask_storeu_pd(out + c, live, acc);
  }
  return count;
}
#endif

template <typename T>
int64_t gather_pixel(const T* gy, const int64_t* ind, int64_t C, int64_t pos, const Owners& own, T* out,
                     bool stream) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    return stream ? gather_pixel_f32<true>(gy, ind, C, pos, own, out)
                  : gather_pixel_f32<false>(gy, ind, C, pos, own, out);
  else
    return gather_pixel_f64(gy, ind, C, pos, own, out);
#else
  (void)stream;
  int64_t count = 0;
  for (int64_t c = 0; c < C; ++c) {
    T acc = T(0);
    own.each([&](int64_t o) {
      const bool hit = ind[o * C + c] == pos;
      acc += hit ? gy[o * C + c] : T(0);
      count += hit;
    });
    out[c] = acc;
  }
  return count;
#endif
}

}  // namespace

template <typename T>
bool max_pool_backward_nhwc(const PoolParams& p, const T* gy, const int64_t* ind, T* gx) {
  const TapOwners rows = tap_owners(p.H, p.OH, p.kh, p.sh, p.ph, p.dh);
  const TapOwners cols = tap_owners(p.W, p.OW, p.kw, p.sw, p.pw, p.dw);
  const int64_t C = p.C, OHW = p.OH * p.OW;
  const bool stream = std::is_same_v<T, float> &&
                      use_stream_stores(C, gx, nullptr, p.N * p.H * p.W * C * int64_t(sizeof(T)));
  std::atomic<int64_t> consumed{0};
  // Work items are input rows: consecutive rows share their owners' grad_output rows in cache.
  parallel_items(p.num_threads, p.N * p.H, [&](int64_t r) {
    const int64_t n = r / p.H, ih = r % p.H;
    Owners own{rows.list.data() + rows.first[ih], nullptr, rows.first[ih + 1] - rows.first[ih], 0, p.OW};
    const T* gyn = gy + n * OHW * C;
    const int64_t* indn = ind + n * OHW * C;
    T* out = gx + r * p.W * C;
    int64_t found = 0;
    for (int64_t iw = 0; iw < p.W; ++iw) {
      own.cols = cols.list.data() + cols.first[iw];
      own.ncols = cols.first[iw + 1] - cols.first[iw];
      found += gather_pixel<T>(gyn, indn, C, ih * p.W + iw, own, out + iw * C, stream);
    }
    if (stream) stream_fence();
    consumed.fetch_add(found, std::memory_order_relaxed);
  });
  return consumed.load() == p.N * OHW * C;
}

template bool max_pool_backward_nhwc<float>(const PoolParams&, const float*, const int64_t*, float*);
template bool max_pool_backward_nhwc<double>(const PoolParams&, const double*, const int64_t*, double*);

}  // namespace cpu
}  // namespace fastconv
