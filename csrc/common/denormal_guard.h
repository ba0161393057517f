// Flush-to-zero / denormals-are-zero for the lifetime of the guard, on the calling thread.
// Denormal operands make x86 FMA units take microcode assists (40-50x slower, pytorch #19651);
// every kernel opens one guard per OpenMP thread.
#pragma once

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace fastconv {

class DenormalGuard {
 public:
#if defined(__x86_64__) || defined(_M_X64)
  DenormalGuard() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ | DAZ
  ~DenormalGuard() { _mm_setcsr(saved_); }

 private:
  unsigned int saved_;
#else
  DenormalGuard() {}
#endif
  DenormalGuard(const DenormalGuard&) = delete;
  DenormalGuard& operator=(const DenormalGuard&) = delete;
};

}  // namespace fastconv
