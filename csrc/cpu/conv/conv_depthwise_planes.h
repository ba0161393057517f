// Shared by the NCHW depthwise register kernels (conv_depthwise_nchw_3x3.cpp, conv_depthwise_nchw_strips.cpp):
// the walk over (image, channel) planes with the next planes prefetched, and the masks of 16-column loads.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../common/conv_params.h"
#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_depthwise.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fastconv {
namespace cpu {

// Whether this build has the NCHW register kernels (AVX-512 code).
#if defined(__AVX512F__)
constexpr bool kNchwRegisterKernels = true;
#else
constexpr bool kNchwRegisterKernels = false;
#endif

// The shapes both NCHW register kernels start from: float32, one output channel per input channel, undilated,
// zero padding, the same stride 1 or 2 along both axes (and a build that has them).
inline bool nchw_register_depthwise(const ConvParams& p, int64_t elem_size) {
  const int64_t s = p.stride_h;
  return kNchwRegisterKernels && elem_size == 4 && p.layout == Layout::NCHW && is_depthwise(p) && p.K == p.C && p.dil_h == 1 &&
         p.dil_w == 1 && p.mode == PaddingMode::Zeros && (s == 1 || s == 2) &&
         p.stride_w == s && p.W >= 1 && p.H >= 1;
}

// The planes a thread reads next, asked for ahead of their use: at its plane i, the whole of the first plane at
// least kPlanePrefetchBytes past plane i. A thread walks consecutive planes, but the hardware prefetchers did not
// keep up with these short masked row loads: on inputs fresh from memory the kernels ran at half their speed on
// hot ones. With it (A/B in one process, 2 threads): MobileNet's 512x14x14 stride-2 forward 0.32 -> 0.14 ms,
// 1024x7x7 stride 1 0.11 -> 0.08, 144x56x56 stride 2 1.11 -> 0.65, 32x112x112 stride 1 2.46 -> 1.33 (torch
// 0.32, 0.18, 1.71, 2.92). Prefetching the output planes as well gained nothing.
constexpr int64_t kPlanePrefetchBytes = 3072;

// All of n values from src, asked for into L1 (a plane a kernel reads next).
template <typename T>
inline void prefetch_values(const T* src, int64_t n) {
  const char* q = reinterpret_cast<const char*>(src);
  for (int64_t o = 0; o < n * int64_t(sizeof(T)); o += 64) __builtin_prefetch(q + o, 0, 3);
}

struct PlanePrefetch {
  const float* base;
  int64_t elems, ahead, planes;
  PlanePrefetch(const float* x, int64_t n, int64_t nplanes)
      : base(x), elems(n),
        ahead(std::max<int64_t>(1, (kPlanePrefetchBytes + bytes(n) - 1) / std::max<int64_t>(bytes(n), 1))),
        planes(nplanes) {}
  static int64_t bytes(int64_t n) { return n * int64_t(sizeof(float)); }
  void operator()(int64_t plane) const {
    if (plane + ahead < planes) prefetch_values(base + (plane + ahead) * elems, elems);
  }
};

// fn(plane, channel) for every (image, channel) plane, shared among the threads (planes are independent), each
// thread's planes consecutive; src, the planes fn reads (src_elems values each), prefetched ahead.
template <typename Fn>
void for_planes(const ConvParams& p, int64_t work_per_plane, const float* src, int64_t src_elems, Fn fn) {
  const int64_t planes = p.N * p.C;
  const int nt = threads_for_work(planes * work_per_plane, p.num_threads);
  const PlanePrefetch prefetch(src, src_elems, planes);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      prefetch(plane);
      fn(plane, plane % p.C);
    }
  }
}

#if defined(__AVX512F__)
// Lanes i of a 16-column load at column col0 + i that lie inside [0, n).
inline __mmask16 columns_inside(int64_t col0, int64_t n) {
  const int64_t lo = std::max<int64_t>(0, -col0), hi = std::min<int64_t>(16, n - col0);
  if (hi <= lo) return 0;
  return static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
}
#endif

}  // namespace cpu
}  // namespace fastconv
