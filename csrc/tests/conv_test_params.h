// The ConvParams of a reference convolution (reference_conv.h), shared by the C++ conv kernel tests.
#pragma once

#include "common/conv_params.h"
#include "reference_conv.h"

namespace fastconv_test {

inline fastconv::ConvParams to_params(const RefConv& c, fastconv::Layout layout, int threads) {
  fastconv::ConvParams p;
  p.N = c.N; p.C = c.C; p.H = c.H; p.W = c.W; p.K = c.K; p.R = c.R; p.S = c.S;
  p.OH = c.oh(); p.OW = c.ow();
  p.stride_h = c.sh; p.stride_w = c.sw;
  p.pad_t = c.pt; p.pad_b = c.pb; p.pad_l = c.pl; p.pad_r = c.pr;
  p.dil_h = c.dh; p.dil_w = c.dw;
  p.groups = c.groups;
  p.mode = static_cast<fastconv::PaddingMode>(static_cast<int>(c.pad));
  p.layout = layout;
  p.num_threads = threads;
  return p;
}

}  // namespace fastconv_test
