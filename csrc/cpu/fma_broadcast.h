// Which form of broadcast-FMA this CPU runs faster, chosen once per process. A direct convolution tile
// (MicroKernel::run_taps) multiplies each input value, broadcast to a vector, by two weight vectors:
//  - embedded: two FMAs with the value as a {1to16} memory operand (oneDNN's form). On AMD Zen 4 the
//    broadcast then costs no separate instruction: 3-5% faster there;
//  - register: one vbroadcastss into a register feeding two register FMAs. On Intel (a Sapphire Rapids-class
//    Xeon, two 512-bit FMA ports) each embedded broadcast is a load of its own and the tile became bound by
//    the load ports: the register form is 15-17% faster (5x5 convolutions, 1 thread, A/B across builds).
// FASTCONV_FMA_EMBEDDED_BROADCAST=1 / 0 overrides the choice (read once, at the first convolution).
#pragma once

#include <cstdlib>

namespace fastconv {
namespace cpu {

inline bool fma_embedded_broadcast() {
  static const bool embedded = [] {
    if (const char* e = std::getenv("FASTCONV_FMA_EMBEDDED_BROADCAST"); e && (e[0] == '0' || e[0] == '1'))
      return e[0] == '1';
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    return __builtin_cpu_is("amd") != 0;
#else
    return false;
#endif
  }();
  return embedded;
}

}  // namespace cpu
}  // namespace fastconv
