// Thin OpenMP helpers so kernels compile (serially) without OpenMP too.
#pragma once

#include <atomic>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastconv {

// Below this much work a kernel runs on the calling thread. Waking an OpenMP team costs a few
// microseconds on idle cores, and a whole scheduler time slice (milliseconds) when the cores are shared
// with other processes and a team member is not running: for small problems one thread wins either way.
// The unit is "multiply-adds or elements touched" (kernels count their own). The default, 256K, is
// roughly 10-50 us of single-core work (measured with benchmarks/tiny_conv_threads.py: LeNet's batch-1
// layers, 117K and 240K multiply-adds, were as fast or faster on one thread; 590K was faster on two). Settable at run time (fastconv._C.set_min_parallel_work) so tests can
// force the threaded code paths on small shapes.
constexpr int64_t kDefaultMinParallelWork = int64_t(1) << 18;
inline std::atomic<int64_t> g_min_parallel_work{kDefaultMinParallelWork};

// Threads to use for `work` units of work when `requested` are available.
inline int threads_for_work(int64_t work, int requested) {
  return requested < 1 || work < g_min_parallel_work.load(std::memory_order_relaxed) ? 1 : requested;
}

// Sets the threshold; returns the previous one. Defined once, in the kernel library (csrc/cpu/kernel_library.cpp),
// so the bindings change the threshold the kernels read, not a copy of their own.
int64_t set_min_parallel_work(int64_t work);

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Threads in the team running the calling code: call it inside a parallel region (1 outside one, and
// without OpenMP). `num_threads(n)` is only an upper bound: OMP_THREAD_LIMIT, OMP_DYNAMIC on a loaded
// machine or an enclosing parallel region can start fewer threads, even one. Work split by hand (split_range,
// per-thread buffers, reductions over them) must use this count, never the n that was asked for.
inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// Splits [0, n) into nthreads near-equal chunks; returns chunk tid as [begin, end). Inside a parallel
// region nthreads must be team_size().
inline void split_range(int64_t n, int nthreads, int tid, int64_t& begin, int64_t& end) {
  const int64_t q = n / nthreads, r = n % nthreads;
  begin = tid * q + (tid < r ? tid : r);
  end = begin + q + (tid < r ? 1 : 0);
}

}  // namespace fastconv
