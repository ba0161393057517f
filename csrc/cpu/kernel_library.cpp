// The kernel library's self-description and the process-wide state the bindings change in it (see
// kernel_library.h for why there is one library per CPU capability).
#include "kernel_library.h"

#include "../common/parallel.h"
#include "../common/simd_level.h"
#include "cpu_tuning.h"

#ifndef FASTCONV_CPU_CAPABILITY_NAME  // setup.py names each library; the CMake test build compiles one
#define FASTCONV_CPU_CAPABILITY_NAME "native"
#endif

extern "C" int fastconv_cpu_best_capability() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__) && __GNUC__ >= 12
  // The x86-64 ISA levels the avx2 / avx512 libraries are compiled for (-march=x86-64-v3 / -v4), so the check
  // covers every instruction set the compiler may use there (BMI2, F16C, AVX-512 BW/DQ/VL, ...).
  if (__builtin_cpu_supports("x86-64-v4")) return 2;
  if (__builtin_cpu_supports("x86-64-v3")) return 1;
#endif
  return 0;
}

namespace fastconv {

int64_t set_min_parallel_work(int64_t work) { return g_min_parallel_work.exchange(work); }

namespace cpu {

const char* kernel_capability() { return FASTCONV_CPU_CAPABILITY_NAME; }
const char* kernel_simd_level() { return simd_level(); }
const char* kernel_fma_broadcast() {
#if defined(__AVX512F__)
  return fma_embedded_broadcast() ? "embedded" : "register";
#else
  return "none";
#endif
}
bool kernel_nontemporal_stores() { return nontemporal_stores(); }

}  // namespace cpu
}  // namespace fastconv
