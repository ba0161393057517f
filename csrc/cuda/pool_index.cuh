// Device helpers of the pooling kernels: window arithmetic (ports of csrc/cpu/pool/pool_window.h, torch's
// conventions), NaN-aware max selection and the bad-index report.
#pragma once

#include <cstdio>

#include <cstdint>

#include "../common/pool_params.h"
#include "cuda_common.cuh"

namespace fastconv {
namespace cuda {

// Max pooling taps along one axis: begin, begin + d, ... < end, all inside [0, n).
struct Span {
  int64_t begin, end;
};
__device__ __forceinline__ Span max_span(int64_t o, int64_t n, int64_t k, int64_t s, int64_t pad, int64_t d) {
  int64_t b = o * s - pad;
  int64_t e = b + (k - 1) * d + 1;
  e = e < n ? e : n;
  if (b < 0) b += ((-b + d - 1) / d) * d;
  return {b, e};
}

// Avg pooling taps [begin, end) inside [0, n); padded_len: the window clipped to the padded input.
struct AvgSpan {
  int64_t begin, end, padded_len;
};
__device__ __forceinline__ AvgSpan avg_span(int64_t o, int64_t n, int64_t k, int64_t s, int64_t pad) {
  const int64_t b = o * s - pad;
  const int64_t e = (b + k) < (n + pad) ? (b + k) : (n + pad);
  return {b > 0 ? b : 0, e < n ? e : n, e - b};
}

__device__ __forceinline__ int64_t avg_divisor(const PoolParams& p, const AvgSpan& h, const AvgSpan& w) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return h.padded_len * w.padded_len;
  return (h.end - h.begin) * (w.end - w.begin);
}

// Outputs o in [lo, hi] whose window [o*s - pad, o*s - pad + k) holds input coordinate i (average pooling's
// backward gathers).
__device__ __forceinline__ void windows_holding(int64_t i, int64_t k, int64_t s, int64_t pad, int64_t out,
                                                int64_t& lo, int64_t& hi) {
  const int64_t t = i + pad - k;  // o*s > t
  lo = t < 0 ? 0 : t / s + 1;
  hi = (i + pad) / s;
  if (hi > out - 1) hi = out - 1;
}

// Calls f(oh, ow) for every output whose max-pool window holds input (h, w) through a tap (oh * sh - ph + i * dh == h
// for some tap i, and likewise along w): the windows the max-pool backward gathers from.
template <typename F>
__device__ __forceinline__ void for_each_window_holding(const PoolParams& p, int64_t h, int64_t w, F&& f) {
  for (int64_t i = 0; i < p.kh; ++i) {
    const int64_t th = h + p.ph - i * p.dh;
    if (th < 0) break;  // larger i only lowers th
    if (th % p.sh != 0 || th / p.sh >= p.OH) continue;
    for (int64_t j = 0; j < p.kw; ++j) {
      const int64_t tw = w + p.pw - j * p.dw;
      if (tw < 0) break;
      if (tw % p.sw != 0 || tw / p.sw >= p.OW) continue;
      f(th / p.sh, tw / p.sw);
    }
  }
}

// torch's max rule: v replaces the running max when v > max or v is NaN (NaN propagates, the last NaN
// and the first of equal maxima win).
template <typename A>
__device__ __forceinline__ bool takes_max(A v, A m) {
  return v > m || v != v;
}

// Records the first out-of-range index a kernel met (bad: device int64[2], zero-filled by the caller). With
// bad == nullptr, what the ATen bindings pass, a bad index stops the kernel with a device-side assertion (the
// CUDA error "device-side assert triggered"), as torch's own max_unpool does: reading a flag back synchronised
// the stream on every call (each pooling backward of a training step) and is illegal while a CUDA graph is
// captured (torch.compile's reduce-overhead mode). The index is never followed either way.
#if defined(__CUDA_ARCH__)
// CUDA's device-side assertion handler (what assert() calls; declared as torch's CUDA_KERNEL_ASSERT declares it,
// since assert() itself is compiled out under NDEBUG).
extern "C" __device__ void __assert_fail(const char* assertion, const char* file, unsigned int line,
                                         const char* function) noexcept;
#endif

__device__ __forceinline__ void record_bad_index(int64_t* bad, int64_t value) {
  if (bad == nullptr) {
    printf("fastconv: invalid pooling index %lld (outside its plane)\n", static_cast<long long>(value));
#if defined(__CUDA_ARCH__)
    __assert_fail("fastconv: every pooling index lies inside its plane", __FILE__, __LINE__, __func__);
#endif
  }
  if (atomicCAS(reinterpret_cast<unsigned long long*>(bad), 0ull, 1ull) == 0ull) bad[1] = value;
}

}  // namespace cuda
}  // namespace fastconv
