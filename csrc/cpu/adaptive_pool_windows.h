// Helpers shared by the adaptive pooling kernels: per-axis window tables and the threading decision.
#pragma once

#include <cstdint>
#include <vector>

#include "../common/adaptive_pool_params.h"
#include "../common/parallel.h"

namespace fastconv {
namespace cpu {

// Windows of one axis: output o pools input [start[o], end[o]); input i lies in the windows of outputs
// first[i] ..= last[i] (a contiguous range: start and end are non-decreasing in o).
struct AxisWindows {
  std::vector<int64_t> start, end, first, last;

  AxisWindows(int64_t in, int64_t out) : start(out), end(out), first(in, -1), last(in, -1) {
    for (int64_t o = 0; o < out; ++o) {
      start[o] = adaptive_start(o, in, out);
      end[o] = adaptive_end(o, in, out);
      for (int64_t i = start[o]; i < end[o]; ++i) {
        if (first[i] < 0) first[i] = o;
        last[i] = o;
      }
    }
  }
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
