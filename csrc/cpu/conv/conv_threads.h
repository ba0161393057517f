// The thread count a convolution pass runs with. conv_dispatch.cpp sizes every pass with it before choosing an
// algorithm, and whatever plans a pass ahead of the dispatch (the Winograd inference cache asking whether the
// forward fuses its weight transform, winograd_forward_fuses_weight_transform) sizes it the same way, so both see
// the plan that runs.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../../common/conv_params.h"
#include "../../common/parallel.h"

namespace fastconv {
namespace cpu {

// The same problem with num_threads lowered to 1 when it is too small to share. The work is the number
// of multiply-adds (all three passes have the same count), or of input elements touched when larger
// (a strided or dilated convolution can read far more than it multiplies).
inline ConvParams sized_threads(const ConvParams& p) {
  ConvParams q = p;
  const int64_t macs = p.N * p.K * p.OH * p.OW * p.C_per_group() * p.R * p.S;
  const int64_t elems = p.N * (p.C * p.H * p.W + p.K * p.OH * p.OW);
  q.num_threads = threads_for_work(std::max(macs, elems), p.num_threads);
  return q;
}

}  // namespace cpu
}  // namespace fastconv
