// Helpers shared by the adaptive pooling kernels: per-axis window tables and the threading decision.
#pragma once

#include <cstdint>
#include <vector>

#include "../../common/adaptive_pool_params.h"
#include "../../common/parallel.h"

namespace fastconv {
namespace cpu {

// Windows of one axis: output o pools input [start[o], end[o]); input i lies in the windows of outputs
// first(i) ..= last(i) (a contiguous range: start and end are non-decreasing in o). Only the per-output
// bounds are stored: per-input tables cost 16 bytes an input element (4x a float32 input, and
// std::bad_alloc for a 2^31-long 1-d input), so first/last are computed from the closed forms
//   end[o] > i    <=> o >= floor(i * out / in)
//   start[o] <= i <=> o <= ceil((i + 1) * out / in) - 1.
struct AxisWindows {
  std::vector<int64_t> start, end;
  int64_t in, out;

  AxisWindows(int64_t in_size, int64_t out_size) : start(out_size), end(out_size), in(in_size), out(out_size) {
    for (int64_t o = 0; o < out; ++o) {
      start[o] = adaptive_start(o, in, out);
      end[o] = adaptive_end(o, in, out);
    }
  }
  int64_t first(int64_t i) const { return (i * out) / in; }
  int64_t last(int64_t i) const { return ((i + 1) * out + in - 1) / in - 1; }
};

// Serial below the shared threshold of touched elements (parallel.h, an element counting two work units
// as in pool_window.h): there an OpenMP region costs more than it saves.
inline int pool_threads(const AdaptivePoolParams& p, int64_t elements) {
  return threads_for_work(2 * elements, p.num_threads);
}

// Channel block of the NHWC kernels: bounds the rows a work item touches and gives enough items
// for all threads when N * OH is small (global pooling of one image).
constexpr int64_t kChannelBlock = 256;

inline int64_t channel_blocks(int64_t C) { return (C + kChannelBlock - 1) / kChannelBlock; }

}  // namespace cpu
}  // namespace fastconv
