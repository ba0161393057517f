// Machine-peak probes for the benchmark suite (torch-free): what this machine can do at best, so the
// benchmark can report each kernel as a fraction of it. Both are measured, never taken from a data sheet.
#pragma once

#include <cstdint>

namespace fastconv {

// Floating-point throughput in GFLOP/s (one FMA = 2 flops) of a register-only FMA loop with enough
// independent accumulators to hide FMA latency, on `threads` OpenMP threads (<= 0: OpenMP's default),
// with the widest SIMD the build targets (AVX-512, else AVX2+FMA, else scalar). Runs ~`seconds`.
// double_precision=false: float32, true: float64.
double peak_fma_gflops(int threads, double seconds, bool double_precision);

// Streaming memory bandwidth in GB/s (1e9 bytes/s) counting bytes read + bytes written, of a
// b[i] = s * a[i] kernel over two buffers of `bytes_per_buffer` bytes each (make them much larger than the
// last-level cache), on `threads` threads; best of `repeats` passes (first touch is parallel, so pages land
// near the threads that use them).
double stream_bandwidth_gbs(int threads, int64_t bytes_per_buffer, int repeats);

}  // namespace fastconv
