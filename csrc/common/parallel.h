// Thin OpenMP helpers so kernels compile (serially) without OpenMP too.
#pragma once

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fastconv {

inline int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// Splits [0, n) into nthreads near-equal chunks; returns chunk tid as [begin, end).
inline void split_range(int64_t n, int nthreads, int tid, int64_t& begin, int64_t& end) {
  const int64_t q = n / nthreads, r = n % nthreads;
  begin = tid * q + (tid < r ? tid : r);
  end = begin + q + (tid < r ? 1 : 0);
}

}  // namespace fastconv
