// Compares fastconv::cpu::conv_forward / conv_backward_input / conv_backward_weight / conv_backward_bias
// (and the *_direct fallbacks) with the naive reference (reference_conv.h) on random data, for float and double, NCHW and NHWC, and
// 1 and 2 OpenMP threads, over hand-picked edge cases plus a seeded random sample of the parameter grid.
// Outputs are pre-filled with NaN, so a kernel that accumulates into (instead of writing) its output fails.
// Exit code is non-zero on any mismatch.
#include <cinttypes>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/conv/conv_kernels.h"
#include "conv_test_params.h"
#include "reference_conv.h"
#include "test_util.h"

using fastconv::ConvParams;
using fastconv::Layout;
using fastconv::PaddingMode;
using fastconv_test::RefConv;
using fastconv_test::to_params;
using fastconv_test::RefPad;

using fastconv_test::to_nchw;
using fastconv_test::to_nhwc;

namespace {

const char* pad_name(RefPad m) {
  switch (m) {
    case RefPad::Zeros: return "zeros";
    case RefPad::Reflect: return "reflect";
    case RefPad::Replicate: return "replicate";
    case RefPad::Circular: return "circular";
  }
  return "?";
}

std::string describe(const RefConv& c) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "N=%" PRId64 " C=%" PRId64 " H=%" PRId64 " W=%" PRId64 " K=%" PRId64 " R=%" PRId64 " S=%" PRId64
                " stride=(%" PRId64 ",%" PRId64 ") pad=(%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                ") dil=(%" PRId64 ",%" PRId64 ") groups=%" PRId64 " mode=%s out=(%" PRId64 ",%" PRId64 ")",
                c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.sh, c.sw, c.pt, c.pb, c.pl, c.pr, c.dh, c.dw, c.groups,
                pad_name(c.pad), c.oh(), c.ow());
  return buf;
}

// Same validity rules as torch / fastconv's validate_conv.
bool valid(const RefConv& c) {
  if (c.C % c.groups || c.K % c.groups) return false;
  if (c.Hp() < c.dh * (c.R - 1) + 1 || c.Wp() < c.dw * (c.S - 1) + 1) return false;
  if (c.pad == RefPad::Reflect && (c.pt >= c.H || c.pb >= c.H || c.pl >= c.W || c.pr >= c.W)) return false;
  if (c.pad == RefPad::Circular && (c.pt > c.H || c.pb > c.H || c.pl > c.W || c.pr > c.W)) return false;
  return true;
}



template <typename T>
std::vector<T> nan_vector(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

struct Summary {
  int runs = 0;
  double worst[2][4] = {{0}};  // [float, double][fwd, bwd_input, bwd_weight, bwd_bias]
};

template <typename T>
void check_case(const RefConv& c, bool with_bias, uint64_t seed, Summary& sum) {
  const int ti = sizeof(T) == 4 ? 0 : 1;
  // Generous for float so algorithms with a different summation order (GEMM, Winograd) pass; an indexing
  // bug gives errors of order 1.
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-10;
  const int64_t OH = c.oh(), OW = c.ow(), Cg = c.C / c.groups;
  const auto x = fastconv_test::random_vector<T>(c.N * c.C * c.H * c.W, seed);
  const auto w = fastconv_test::random_vector<T>(c.K * Cg * c.R * c.S, seed + 1);
  const auto b = fastconv_test::random_vector<T>(c.K, seed + 2);
  const auto gy = fastconv_test::random_vector<T>(c.N * c.K * OH * OW, seed + 3);
  const T* bias = with_bias ? b.data() : nullptr;

  // The forward is only defined for the formula's output size.
  const bool formula_size = OH == c.formula_oh() && OW == c.formula_ow();
  const auto y_ref = formula_size ? fastconv_test::ref_forward(c, x, w, bias) : std::vector<T>();
  const auto gx_ref = fastconv_test::ref_backward_input(c, gy, w);
  const auto gw_ref = fastconv_test::ref_backward_weight(c, x, gy);
  const auto gb_ref = fastconv_test::ref_backward_bias(c, gy);

  for (Layout layout : {Layout::NCHW, Layout::NHWC}) {
    const bool nhwc = layout == Layout::NHWC;
    const auto xl = nhwc ? to_nhwc(x, c.N, c.C, c.H, c.W) : x;
    const auto gyl = nhwc ? to_nhwc(gy, c.N, c.K, OH, OW) : gy;
    for (int threads : {1, 2}) {
      const ConvParams p = to_params(c, layout, threads);
      const std::string what = describe(c) + (nhwc ? " NHWC" : " NCHW") + " threads=" + std::to_string(threads) +
                               (sizeof(T) == 4 ? " float" : " double") + (with_bias ? " bias" : "");
      ++sum.runs;
      if (formula_size) {
        auto y = nan_vector<T>(y_ref.size());
        fastconv::cpu::conv_forward<T>(p, xl.data(), w.data(), bias, y.data());
        const double e = fastconv_test::max_rel_error(nhwc ? to_nchw(y, c.N, c.K, OH, OW) : y, y_ref);
        sum.worst[ti][0] = std::max(sum.worst[ti][0], e);
        FC_CHECK(e <= tol, "conv_forward rel err %.3g: %s", e, what.c_str());
      }
      if (formula_size) {  // the direct fallback, which the dispatcher may not pick for this shape
        auto y = nan_vector<T>(y_ref.size());
        fastconv::cpu::conv_forward_direct<T>(p, xl.data(), w.data(), bias, y.data());
        const double e = fastconv_test::max_rel_error(nhwc ? to_nchw(y, c.N, c.K, OH, OW) : y, y_ref);
        FC_CHECK(e <= tol, "conv_forward_direct rel err %.3g: %s", e, what.c_str());
      }
      {
        auto gx = nan_vector<T>(gx_ref.size());
        fastconv::cpu::conv_backward_input_direct<T>(p, gyl.data(), w.data(), gx.data());
        const double e = fastconv_test::max_rel_error(nhwc ? to_nchw(gx, c.N, c.C, c.H, c.W) : gx, gx_ref);
        FC_CHECK(e <= tol, "conv_backward_input_direct rel err %.3g: %s", e, what.c_str());
      }
      {
        auto gw = nan_vector<T>(gw_ref.size());
        fastconv::cpu::conv_backward_weight_direct<T>(p, xl.data(), gyl.data(), gw.data());
        const double e = fastconv_test::max_rel_error(gw, gw_ref);
        FC_CHECK(e <= tol, "conv_backward_weight_direct rel err %.3g: %s", e, what.c_str());
      }
      {
        auto gx = nan_vector<T>(gx_ref.size());
        fastconv::cpu::conv_backward_input<T>(p, gyl.data(), w.data(), gx.data());
        const double e = fastconv_test::max_rel_error(nhwc ? to_nchw(gx, c.N, c.C, c.H, c.W) : gx, gx_ref);
        sum.worst[ti][1] = std::max(sum.worst[ti][1], e);
        FC_CHECK(e <= tol, "conv_backward_input rel err %.3g: %s", e, what.c_str());
      }
      {
        auto gw = nan_vector<T>(gw_ref.size());
        fastconv::cpu::conv_backward_weight<T>(p, xl.data(), gyl.data(), gw.data());
        const double e = fastconv_test::max_rel_error(gw, gw_ref);
        sum.worst[ti][2] = std::max(sum.worst[ti][2], e);
        FC_CHECK(e <= tol, "conv_backward_weight rel err %.3g: %s", e, what.c_str());
      }
      {
        auto gb = nan_vector<T>(gb_ref.size());
        fastconv::cpu::conv_backward_bias<T>(p, gyl.data(), gb.data());
        const double e = fastconv_test::max_rel_error(gb, gb_ref);
        sum.worst[ti][3] = std::max(sum.worst[ti][3], e);
        FC_CHECK(e <= tol, "conv_backward_bias rel err %.3g: %s", e, what.c_str());
      }
    }
  }
}

RefConv make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int64_t stride,
             int64_t pad, int64_t dil, int64_t groups, RefPad mode = RefPad::Zeros) {
  RefConv c{N, C, H, W, K, R, S};
  c.sh = c.sw = stride;
  c.pt = c.pb = c.pl = c.pr = pad;
  c.dh = c.dw = dil;
  c.groups = groups;
  c.pad = mode;
  return c;
}

// Edge cases every kernel path must get right.
std::vector<RefConv> hand_picked_cases() {
  std::vector<RefConv> v;
  v.push_back(make(2, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1));                      // plain 3x3 'same'
  v.push_back(make(1, 8, 8, 8, 16, 1, 1, 1, 0, 1, 1));                     // pointwise
  v.push_back(make(3, 4, 9, 7, 8, 1, 1, 2, 0, 1, 1));                      // strided pointwise
  v.push_back(make(2, 4, 10, 11, 6, 3, 3, 2, 1, 1, 1));                    // strided 3x3
  v.push_back(make(1, 6, 11, 10, 6, 3, 3, 1, 1, 1, 6));                    // depthwise
  v.push_back(make(2, 4, 9, 9, 8, 3, 3, 1, 1, 1, 4));                      // depthwise, multiplier 2
  v.push_back(make(1, 4, 8, 8, 6, 3, 3, 1, 2, 2, 2));                      // groups + dilation
  v.push_back(make(1, 3, 12, 12, 4, 5, 5, 1, 2, 1, 1));                    // 5x5
  v.push_back(make(1, 3, 12, 12, 4, 7, 7, 2, 3, 1, 1));                    // 7x7 stride 2 (stem-like)
  v.push_back(make(2, 16, 6, 6, 16, 3, 3, 1, 1, 1, 1));                    // more channels than SIMD lanes
  v.push_back(make(1, 17, 5, 5, 19, 3, 3, 1, 1, 1, 1));                    // channel counts not multiple of 16
  v.push_back(make(1, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1));                      // input smaller than the kernel
  v.push_back(make(1, 2, 1, 1, 2, 3, 3, 1, 1, 1, 1));                      // 1x1 input, 3x3 kernel
  v.push_back(make(0, 3, 5, 5, 2, 3, 3, 1, 1, 1, 1));                      // empty batch
  v.push_back(make(2, 3, 1, 13, 4, 1, 5, 1, 2, 1, 1));                     // 1-d (H == 1)
  v.push_back(make(2, 3, 1, 13, 4, 1, 3, 2, 0, 3, 1));                     // 1-d strided, dilated
  v.push_back(make(1, 3, 6, 9, 2, 2, 4, 1, 0, 1, 1));                      // even, non-square kernel
  v.push_back(make(1, 3, 9, 9, 2, 3, 3, 3, 0, 3, 1));                      // stride 3, dilation 3
  for (RefPad m : {RefPad::Reflect, RefPad::Replicate, RefPad::Circular}) {
    v.push_back(make(2, 3, 6, 7, 4, 3, 3, 1, 1, 1, 1, m));
    v.push_back(make(1, 4, 5, 6, 4, 3, 3, 2, 2, 1, 2, m));
    v.push_back(make(1, 2, 4, 4, 3, 5, 5, 1, 3, 1, 1, m));                 // padding close to the input size
    v.push_back(make(1, 4, 7, 8, 4, 3, 3, 1, 2, 2, 4, m));                 // depthwise dilated
  }
  // Medium shapes, where fast paths (GEMM, Winograd, vectorised channel loops) are likely to be chosen.
  v.push_back(make(2, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1));                  // ResNet-like 3x3
  v.push_back(make(1, 64, 8, 8, 48, 1, 1, 1, 0, 1, 1));                    // pointwise, wide
  v.push_back(make(2, 24, 15, 13, 40, 3, 3, 2, 1, 1, 1));                  // strided, odd sizes
  v.push_back(make(2, 32, 14, 14, 32, 3, 3, 1, 1, 1, 32));                 // depthwise, wide
  v.push_back(make(1, 16, 20, 20, 16, 5, 5, 1, 2, 1, 1));                  // 5x5
  v.push_back(make(1, 3, 32, 32, 16, 7, 7, 2, 3, 1, 1));                   // stem
  v.push_back(make(2, 33, 9, 11, 17, 3, 3, 1, 1, 1, 1, RefPad::Reflect));  // odd channels, reflect
  v.push_back(make(1, 32, 12, 12, 64, 3, 3, 1, 1, 1, 4));                  // grouped, wide
  // The NHWC direct forward (conv_implicit_nhwc.cpp): groups with one-vector column panels, an
  // 11x11/4 kernel on 3 channels, a pixel stride moved off 2 KB, dilated + strided with replicate padding.
  v.push_back(make(3, 48, 9, 13, 15, 5, 5, 1, 2, 1, 3));
  v.push_back(make(2, 3, 39, 43, 20, 11, 11, 4, 2, 1, 1));
  v.push_back(make(1, 256, 9, 30, 40, 3, 3, 2, 1, 1, 1));
  v.push_back(make(2, 24, 17, 19, 48, 3, 3, 2, 2, 2, 2, RefPad::Replicate));
  // Its NCHW output stored transposed from the tiles (an NCHW float forward of 64+ output pixels run there):
  // column panels of 32 and 8 channels, rows of 14 + 14 pixels, bias.
  v.push_back(make(2, 16, 14, 28, 40, 5, 5, 1, 2, 1, 1));
  // Its short rows (2-5 output pixels) computed several rows per tile, evenly split over a band, with one vector
  // or two of output channels and reflect padding; 7-pixel rows as odd tiles of exactly 7.
  v.push_back(make(2, 32, 8, 8, 48, 4, 4, 2, 1, 1, 1));
  v.push_back(make(3, 16, 9, 5, 40, 3, 3, 2, 1, 1, 1));
  v.push_back(make(1, 20, 10, 10, 20, 3, 3, 2, 1, 1, 1, RefPad::Reflect));
  v.push_back(make(1, 24, 6, 4, 16, 3, 3, 1, 1, 1, 1));
  v.push_back(make(2, 32, 13, 13, 40, 3, 3, 2, 1, 1, 1));
  // Its weight-stationary order (run_weight_stationary, 2 threads: a packed weight over 1 MB, a small input):
  // whole panels, and a last panel of 8 channels with reflect padding.
  v.push_back(make(2, 128, 9, 9, 256, 3, 3, 2, 1, 1, 1));
  v.push_back(make(3, 128, 11, 10, 264, 3, 3, 2, 1, 1, 1, RefPad::Reflect));
  // The few-channel weight gradient (conv_few_channel_weight.cpp: <= 16 channels per group, output channels in
  // whole vectors): RGB 3x3 on several bands, one input channel with a 5x5 kernel, groups with reflect padding, a
  // 7x7/2 stem, a grad_output one row and column short of the formula's (a cropped output).
  v.push_back(make(2, 3, 30, 29, 64, 3, 3, 1, 1, 1, 1));
  v.push_back(make(3, 1, 15, 17, 16, 5, 5, 1, 2, 1, 1));
  v.push_back(make(2, 6, 12, 11, 64, 3, 3, 1, 1, 1, 2, RefPad::Reflect));
  v.push_back(make(1, 3, 21, 23, 48, 7, 7, 2, 3, 1, 1));
  {
    RefConv c = make(2, 4, 13, 12, 32, 3, 3, 2, 1, 1, 1);
    c.OH = c.formula_oh() - 1, c.OW = c.formula_ow() - 1;
    v.push_back(c);
  }
  // The many-channel weight gradient (conv_many_channel_weight.cpp: > 16 channels per group, stride 1 with 3x3 or
  // larger kernels, or 4x4+ strided on 128+ channels): 5x5 on 24 channels, groups with reflect padding, 4x4/2 on
  // 3x3 outputs (several images per tile), 5 vectors of output channels (uneven blocks), a cropped grad_output.
  v.push_back(make(2, 24, 11, 10, 32, 5, 5, 1, 2, 1, 1));
  v.push_back(make(2, 48, 9, 9, 64, 5, 5, 1, 2, 1, 2, RefPad::Reflect));
  v.push_back(make(3, 128, 6, 6, 32, 4, 4, 2, 1, 1, 1));
  v.push_back(make(1, 20, 7, 9, 80, 3, 3, 1, 1, 1, 1));
  {
    RefConv c = make(2, 20, 12, 12, 16, 3, 3, 1, 1, 1, 1);
    c.OH = c.formula_oh() - 1, c.OW = c.formula_ow() - 1;
    v.push_back(c);
  }
  // The NHWC strided input gradient by output phases (conv_implicit_nhwc.cpp; input channels >= 32, in whole
  // half panels): DCGAN's 4x4/2 with two panels (48 channels), 3x3/2 on odd sizes, stride 3 with a 4-tap kernel
  // (phases of 2 and 1 taps), 2x2/2 (one tap per phase), a cropped grad_output.
  v.push_back(make(2, 48, 8, 8, 24, 4, 4, 2, 1, 1, 1));
  v.push_back(make(2, 32, 13, 15, 40, 3, 3, 2, 1, 1, 1));
  v.push_back(make(1, 64, 17, 11, 20, 4, 4, 3, 2, 1, 2));
  v.push_back(make(2, 32, 8, 10, 16, 2, 2, 2, 0, 1, 1));
  // The NHWC input gradient of a kernel that tiles its input (conv_patch_input.cpp): a last row and column no
  // patch reaches (zeros), a 3x3/3 kernel (the generic copy), odd channel counts.
  v.push_back(make(1, 20, 9, 11, 12, 2, 2, 2, 0, 1, 1));
  v.push_back(make(2, 7, 7, 10, 5, 3, 3, 3, 0, 1, 1));
  {
    RefConv c = make(2, 32, 11, 9, 8, 4, 4, 2, 1, 1, 1);
    c.OH = c.formula_oh() - 1;
    v.push_back(c);
  }
  // NHWC depthwise 3x3 on whole channel vectors: rows of at most 16 outputs in one pass (forward), the stride-2
  // input gradient by rows of gx (groups of 16 columns and a partial one).
  v.push_back(make(2, 32, 14, 14, 32, 3, 3, 2, 1, 1, 32));
  v.push_back(make(1, 16, 9, 35, 16, 3, 3, 2, 1, 1, 16));
  // NCHW depthwise strided input gradient by output phases: rows of 18 and 19 outputs, a 5x5 kernel at (3, 2).
  v.push_back(make(2, 8, 23, 36, 8, 3, 3, 2, 1, 1, 8));
  {
    RefConv c = make(1, 4, 25, 41, 4, 5, 5, 2, 2, 1, 4);
    c.sh = 3;
    v.push_back(c);
  }
  // NCHW depthwise 3x3 pad 1 with rows in registers (conv_depthwise_nchw_3x3.cpp), stride 1 and 2: rows of at
  // most 16 floats, and wider rows in 16-column strips (a last strip of 1 column at stride 1, odd width at 2).
  v.push_back(make(2, 16, 14, 14, 16, 3, 3, 1, 1, 1, 16));
  v.push_back(make(1, 8, 9, 16, 8, 3, 3, 2, 1, 1, 8));
  v.push_back(make(1, 4, 6, 33, 4, 3, 3, 1, 1, 1, 4));
  v.push_back(make(2, 4, 7, 45, 4, 3, 3, 2, 1, 1, 4));
  // NCHW depthwise 3x3 / 5x5 / 7x7 strips (conv_depthwise_nchw_strips.cpp): unpadded 3x3, 5x5 pad 2 at stride
  // 1 and 2 on rows of 14 and 37 columns (a partial last strip, a group of output rows cut short), 7x7 pad 3 and
  // an asymmetric 5x5 (pads 1 / 3, 4 / 0).
  v.push_back(make(2, 8, 9, 20, 8, 3, 3, 1, 0, 1, 8));
  v.push_back(make(1, 8, 14, 14, 8, 5, 5, 1, 2, 1, 8));
  v.push_back(make(2, 4, 11, 37, 4, 5, 5, 2, 2, 1, 4));
  v.push_back(make(1, 4, 10, 19, 4, 7, 7, 1, 3, 1, 4));
  {
    RefConv c = make(1, 4, 9, 18, 4, 5, 5, 1, 0, 1, 4);
    c.pt = 1, c.pb = 3, c.pl = 4, c.pr = 0;
    v.push_back(c);
  }
  // channels_last 5x5 / 7x7 with columns loaded once per kernel row (forward_cols, conv_depthwise_nhwc.cpp): a
  // row of 14 in one pass, a wide stride-2 row in groups of 8.
  v.push_back(make(1, 32, 9, 14, 32, 5, 5, 1, 2, 1, 32));
  v.push_back(make(1, 16, 7, 41, 16, 7, 7, 2, 3, 1, 16));
  // Weight gradients of 1 MB or more on small output planes, batched into GEMMs over several images
  // (conv_gemm_backward_weight.cpp): 2x2 outputs with groups, 3x3 outputs with reflect padding. (Several chunks
  // of images need more pixels than valgrind has time for: tests/test_conv_paths.py has them.)
  v.push_back(make(2, 128, 4, 4, 256, 4, 4, 2, 1, 1, 2));
  v.push_back(make(3, 128, 5, 5, 256, 3, 3, 2, 1, 1, 1, RefPad::Reflect));
  // Circular padding equal to the input size (allowed), and replicate with big pads.
  v.push_back(make(1, 2, 3, 3, 2, 3, 3, 1, 3, 1, 1, RefPad::Circular));
  v.push_back(make(1, 2, 2, 3, 2, 3, 3, 1, 4, 1, 1, RefPad::Replicate));
  // Asymmetric padding: 'same' with even kernels (extra element at the end), causal 1-d.
  {
    RefConv c = make(2, 3, 8, 7, 4, 2, 4, 1, 0, 1, 1);
    c.pt = 0; c.pb = 1; c.pl = 1; c.pr = 2;
    v.push_back(c);
    c.pad = RefPad::Reflect;
    v.push_back(c);
    RefConv causal = make(2, 3, 1, 10, 4, 1, 3, 1, 0, 2, 1);
    causal.pl = 4;
    v.push_back(causal);
    causal.pad = RefPad::Circular;
    v.push_back(causal);
  }
  // Backward with an output smaller than the formula (transposed conv with output_padding < stride - 1).
  {
    RefConv c = make(2, 3, 9, 8, 4, 3, 3, 2, 1, 1, 1);
    c.OH = c.formula_oh() - 1;
    c.OW = c.formula_ow() - 2;
    v.push_back(c);
    c.pad = RefPad::Replicate;
    v.push_back(c);
    RefConv d = make(1, 4, 10, 10, 4, 3, 3, 3, 0, 1, 2);
    d.OH = d.formula_oh() - 1;
    v.push_back(d);
  }
  return v;
}

// A seeded random sample of the parameter grid (valid combinations only).
std::vector<RefConv> random_cases(int count, uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto pick = [&](std::initializer_list<int64_t> values) {
    std::uniform_int_distribution<size_t> d(0, values.size() - 1);
    return *(values.begin() + d(gen));
  };
  std::vector<RefConv> v;
  while (static_cast<int>(v.size()) < count) {
    const int64_t groups = pick({1, 1, 2, 3, 4});
    const bool depthwise = pick({0, 0, 1}) == 1;
    RefConv c;
    c.N = pick({0, 1, 2, 3});
    c.C = depthwise ? groups : groups * pick({1, 2, 3});
    c.K = depthwise ? groups * pick({1, 2}) : groups * pick({1, 2, 3});
    c.H = pick({1, 2, 3, 5, 7, 8, 11});
    c.W = pick({1, 2, 4, 6, 9, 12});
    c.R = pick({1, 2, 3, 5});
    c.S = pick({1, 2, 3, 4, 7});
    c.sh = pick({1, 2, 3});
    c.sw = pick({1, 1, 2, 3});
    c.dh = pick({1, 1, 2, 3});
    c.dw = pick({1, 2});
    c.pt = pick({0, 1, 2, 3});
    c.pb = pick({0, 1, 2});
    c.pl = pick({0, 1, 2});
    c.pr = pick({0, 1, 3});
    c.groups = groups;
    c.pad = static_cast<RefPad>(pick({0, 0, 1, 2, 3}));
    if (!valid(c)) continue;
    if (pick({0, 0, 0, 1}) == 1) {  // sometimes a smaller output (backward only)
      c.OH = std::max<int64_t>(0, c.formula_oh() - pick({0, 1}));
      c.OW = std::max<int64_t>(0, c.formula_ow() - pick({0, 1, 2}));
    }
    v.push_back(c);
  }
  return v;
}

}  // namespace

int main() {
  Summary sum;
  auto cases = hand_picked_cases();
  const auto sampled = random_cases(120, 20261122);
  cases.insert(cases.end(), sampled.begin(), sampled.end());
  uint64_t seed = 1;
  int invalid = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const RefConv& c = cases[i];
    if (!fastconv_test::sampled(i)) continue;
    if (!valid(c)) {  // a hand-picked case that breaks the rules is a bug in this test
      std::fprintf(stderr, "invalid test case: %s\n", describe(c).c_str());
      ++invalid;
      continue;
    }
    for (bool with_bias : {true, false}) {
      check_case<float>(c, with_bias, seed, sum);
      check_case<double>(c, with_bias, seed, sum);
      seed += 10;
    }
  }
  FC_CHECK(invalid == 0, "%d invalid hand-picked cases", invalid);
  std::printf("test_conv_kernels: %zu shapes, %d kernel runs per pass\n", cases.size(), sum.runs);
  const char* names[4] = {"forward", "backward_input", "backward_weight", "backward_bias"};
  for (int t = 0; t < 2; ++t)
    for (int k = 0; k < 4; ++k)
      std::printf("  %-7s %-16s max rel error %.3g\n", t == 0 ? "float" : "double", names[k], sum.worst[t][k]);
  return fastconv_test::report("test_conv_kernels");
}
