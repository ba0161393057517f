// Denormal handling of the convolution kernels: the calling thread's setting, on every thread that runs
// the kernel.
//
// torch computes with denormals unless the user calls torch.set_flush_denormal(True), which sets FTZ|DAZ
// on the calling thread only. fastconv does the same: its convolution entry points read the calling
// thread's FTZ|DAZ bits (capture_caller_denormal_mode) and every OpenMP thread running the kernel takes
// them for the kernel's duration (DenormalGuard), so conv2d(full(1e-40), ones 3x3) gives torch's 9e-40 by
// default and 0 after torch.set_flush_denormal(True), whichever thread computes it.
//
// Why not always flush (as fastconv once did): measured on the 2-core Zen 5 machine (docs/denormals.md),
// denormal operands cost the FMA kernels nothing (a 4x64x56x56 3x3 convolution ran as fast on
// all-denormal inputs), so the flush bought no speed and only changed answers. On CPUs whose FMA units
// take microcode assists on denormals (pytorch #19651: 40-50x), torch.set_flush_denormal(True) is the
// switch, for torch and fastconv alike. Pooling never flushes: max pooling compares values.
#pragma once

#include <atomic>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace fastconv {

#if defined(__x86_64__) || defined(_M_X64)
inline constexpr unsigned kDenormalBits = 0x8040u;  // MXCSR FTZ | DAZ
#else
inline constexpr unsigned kDenormalBits = 0u;
#endif

// The FTZ|DAZ bits of the thread that last entered a convolution kernel. A process-wide value: two Python
// threads that call fastconv at the same moment with different torch.set_flush_denormal settings may
// see each other's (a documented limitation; torch's own setting is per thread and does not reach its
// worker threads at all).
inline std::atomic<unsigned> g_caller_denormal_bits{0};

// Called on the calling thread at a kernel entry point.
inline void capture_caller_denormal_mode() {
#if defined(__x86_64__) || defined(_M_X64)
  g_caller_denormal_bits.store(_mm_getcsr() & kDenormalBits, std::memory_order_relaxed);
#endif
}

// For its lifetime, the current thread flushes denormals exactly when the captured caller did.
class DenormalGuard {
 public:
#if defined(__x86_64__) || defined(_M_X64)
  DenormalGuard() : saved_(_mm_getcsr()) {
    const unsigned want = (saved_ & ~kDenormalBits) | g_caller_denormal_bits.load(std::memory_order_relaxed);
    if (want != saved_) _mm_setcsr(want);
  }
  ~DenormalGuard() {
    if (_mm_getcsr() != saved_) _mm_setcsr(saved_);
  }

 private:
  unsigned int saved_;
#else
  DenormalGuard() {}
#endif
  DenormalGuard(const DenormalGuard&) = delete;
  DenormalGuard& operator=(const DenormalGuard&) = delete;
};

}  // namespace fastconv
