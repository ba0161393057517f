// Max pooling backward from the window side, NHWC: every element of the input gradient is written once,
// as the sum of the grad_output entries of the windows that have a tap on it and whose index names it.
// No zero pass, no read-modify-write of the gradient, contiguous (streamed) stores; the scatter
// (pool_index.cpp) zeroes the whole gradient first and then adds into it in index order.
//
// Candidates are summed in output scan order (rows, then columns), as the scatter and torch add them, so
// the result is bit-identical. The kernel counts the entries it consumed: fewer than grad_output has means
// some index is not a tap of its own window (indices that did not come from this pooling, or -1 of an empty
// window), and the caller redoes the whole gradient with the scatter, which accepts any index. Windows
// that overlap are left to the scatter as well (see max_pool_backward_nhwc).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#else
#include <cstring>

#include "../portable_vec.h"
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

// The candidates are the outputs whose window span [o * s - pad, o * s - pad + (k - 1) * d] holds i, found
// by division rather than by trying every tap: a loop over the taps cost n * k, and a kernel of 2^30
// (with an equal stride) made the backward take seconds for a 3x3 input.
TapOwners tap_owners(int64_t n, int64_t out, int64_t k, int64_t s, int64_t pad, int64_t d) {
  TapOwners t;
  t.first.reserve(n + 1);
  for (int64_t i = 0; i < n; ++i) {
    t.first.push_back(static_cast<int64_t>(t.list.size()));
    const int64_t num = i + pad;                  // o * s + tap * d == num
    const int64_t low = num - (k - 1) * d;        // o * s >= low
    const int64_t o0 = low <= 0 ? 0 : (low + s - 1) / s;
    const int64_t o1 = std::min(out - 1, num / s);
    for (int64_t o = o0; o <= o1; ++o)            // ascending o, as the scatter adds them
      if ((num - o * s) % d == 0) t.list.push_back(o);
  }
  t.first.push_back(static_cast<int64_t>(t.list.size()));
  return t;
}

#if defined(__AVX512F__)
// All C channels of one input pixel, float: 16 channels per register. offs[0..n): element offsets of the
// owners' first channel in grad_output / indices. Returns the entries consumed.
template <bool kStream>
inline int64_t gather_pixel_f32(const float* gy, const int64_t* ind, int64_t C, int64_t pos, const int64_t* offs,
                                int64_t n, float* out) {
  const __m512i vpos = _mm512_set1_epi64(pos);
  const __m512i one = _mm512_set1_epi32(1);
  __m512i count = _mm512_setzero_si512();
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const int64_t e = offs[j] + c;
      const __mmask8 lo = _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(ind + e), vpos);
      const __mmask8 hi = _mm512_cmpeq_epi64_mask(_mm512_loadu_si512(ind + e + 8), vpos);
      const __mmask16 m = _mm512_kunpackb(hi, lo);
      acc = _mm512_mask_add_ps(acc, m, acc, _mm512_loadu_ps(gy + e));
      count = _mm512_mask_add_epi32(count, m, count, one);
    }
    if constexpr (kStream)
      _mm512_stream_ps(out + c, acc);
    else
      _mm512_storeu_ps(out + c, acc);
  }
  if (c < C) {  // the last 1..15 channels (never with kStream: streaming needs C % 16 == 0)
    const __mmask16 live = static_cast<__mmask16>((1u << (C - c)) - 1u);
    const __mmask8 live_lo = static_cast<__mmask8>(live), live_hi = static_cast<__mmask8>(live >> 8);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const int64_t e = offs[j] + c;
      const __mmask8 lo = _mm512_mask_cmpeq_epi64_mask(live_lo, _mm512_maskz_loadu_epi64(live_lo, ind + e), vpos);
      const __mmask8 hi =
          _mm512_mask_cmpeq_epi64_mask(live_hi, _mm512_maskz_loadu_epi64(live_hi, ind + e + 8), vpos);
      const __mmask16 m = _mm512_kunpackb(hi, lo);
      acc = _mm512_mask_add_ps(acc, m, acc, _mm512_maskz_loadu_ps(m, gy + e));
      count = _mm512_mask_add_epi32(count, m, count, one);
    }
    _mm512_mask_storeu_ps(out + c, live, acc);
  }
  return _mm512_reduce_add_epi32(count);
}

// double: 8 channels per register.
inline int64_t gather_pixel_f64(const double* gy, const int64_t* ind, int64_t C, int64_t pos, const int64_t* offs,
                                int64_t n, double* out) {
  const __m512i vpos = _mm512_set1_epi64(pos);
  int64_t count = 0;
  for (int64_t c = 0; c < C; c += 8) {
    const __mmask8 live = C - c >= 8 ? __mmask8(0xFF) : static_cast<__mmask8>((1u << (C - c)) - 1u);
    __m512d acc = _mm512_setzero_pd();
    for (int64_t j = 0; j < n; ++j) {
      const int64_t e = offs[j] + c;
      const __mmask8 m = _mm512_mask_cmpeq_epi64_mask(live, _mm512_maskz_loadu_epi64(live, ind + e), vpos);
      acc = _mm512_mask_add_pd(acc, m, acc, _mm512_maskz_loadu_pd(m, gy + e));
      count += __builtin_popcount(m);
    }
    _mm512_mask_storeu_pd(out + c, live, acc);
  }
  return count;
}
#endif

template <typename T, bool kStream>
int64_t gather_pixel(const T* gy, const int64_t* ind, int64_t C, int64_t pos, const int64_t* offs, int64_t n,
                     T* out) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>)
    return gather_pixel_f32<kStream>(gy, ind, C, pos, offs, n, out);
  else
    return gather_pixel_f64(gy, ind, C, pos, offs, n, out);
#else
  // GCC vectors of the library's register: the index compares run on 64-bit lanes (a vector of L of them is one
  // to two registers), narrowed to the value's lane width to select. A plain channel loop did not vectorise:
  // SegNet's k2s2 backward ran at 0.2x of an AVX2 torch.
  using VT = typename PortableVec<T>::V;
  using I = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  using VI = typename PortableVec<I>::V;
  constexpr int L = PortableVec<T>::L;
  typedef int64_t VI64 __attribute__((vector_size(L * 8)));
  VI hits{};
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    VT acc{};
    for (int64_t j = 0; j < n; ++j) {
      VI64 iv;
      std::memcpy(&iv, ind + offs[j] + c, sizeof iv);
      const VI m = __builtin_convertvector(iv == pos, VI);
      acc += m ? PortableVec<T>::load(gy + offs[j] + c) : VT{};
      hits -= m;  // -1 per hit
    }
    PortableVec<T>::store(out + c, acc);
  }
  int64_t count = 0;
  for (int l = 0; l < L; ++l) count += hits[l];
  for (; c < C; ++c) {
    T acc = T(0);
    for (int64_t j = 0; j < n; ++j) {
      const bool hit = ind[offs[j] + c] == pos;
      acc += hit ? gy[offs[j] + c] : T(0);
      count += hit;
    }
    out[c] = acc;
  }
  return count;
#endif
}

// One row of input pixels (n, ih): offsets of each pixel's owners, then the pixel's gradient.
template <typename T, bool kStream>
int64_t gather_row(const PoolParams& p, const TapOwners& rows, const TapOwners& cols, int64_t ih, const T* gyn,
                   const int64_t* indn, T* out, int64_t* offs) {
  const int64_t C = p.C;
  const int64_t* orows = rows.list.data() + rows.first[ih];
  const int64_t nrows = rows.first[ih + 1] - rows.first[ih];
  int64_t found = 0;
  for (int64_t iw = 0; iw < p.W; ++iw) {
    const int64_t* ocols = cols.list.data() + cols.first[iw];
    const int64_t ncols = cols.first[iw + 1] - cols.first[iw];
    int64_t n = 0;
    for (int64_t a = 0; a < nrows; ++a)  // scan order: rows, then columns
      for (int64_t b = 0; b < ncols; ++b) offs[n++] = (orows[a] * p.OW + ocols[b]) * C;
    found += gather_pixel<T, kStream>(gyn, indn, C, ih * p.W + iw, offs, n, out + iw * C);
  }
  return found;
}

}  // namespace

// Overlapping windows (k3s2p1: up to 4 owners per pixel, 2.25 on average) make each element cost as many
// index compares: measured there (8x64x112x112 float, 2 threads) this kernel took 1.94-1.98 ms against the
// scatter's 1.71, on k2s2 1.40-1.49 against 1.65. So it takes windows that do not overlap: along each axis
// consecutive windows start at least a (dilated) window apart.
bool max_pool_backward_nhwc_applies(const PoolParams& p) {
  return (p.kh - 1) * p.dh + 1 <= p.sh && (p.kw - 1) * p.dw + 1 <= p.sw;
}

template <typename T>
bool max_pool_backward_nhwc(const PoolParams& p, const T* gy, const int64_t* ind, T* gx) {
  if (!max_pool_backward_nhwc_applies(p)) return false;
  const TapOwners rows = tap_owners(p.H, p.OH, p.kh, p.sh, p.ph, p.dh);
  const TapOwners cols = tap_owners(p.W, p.OW, p.kw, p.sw, p.pw, p.dw);
  const int64_t C = p.C, OHW = p.OH * p.OW;
  const bool stream = std::is_same_v<T, float> &&
                      use_stream_stores(C, gx, nullptr, p.N * p.H * p.W * C * int64_t(sizeof(T)));
  std::atomic<int64_t> consumed{0};
  // Work items are input rows: consecutive rows share their owners' grad_output rows in cache.
  parallel_items(p.num_threads, p.N * p.H, [&](int64_t r) {
    const int64_t n = r / p.H, ih = r % p.H;
    int64_t offs[1];  // one owner at most (max_pool_backward_nhwc_applies)
    const T* gyn = gy + n * OHW * C;
    const int64_t* indn = ind + n * OHW * C;
    T* out = gx + r * p.W * C;
    const int64_t found = stream ? gather_row<T, true>(p, rows, cols, ih, gyn, indn, out, offs)
                                 : gather_row<T, false>(p, rows, cols, ih, gyn, indn, out, offs);
    if (stream) stream_fence();
    consumed.fetch_add(found, std::memory_order_relaxed);
  });
  return consumed.load() == p.N * OHW * C;
}

template bool max_pool_backward_nhwc<float>(const PoolParams&, const float*, const int64_t*, float*);
template bool max_pool_backward_nhwc<double>(const PoolParams&, const double*, const int64_t*, double*);

}  // namespace cpu
}  // namespace fastconv
