// Per-thread, 64-byte-aligned scratch buffers that grow and are reused across calls, so the hot paths do
// not malloc/free (and page-fault) multi-megabyte buffers on every convolution. OpenMP keeps its worker
// threads alive, so the buffers survive between calls. Each caller uses its own slot.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace fastconv {
namespace cpu {

enum ScratchSlot : int {
  kScratchPackA = 0,
  kScratchPackB,
  kScratchCol,
  kScratchAcc,
  kScratchWeight,
  kScratchLayoutIn,   // conv_layout_switch.cpp: activations transposed to NCHW
  kScratchLayoutOut,  // ... and the NCHW result before it is transposed back
  kScratchWinogradWeight,  // winograd/: transformed weights (the calling thread's, read by the team)
  kScratchWinogradIn,      // ... a block's transformed input (each thread's own)
  kScratchWinogradOut,     // ... its 36 GEMM results
  kScratchSubgridIn,       // conv_subgrid.cpp: activations regrouped into subgrid images
  kScratchSubgridOut,      // ... and the subgrid result before it is regrouped back
  kScratchDenseWeight,     // conv_dispatch.cpp: a (K, R, S, Cg) weight as (K, Cg, R, S)
  kScratchStationaryInput, // conv_implicit_nhwc.cpp: every image's padded input (the calling thread's, read by the team)
  kScratchSlots
};

inline void* thread_scratch_bytes(int slot, size_t bytes) {
  struct Buf {
    void* ptr = nullptr;
    size_t size = 0;
    ~Buf() { std::free(ptr); }
  };
  thread_local Buf bufs[kScratchSlots];
  Buf& b = bufs[slot];
  if (b.size < bytes) {
    std::free(b.ptr);
    const size_t sz = ((bytes + 63) / 64) * 64;
    b.ptr = std::aligned_alloc(64, sz);
    if (!b.ptr) throw std::bad_alloc();
    b.size = sz;
  }
  return b.ptr;
}

template <typename T>
T* thread_scratch(int slot, size_t count) {
  return static_cast<T*>(thread_scratch_bytes(slot, count * sizeof(T)));
}

}  // namespace cpu
}  // namespace fastconv
