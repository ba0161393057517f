// One SIMD register of the kernel library's capability as a GCC vector: 32 bytes where the library is built
// with AVX (the avx2 library), 16 (SSE2) in the baseline one. The portable kernels (what the avx2 and default
// libraries run where the avx512 one has hand-written AVX-512) keep their running values in these, so the
// compiler holds them in registers; plain loops over arrays left them in memory.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastconv {
namespace cpu {

#if defined(__AVX__)
inline constexpr int kPortableVecBytes = 32;
#else
inline constexpr int kPortableVecBytes = 16;
#endif

template <typename T>
struct PortableVec {
  typedef T V __attribute__((vector_size(kPortableVecBytes)));
  static constexpr int L = kPortableVecBytes / int(sizeof(T));
  static V load(const T* p) {
    V x;
    std::memcpy(&x, p, sizeof(V));
    return x;
  }
  static void store(T* p, V x) { std::memcpy(p, &x, sizeof(V)); }
  static V set1(T x) {  // lane 0 to every lane: one broadcast (filling lanes in a loop became lane inserts)
    typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> I;
    typedef I Lanes __attribute__((vector_size(kPortableVecBytes)));
    const V v = {x};
    return __builtin_shuffle(v, Lanes{});
  }
  static V zero() { return V{}; }
  static V add(V a, V b) { return a + b; }
  static V fma(V a, V b, V c) { return a * b + c; }
};

}  // namespace cpu
}  // namespace fastconv
