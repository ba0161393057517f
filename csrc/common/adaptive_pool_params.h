// Shape description and validation of one 2-d adaptive pooling (1-d is H == 1). Torch-free.
// Output cell o along an axis of input size `in` and output size `out` pools input [start, end) with
//   start = floor(o * in / out),  end = ceil((o + 1) * in / out)   (torch's windows; they overlap when
// out does not divide in, and are 1 wide with repeats when out > in).
#pragma once

#include <cstdint>
#include <string>

#include "conv_params.h"  // Layout
#include "op_error.h"

namespace fastconv {

struct AdaptivePoolParams {
  int64_t N = 0, C = 0;
  int64_t H = 0, W = 0;    // input spatial size
  int64_t OH = 0, OW = 0;  // output spatial size
  Layout layout = Layout::NCHW;
  int num_threads = 1;

  bool is_global() const { return OH == 1 && OW == 1; }
  int64_t in_plane() const { return H * W; }
  int64_t out_plane() const { return OH * OW; }
};

inline int64_t adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
inline int64_t adaptive_end(int64_t o, int64_t in, int64_t out) { return ((o + 1) * in + out - 1) / out; }

// Returns "" when p is valid, else a message naming the offending argument. Like torch: an output size of 0
// and a batch or channel count of 0 are valid (an empty result, a zero gradient); an empty spatial input
// is not (its windows would be empty). torch's adaptive *max* pooling also rejects C == 0:
// plan_adaptive_max_pool2d (bindings) adds that rule.
inline std::string validate_adaptive_pool(const AdaptivePoolParams& p, const char* op) {
  if (p.OH < 0 || p.OW < 0) {
    return op_error(op, "output_size must be non-negative, got (", p.OH, ", ", p.OW, ")");
  }
  if (p.N < 0 || p.C < 0 || p.H <= 0 || p.W <= 0) {
    return op_error(op, "input must have non-zero size in its spatial dimensions, got (", p.N, ", ", p.C, ", ", p.H,
        ", ", p.W, ")");
  }
  return std::string();
}

}  // namespace fastconv
