// Peak probes: an FMA throughput micro-kernel and a streaming bandwidth kernel (see peak_probe.h).
#include "peak_probe.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "../common/denormal_guard.h"
#include "../common/parallel.h"

namespace fastconv {
namespace {

using Clock = std::chrono::steady_clock;

int default_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// 16 independent accumulator chains: Zen 4/5 and recent Intel cores issue 2 FMAs per cycle with a 4-cycle
// latency, so at least 8 chains are needed to keep both pipes busy; 16 leaves headroom and still fits in
// the register file (AVX2: 16 ymm registers, the multiplier lives in memory-operand form).
constexpr int kChains = 16;

// Fully unrolled chain loops keep every accumulator in a register whatever the optimisation level.
#if defined(__clang__)
#define FASTCONV_UNROLL_CHAINS _Pragma("unroll")
#elif defined(__GNUC__)
#define FASTCONV_UNROLL_CHAINS _Pragma("GCC unroll 16")
#else
#define FASTCONV_UNROLL_CHAINS
#endif

// Runs `iters` rounds of kChains FMAs on registers; returns the number of flops done. The accumulators
// are folded into `sink` so the compiler cannot drop the loop.
template <typename T>
int64_t fma_loop(int64_t iters, T* sink) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.001f * (c + 1));
    const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i)
      FASTCONV_UNROLL_CHAINS
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], mul, add);
    __m512 s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
    alignas(64) float lanes[16];  // (not _mm512_reduce_add_ps: GCC 12's header warns -Wuninitialized)
    _mm512_store_ps(lanes, s);
    for (float v : lanes) *sink += v;
    return iters * kChains * 16 * 2;
  } else {
    __m512d acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_pd(0.001 * (c + 1));
    const __m512d mul = _mm512_set1_pd(0.999999), add = _mm512_set1_pd(1e-7);
    for (int64_t i = 0; i < iters; ++i)
      FASTCONV_UNROLL_CHAINS
      for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_pd(acc[c], mul, add);
    __m512d s = acc[0];
    for (int c = 1; c < kChains; ++c) s = _mm512_add_pd(s, acc[c]);
    alignas(64) double lanes[8];
    _mm512_store_pd(lanes, s);
    for (double v : lanes) *sink += v;
    return iters * kChains * 8 * 2;
  }
#elif defined(__AVX2__) && defined(__FMA__)
  constexpr int kAvx2Chains = 12;  // 12 accumulators + multiplier + addend fit in 16 ymm registers
  if constexpr (sizeof(T) == 4) {
    __m256 acc[kAvx2Chains];
    for (int c = 0; c < kAvx2Chains; ++c) acc[c] = _mm256_set1_ps(0.001f * (c + 1));
    const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iters; ++i)
      FASTCONV_UNROLL_CHAINS
      for (int c = 0; c < kAvx2Chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], mul, add);
    alignas(32) float lanes[8];
    __m256 s = acc[0];
    for (int c = 1; c < kAvx2Chains; ++c) s = _mm256_add_ps(s, acc[c]);
    _mm256_store_ps(lanes, s);
    for (float v : lanes) *sink += v;
    return iters * kAvx2Chains * 8 * 2;
  } else {
    __m256d acc[kAvx2Chains];
    for (int c = 0; c < kAvx2Chains; ++c) acc[c] = _mm256_set1_pd(0.001 * (c + 1));
    const __m256d mul = _mm256_set1_pd(0.999999), add = _mm256_set1_pd(1e-7);
    for (int64_t i = 0; i < iters; ++i)
      FASTCONV_UNROLL_CHAINS
      for (int c = 0; c < kAvx2Chains; ++c) acc[c] = _mm256_fmadd_pd(acc[c], mul, add);
    alignas(32) double lanes[4];
    __m256d s = acc[0];
    for (int c = 1; c < kAvx2Chains; ++c) s = _mm256_add_pd(s, acc[c]);
    _mm256_store_pd(lanes, s);
    for (double v : lanes) *sink += static_cast<T>(v);
    return iters * kAvx2Chains * 4 * 2;
  }
#else
  // Portable fallback: the compiler vectorises what it can for the target.
  T acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = T(0.001) * T(c + 1);
  const T mul = T(0.999999), add = T(1e-7);
  for (int64_t i = 0; i < iters; ++i)
    FASTCONV_UNROLL_CHAINS
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * mul + add;
  for (int c = 0; c < kChains; ++c) *sink += acc[c];
  return iters * kChains * 2;
#endif
}

template <typename T>
double fma_probe(int threads, double seconds) {
  if (threads <= 0) threads = default_threads();
  // Calibrate on one thread: grow the round count until one call lasts ~10 ms.
  T sink = 0;
  int64_t iters = 1 << 12;
  for (;;) {
    const auto t0 = Clock::now();
    fma_loop<T>(iters, &sink);
    const double dt = seconds_since(t0);
    if (dt > 0.01 || iters > (int64_t(1) << 40)) {
      iters = std::max<int64_t>(1, static_cast<int64_t>(iters * (0.05 / std::max(dt, 1e-9))));
      break;
    }
    iters *= 4;
  }
  // Each pass: every thread runs `iters` rounds; keep the best pass (others may share the cores).
  double best = 0.0;
  const auto start = Clock::now();
  std::vector<T> sinks(threads, T(0));
  do {
    int64_t flops = 0;
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
    {
      DenormalGuard guard;
      flops += fma_loop<T>(iters, &sinks[thread_id()]);
    }
    const double dt = seconds_since(t0);
    best = std::max(best, static_cast<double>(flops) / dt * 1e-9);
  } while (seconds_since(start) < seconds);
  volatile T keep = sink;
  for (T s : sinks) keep = keep + s;
  (void)keep;
  return best;
}

}  // namespace

double peak_fma_gflops(int threads, double seconds, bool double_precision) {
  return double_precision ? fma_probe<double>(threads, seconds) : fma_probe<float>(threads, seconds);
}

double stream_bandwidth_gbs(int threads, int64_t bytes_per_buffer, int repeats) {
  if (threads <= 0) threads = default_threads();
  const int64_t n = std::max<int64_t>(1024, bytes_per_buffer / static_cast<int64_t>(sizeof(float)));
  // Aligned, uninitialised allocation so the first touch below happens on the threads that stream.
  auto deleter = [](float* p) { std::free(p); };
  const size_t bytes = static_cast<size_t>((n * sizeof(float) + 63) / 64 * 64);
  std::unique_ptr<float, decltype(deleter)> a(static_cast<float*>(std::aligned_alloc(64, bytes)), deleter);
  std::unique_ptr<float, decltype(deleter)> b(static_cast<float*>(std::aligned_alloc(64, bytes)), deleter);
  if (!a || !b) return 0.0;
  float* pa = a.get();
  float* pb = b.get();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    pa[i] = 1.0f + static_cast<float>(i & 1023) * 1e-3f;
    pb[i] = 0.0f;
  }
  double best = 0.0;
  const float s = 0.999f;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto t0 = Clock::now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) pb[i] = s * pa[i];
    const double dt = seconds_since(t0);
    best = std::max(best, 2.0 * static_cast<double>(n) * sizeof(float) / dt * 1e-9);
    std::swap(pa, pb);  // the next pass reads what this one wrote: no pass is served from cache
  }
  return best;
}

}  // namespace fastconv
