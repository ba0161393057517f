// Window arithmetic shared by the pooling kernels (torch's conventions).
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../../common/parallel.h"
#include "../../common/pool_params.h"
#include "../cpu_tuning.h"

namespace fastconv {
namespace cpu {

// In-bounds taps of one window along an axis: first coordinate, one-past-last bound and step.
struct Span {
  int64_t begin, end;
};

// Max pooling window (dilated): taps begin, begin + d, ... < end, all inside [0, n).
inline Span max_span(int64_t o, int64_t n, int64_t k, int64_t s, int64_t pad, int64_t d) {
  int64_t b = o * s - pad;
  const int64_t e = std::min(b + (k - 1) * d + 1, n);
  if (b < 0) b += ((-b + d - 1) / d) * d;
  return {b, e};
}

// Avg pooling window: taps [begin, end) inside [0, n); padded_len is the window clipped to the padded
// input (count_include_pad's divisor factor).
struct AvgSpan {
  int64_t begin, end, padded_len;
};

inline AvgSpan avg_span(int64_t o, int64_t n, int64_t k, int64_t s, int64_t pad) {
  const int64_t b = o * s - pad;
  const int64_t e = std::min(b + k, n + pad);
  return {std::max<int64_t>(b, 0), std::min(e, n), e - b};
}

// Range [lo, hi) of outputs o in [0, out) whose tap o * s + off lies inside [0, n).
inline void tap_range(int64_t off, int64_t s, int64_t n, int64_t out, int64_t& lo, int64_t& hi) {
  lo = off < 0 ? (-off + s - 1) / s : 0;
  hi = (n - 1 - off) < 0 ? 0 : std::min(out, (n - 1 - off) / s + 1);
  if (hi < lo) hi = lo;
}

// Kernel columns j in [j0, j1) of [0, k) whose tap columns first + j * d + [0, width) meet [0, n): the
// other taps lie wholly in the padding or past the input. Loops over kernel taps iterate this range, so a
// window far larger than the input (kernel 2^23 with padding 2^22) costs the input's size, not the kernel's.
inline void kernel_tap_range(int64_t first, int64_t width, int64_t n, int64_t k, int64_t d, int64_t& j0,
                             int64_t& j1) {
  const int64_t need_lo = -first - width + 1;  // j * d >= need_lo: the last column reaches 0
  const int64_t need_hi = n - first;           // j * d <  need_hi: the first column is before n
  j0 = need_lo > 0 ? (need_lo + d - 1) / d : 0;
  j1 = need_hi > 0 ? std::min(k, (need_hi + d - 1) / d) : 0;
  if (j1 < j0) j1 = j0;
}

// Channel chunks for NHWC kernels that scatter into a whole image: work items (n, chunk) own disjoint
// outputs; chunks are multiples of 16 channels (a cache line of float32) so threads never share a line.
inline int64_t channel_chunk(int64_t N, int64_t C, int nthreads) {
  if (N >= nthreads || C <= 16) return C;
  const int64_t want = (nthreads + N - 1) / N;
  int64_t chunk = (C + want - 1) / want;
  chunk = (chunk + 15) / 16 * 16;
  return std::min(chunk, C);
}

// Threads for a pooling kernel that touches `elements` values (inputs plus outputs): one below the shared
// serial threshold (parallel.h; an element touched counts as two work units, so the default puts the cut at
// 128K elements, measured with benchmarks/pool_perf_check.py), where starting the OpenMP team costs more
// than the work (and, on a loaded machine, a descheduled team member makes a microsecond kernel wait
// milliseconds). Tests set the threshold to 0 to reach the threaded paths on small shapes.
inline int pool_thread_count(int64_t elements, int max_threads) {
  return threads_for_work(2 * elements, std::max(max_threads, 1));
}

// fn(item) for every item in [0, items) on up to nthreads OpenMP threads. No DenormalGuard in pooling:
// max pooling compares values (flushing made -1e-40 beat 0.0 and moved its index and gradient), and the
// averages' few adds per element showed no denormal slowdown on this machine (see docs/denormals.md).
// Items are handed out in dynamic chunks (about 8 per thread): on a shared machine a thread that gets
// descheduled leaves its remaining chunks to the others, where a static split would wait for it.
// Items must write disjoint outputs.
template <typename F>
void parallel_items(int nthreads, int64_t items, const F& fn) {
  if (nthreads <= 1 || items <= 1) {
    for (int64_t i = 0; i < items; ++i) fn(i);
    return;
  }
  const int64_t chunk = std::max<int64_t>(1, items / (int64_t(nthreads) * 8));
#pragma omp parallel num_threads(nthreads)
  {
#pragma omp for schedule(dynamic, chunk)
    for (int64_t i = 0; i < items; ++i) fn(i);
  }
}

// NHWC kernels walk a row of output pixels; the hardware prefetcher follows the kh interleaved input rows
// poorly, so each pixel prefetches the window of the pixel kNhwcPrefetchPixels ahead (rows [h0, h1) step dh,
// `bytes` from column iw0 of each). Measured on N=8 C=64 112x112 float32, 2 threads, cold input:
// max k3s2p1 1.07 -> 0.72 of torch's time, max k2s2 1.10 -> 1.00 (distances 2, 4, 8 all alike).
inline constexpr int64_t kNhwcPrefetchPixels = 4;

inline void prefetch_window_nhwc(const void* xn, int64_t W, int64_t C, int64_t elem_bytes, int64_t h0, int64_t h1,
                                 int64_t dh, int64_t iw0, int64_t bytes) {
#if defined(__AVX512F__)
  for (int64_t ih = h0; ih < h1; ih += dh) {
    // Integer address arithmetic: iw0 may be negative (left padding); a prefetch never faults.
    const uintptr_t a = reinterpret_cast<uintptr_t>(xn) + (ih * W + iw0) * C * elem_bytes;
    for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(reinterpret_cast<const char*>(a + off), _MM_HINT_T0);
  }
#else
  (void)xn, (void)W, (void)C, (void)elem_bytes, (void)h0, (void)h1, (void)dh, (void)iw0, (void)bytes;
#endif
}

// NHWC float kernels write outputs of at least kStreamStoreMinBytes with non-temporal (streaming) stores:
// outputs that large leave the caches anyway, and a normal store first reads each line it fills. Measured
// on N=8 C=64 112x112, 2 threads, cold input: max k2s2 0.99 -> 0.87-0.93 of torch's time, k3s2p1 0.83 ->
// 0.70, avg k2s2 1.04-1.06 -> 0.91-0.95, avg k3s2p1 0.76 -> 0.67-0.69.
inline constexpr int64_t kStreamStoreMinBytes = int64_t(4) << 20;

// Whether to stream: AVX-512, C a multiple of 16 floats (each pixel's outputs are whole 64-byte lines),
// every output pointer (nullptr: none) 64-byte aligned and out_bytes (all outputs) at least the threshold.
inline bool use_stream_stores(int64_t C, const void* a, const void* b, int64_t out_bytes) {
#if defined(__AVX512F__)
  const auto aligned = [](const void* q) { return q == nullptr || reinterpret_cast<uintptr_t>(q) % 64 == 0; };
  return C % 16 == 0 && aligned(a) && aligned(b) && out_bytes >= kStreamStoreMinBytes && nontemporal_stores();
#else
  (void)C, (void)a, (void)b, (void)out_bytes;
  return false;
#endif
}

// Streaming stores are weakly ordered: each work item ends with a store fence.
inline void stream_fence() {
#if defined(__AVX512F__)
  _mm_sfence();
#endif
}

inline int64_t avg_divisor(const PoolParams& p, const AvgSpan& h, const AvgSpan& w) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return h.padded_len * w.padded_len;
  return (h.end - h.begin) * (w.end - w.begin);
}

}  // namespace cpu
}  // namespace fastconv
