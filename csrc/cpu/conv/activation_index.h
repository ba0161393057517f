// Element offsets of dense activations in either layout.
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {

struct ActIndex {
  int64_t C, H, W;
  Layout layout;
  // Offset of (n, c, h, w).
  int64_t operator()(int64_t n, int64_t c, int64_t h, int64_t w) const {
    return layout == Layout::NCHW ? ((n * C + c) * H + h) * W + w : ((n * H + h) * W + w) * C + c;
  }
};

inline ActIndex input_index(const ConvParams& p) { return ActIndex{p.C, p.H, p.W, p.layout}; }
inline ActIndex output_index(const ConvParams& p) { return ActIndex{p.K, p.OH, p.OW, p.layout}; }

}  // namespace fastconv
