// The kernels' few CPU-vendor choices, made once per process (an override in the environment is read at the
// first use). Each was measured both ways on AMD and on Intel (a Sapphire Rapids-class Xeon).
#pragma once

#include <cstdlib>

namespace fastconv {
namespace cpu {

namespace detail {
inline bool cpu_is_amd() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  return __builtin_cpu_is("amd") != 0;
#else
  return false;
#endif
}

// name=1 / name=0 in the environment, else the default.
inline bool env_choice(const char* name, bool otherwise) {
  const char* e = std::getenv(name);
  return e && (e[0] == '0' || e[0] == '1') && e[1] == '\0' ? e[0] == '1' : otherwise;
}
}  // namespace detail

// How a direct convolution tile (MicroKernel::run_taps) broadcasts each input value it multiplies by two weight
// vectors:
//  - embedded: two FMAs with the value as a {1to16} memory operand (oneDNN's form). On AMD Zen 4 the
//    broadcast then costs no separate instruction: 3-5% faster there;
//  - register: one vbroadcastss into a register feeding two register FMAs. On Intel each embedded broadcast is
//    a load of its own and the tile became bound by the load ports: the register form is 15-17% faster (5x5
//    convolutions, 1 thread, A/B across builds).
// FASTCONV_FMA_EMBEDDED_BROADCAST=1 / 0 overrides.
inline bool fma_embedded_broadcast() {
  static const bool embedded = detail::env_choice("FASTCONV_FMA_EMBEDDED_BROADCAST", detail::cpu_is_amd());
  return embedded;
}

// Whether results too large to stay in cache are written with non-temporal (streaming) stores, which skip the
// read of every line an ordinary store first fills. On AMD they were measured faster wherever they are used
// (GEMM and direct convolution results of 16 MB or more, few-channel stems, depthwise and pooling outputs:
// MobileNet's 32 -> 64 channels_last 1x1 at 112x112 0.75x -> 0.84x of torch). On Intel they were slower in every
// case tried (2 threads, alternating processes: VGG's 3 -> 64 channels_last stem at 224x224 1.65 -> 1.20 ms,
// MobileNet-V2's 16 -> 96 1x1 at 112x112 15 -> 11 ms, its depthwise 3x3 layers 5-15%).
// FASTCONV_NONTEMPORAL_STORES=1 / 0 overrides.
inline bool nontemporal_stores() {
  static const bool nt = detail::env_choice("FASTCONV_NONTEMPORAL_STORES", detail::cpu_is_amd());
  return nt;
}

}  // namespace cpu
}  // namespace fastconv
