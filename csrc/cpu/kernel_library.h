// What a compiled kernel library says of itself. setup.py compiles csrc/cpu once per CPU capability into its
// own shared library (fastconv/_kernels_<capability>*.so: default = baseline x86-64, avx2 = x86-64-v3,
// avx512 = x86-64-v4); fastconv/_kernels.py loads the one this CPU runs (or FASTCONV_CPU_CAPABILITY names)
// with RTLD_GLOBAL before fastconv._C, whose bindings call the kernels by their C++ names. The bindings
// themselves are compiled for baseline x86-64, so nothing outside the chosen library needs more than that.
#pragma once

#include <cstdint>

extern "C" {
// The best capability this CPU and its OS run (cpuid and the OS-enabled register state, as gcc's
// __builtin_cpu_supports reads them): 2 = avx512, 1 = avx2, 0 = default (and every CPU that is not x86-64).
// Plain C so fastconv/_kernels.py can ask the baseline library through ctypes before choosing.
int fastconv_cpu_best_capability();
}

namespace fastconv {
namespace cpu {

// The capability this library was compiled for ("default", "avx2", "avx512"; "native" for FASTCONV_MARCH builds
// and the CMake test build) and the widest SIMD its flags allow ("AVX-512", "AVX2+FMA", "SSE2", ...).
const char* kernel_capability();
const char* kernel_simd_level();
// How the AVX-512 direct convolution tiles broadcast their inputs on this CPU (cpu_tuning.h): "embedded" or
// "register"; "none" in a library without AVX-512.
const char* kernel_fma_broadcast();
// Whether large results are written with non-temporal stores on this CPU (cpu_tuning.h).
bool kernel_nontemporal_stores();

}  // namespace cpu
}  // namespace fastconv
