// Winograd F(4x4, 3x3) and F(2x2, 5x5) forward (csrc/cpu/winograd/) against the naive reference (reference_conv.h):
// edge tiles (output sizes 1-7 and not multiples of the tile), every padding mode and asymmetric padding, channel
// counts that are not multiples of the vector lanes or of the GEMM's 32 columns, several tile blocks, 1 and 2
// threads; through the dispatcher too (NCHW input is moved to channels_last), with the size rule off so small
// shapes take the Winograd path; the weight gradient (every padding mode) and the input gradient (zero padding) the
// same way; dilated convolutions through the dispatcher (the subgrid path). Outputs are pre-filled with NaN. Exit
// code non-zero on a mismatch.
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "conv_test_params.h"
#include "cpu/conv/conv_kernels.h"
#include "cpu/winograd/winograd.h"
#include "reference_conv.h"
#include "test_util.h"

using fastconv::ConvParams;
using fastconv::Layout;
using fastconv_test::RefConv;
using fastconv_test::RefPad;

namespace {

RefConv make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
             RefPad mode = RefPad::Zeros, int64_t r = 3) {
  RefConv c{N, C, H, W, K, r, r};
  c.pt = pt, c.pb = pb, c.pl = pl, c.pr = pr;
  c.pad = mode;
  return c;
}

double worst = 0;

void check(const RefConv& c, bool with_bias, uint64_t seed) {
  const int64_t OH = c.oh(), OW = c.ow();
  const auto x = fastconv_test::random_vector<float>(c.N * c.C * c.H * c.W, seed);
  const int64_t Cg = c.C / c.groups;
  const auto w = fastconv_test::random_vector<float>(c.K * Cg * c.R * c.S, seed + 1);
  const auto b = fastconv_test::random_vector<float>(c.K, seed + 2);
  const float* bias = with_bias ? b.data() : nullptr;
  const auto ref = fastconv_test::ref_forward(c, x, w, bias);
  char what[200];
  std::snprintf(what, sizeof what,
                "%lldx%lld N=%lld C=%lld H=%lld W=%lld K=%lld groups=%lld pad=(%lld,%lld,%lld,%lld) mode=%d bias=%d",
                (long long)c.R, (long long)c.S, (long long)c.N, (long long)c.C, (long long)c.H, (long long)c.W,
                (long long)c.K, (long long)c.groups,
                (long long)c.pt, (long long)c.pb, (long long)c.pl, (long long)c.pr, int(c.pad), int(with_bias));
  const auto x_nhwc = fastconv_test::to_nhwc(x, c.N, c.C, c.H, c.W);
  const auto w_rsc = fastconv_test::to_nhwc(w, c.K, Cg, c.R, c.S);
  for (int threads : {1, 2}) {
    {  // the kernel itself, on channels_last activations
      const ConvParams p = fastconv_test::to_params(c, Layout::NHWC, threads);
      std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
      fastconv::cpu::conv_forward_winograd<float>(p, x_nhwc.data(), w.data(), bias, y.data());
      const double e = fastconv_test::max_rel_error(fastconv_test::to_nchw(y, c.N, c.K, OH, OW), ref);
      worst = std::max(worst, e);
      FC_CHECK(e <= 2e-5, "conv_forward_winograd rel err %.3g: %s threads=%d", e, what, threads);
    }
    {  // the kernel itself, on NCHW activations (a plane per lane)
      const ConvParams p = fastconv_test::to_params(c, Layout::NCHW, threads);
      std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
      fastconv::cpu::conv_forward_winograd<float>(p, x.data(), w.data(), bias, y.data());
      const double e = fastconv_test::max_rel_error(y, ref);
      FC_CHECK(e <= 2e-5, "conv_forward_winograd (NCHW) rel err %.3g: %s threads=%d", e, what, threads);
    }
    {  // through the dispatcher, NCHW (small planes: transposed to channels_last and back)
      const ConvParams p = fastconv_test::to_params(c, Layout::NCHW, threads);
      std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
      fastconv::cpu::conv_forward<float>(p, x.data(), w.data(), bias, y.data());
      const double e = fastconv_test::max_rel_error(y, ref);
      FC_CHECK(e <= 2e-5, "conv_forward (NCHW, Winograd) rel err %.3g: %s threads=%d", e, what, threads);
    }
    {  // a channels_last weight (K, 3, 3, C), read in place by the weight transform
      ConvParams p = fastconv_test::to_params(c, Layout::NHWC, threads);
      p.weight_rsc = true;
      std::vector<float> y(ref.size(), std::numeric_limits<float>::quiet_NaN());
      fastconv::cpu::conv_forward<float>(p, x_nhwc.data(), w_rsc.data(), bias, y.data());
      const double e = fastconv_test::max_rel_error(fastconv_test::to_nchw(y, c.N, c.K, OH, OW), ref);
      FC_CHECK(e <= 2e-5, "conv_forward (channels_last weight) rel err %.3g: %s threads=%d", e, what, threads);
    }
  }
  // the weight gradient (any padding mode, groups): 36 GEMMs over the transformed inputs and grad_outputs
  const auto gy = fastconv_test::random_vector<float>(c.N * c.K * OH * OW, seed + 3);
  const auto gy_nhwc = fastconv_test::to_nhwc(gy, c.N, c.K, OH, OW);
  const auto gw_ref = fastconv_test::ref_backward_weight(c, x, gy);
  for (int threads : {1, 2}) {
    const ConvParams p = fastconv_test::to_params(c, Layout::NHWC, threads);
    FC_CHECK(fastconv::cpu::use_winograd_backward_weight(p, 4), "weight gradient takes Winograd: %s", what);
    std::vector<float> gw(gw_ref.size(), std::numeric_limits<float>::quiet_NaN());
    fastconv::cpu::conv_backward_weight_winograd<float>(p, x_nhwc.data(), gy_nhwc.data(), gw.data());
    const double e = fastconv_test::max_rel_error(gw, gw_ref);
    worst = std::max(worst, e);
    FC_CHECK(e <= 2e-5, "conv_backward_weight_winograd rel err %.3g: %s threads=%d", e, what, threads);
    const ConvParams q = fastconv_test::to_params(c, Layout::NCHW, threads);
    std::vector<float> gw1(gw_ref.size(), std::numeric_limits<float>::quiet_NaN());
    fastconv::cpu::conv_backward_weight_winograd<float>(q, x.data(), gy.data(), gw1.data());
    const double e1 = fastconv_test::max_rel_error(gw1, gw_ref);
    FC_CHECK(e1 <= 2e-5, "conv_backward_weight_winograd (NCHW) rel err %.3g: %s threads=%d", e1, what, threads);
    std::vector<float> gw2(gw_ref.size(), std::numeric_limits<float>::quiet_NaN());
    fastconv::cpu::conv_backward_weight<float>(q, x.data(), gy.data(), gw2.data());
    const double e2 = fastconv_test::max_rel_error(gw2, gw_ref);
    FC_CHECK(e2 <= 2e-5, "conv_backward_weight (NCHW, Winograd) rel err %.3g: %s threads=%d", e2, what, threads);
  }
  if (c.pad != RefPad::Zeros) return;
  // the input gradient: a Winograd forward of grad_output with the rotated, transposed kernel
  const auto gx_ref = fastconv_test::ref_backward_input(c, gy, w);
  for (int threads : {1, 2}) {
    const ConvParams p = fastconv_test::to_params(c, Layout::NHWC, threads);
    const ConvParams q = fastconv_test::to_params(c, Layout::NCHW, threads);
    // grouped: only when the input channels per group come in whole vectors, at least 32 of them
    const bool winograd = fastconv::cpu::use_winograd_backward_input(p, 4);
    FC_CHECK(winograd || Cg % 16 != 0 || Cg < 32, "input gradient takes Winograd: %s", what);
    if (winograd) {
      std::vector<float> gx(gx_ref.size(), std::numeric_limits<float>::quiet_NaN());
      fastconv::cpu::conv_backward_input_winograd<float>(p, gy_nhwc.data(), w.data(), gx.data());
      const double e = fastconv_test::max_rel_error(fastconv_test::to_nchw(gx, c.N, c.C, c.H, c.W), gx_ref);
      worst = std::max(worst, e);
      FC_CHECK(e <= 2e-5, "conv_backward_input_winograd rel err %.3g: %s threads=%d", e, what, threads);
      std::vector<float> gx1(gx_ref.size(), std::numeric_limits<float>::quiet_NaN());
      fastconv::cpu::conv_backward_input_winograd<float>(q, gy.data(), w.data(), gx1.data());
      const double e1 = fastconv_test::max_rel_error(gx1, gx_ref);
      FC_CHECK(e1 <= 2e-5, "conv_backward_input_winograd (NCHW) rel err %.3g: %s threads=%d", e1, what, threads);
    }
    std::vector<float> gx2(gx_ref.size(), std::numeric_limits<float>::quiet_NaN());
    fastconv::cpu::conv_backward_input<float>(q, gy.data(), w.data(), gx2.data());
    const double e2 = fastconv_test::max_rel_error(gx2, gx_ref);
    FC_CHECK(e2 <= 2e-5, "conv_backward_input (NCHW, Winograd) rel err %.3g: %s threads=%d", e2, what, threads);
    ConvParams r = p;  // a channels_last weight, read in place by the flipped weight transform
    r.weight_rsc = true;
    std::vector<float> gx3(gx_ref.size(), std::numeric_limits<float>::quiet_NaN());
    fastconv::cpu::conv_backward_input<float>(r, gy_nhwc.data(), w_rsc.data(), gx3.data());
    const double e3 = fastconv_test::max_rel_error(fastconv_test::to_nchw(gx3, c.N, c.C, c.H, c.W), gx_ref);
    FC_CHECK(e3 <= 2e-5, "conv_backward_input (channels_last weight) rel err %.3g: %s threads=%d", e3, what, threads);
  }
}

}  // namespace

// A dilated 3x3 convolution through the dispatcher, all three passes, both layouts: the subgrid path
// (csrc/cpu/conv/conv_subgrid.cpp) regroups the activations and runs the undilated Winograd kernels.
void check_dilated(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t dh, int64_t dw, int64_t ph,
                   int64_t pw, uint64_t seed) {
  RefConv c{N, C, H, W, K, 3, 3};
  c.dh = dh, c.dw = dw, c.pt = c.pb = ph, c.pl = c.pr = pw;
  const int64_t OH = c.oh(), OW = c.ow();
  const auto x = fastconv_test::random_vector<float>(N * C * H * W, seed);
  const auto w = fastconv_test::random_vector<float>(K * C * 9, seed + 1);
  const auto b = fastconv_test::random_vector<float>(K, seed + 2);
  const auto gy = fastconv_test::random_vector<float>(N * K * OH * OW, seed + 3);
  const auto y_ref = fastconv_test::ref_forward(c, x, w, b.data());
  const auto gx_ref = fastconv_test::ref_backward_input(c, gy, w);
  const auto gw_ref = fastconv_test::ref_backward_weight(c, x, gy);
  for (Layout layout : {Layout::NCHW, Layout::NHWC})
    for (int threads : {1, 2}) {
      const ConvParams p = fastconv_test::to_params(c, layout, threads);
      const bool nhwc = layout == Layout::NHWC;
      const auto xl = nhwc ? fastconv_test::to_nhwc(x, N, C, H, W) : x;
      const auto gyl = nhwc ? fastconv_test::to_nhwc(gy, N, K, OH, OW) : gy;
      std::vector<float> y(y_ref.size(), std::numeric_limits<float>::quiet_NaN()), gx(gx_ref.size(), y[0]),
          gw(gw_ref.size(), y[0]);
      fastconv::cpu::conv_forward(p, xl.data(), w.data(), b.data(), y.data());
      fastconv::cpu::conv_backward_input(p, gyl.data(), w.data(), gx.data());
      fastconv::cpu::conv_backward_weight(p, xl.data(), gyl.data(), gw.data());
      const double ey = fastconv_test::max_rel_error(nhwc ? fastconv_test::to_nchw(y, N, K, OH, OW) : y, y_ref);
      const double ex = fastconv_test::max_rel_error(nhwc ? fastconv_test::to_nchw(gx, N, C, H, W) : gx, gx_ref);
      const double ew = fastconv_test::max_rel_error(gw, gw_ref);
      FC_CHECK(ey <= 2e-5 && ex <= 2e-5 && ew <= 2e-5,
               "dilated N=%lld C=%lld %lldx%lld K=%lld dil=(%lld,%lld) pad=(%lld,%lld) %s threads=%d: "
               "rel err y %.3g gx %.3g gw %.3g", (long long)N, (long long)C, (long long)H, (long long)W,
               (long long)K, (long long)dh, (long long)dw, (long long)ph, (long long)pw, nhwc ? "NHWC" : "NCHW",
               threads, ey, ex, ew);
    }
}

int main() {
  fastconv::cpu::set_winograd_size_rule(false);
  FC_CHECK(fastconv::cpu::winograd_allowed(), "the Winograd paths are allowed by default");
  std::vector<RefConv> cases;
  for (int64_t hw : {3, 4, 5, 6, 7, 9})  // output sizes 1-7 without padding
    cases.push_back(make(1, 16, hw, hw + 2, 16, 0, 0, 0, 0));
  cases.push_back(make(2, 17, 5, 7, 20, 1, 1, 1, 1));                   // channels not multiples of 16
  cases.push_back(make(3, 33, 9, 8, 40, 2, 2, 2, 2));                   // padding 2
  cases.push_back(make(1, 16, 12, 11, 130, 1, 1, 1, 1));                // K past a multiple of 32
  cases.push_back(make(2, 24, 7, 10, 32, 0, 1, 2, 0));                  // asymmetric padding
  cases.push_back(make(1, 20, 3, 3, 24, 2, 2, 2, 2));                   // padding 2 (input gradient: none)
  cases.push_back(make(1, 300, 6, 6, 20, 1, 1, 1, 1));                  // C over one GEMM depth block (256)
  cases.push_back(make(1, 40, 6, 6, 64, 1, 1, 1, 1));                   // full 32-kernel panels, 16-channel blocks
  cases.push_back(make(2, 64, 5, 7, 48, 1, 1, 1, 1));                   // ... and a partial panel
  cases.push_back(make(2, 64, 7, 9, 64, 1, 1, 1, 1));                   // 2 groups of 32 -> 32 (below)
  cases.back().groups = 2;
  cases.push_back(make(1, 96, 6, 6, 128, 1, 1, 1, 1));                  // 2 groups of 48 -> 64 (the input
  cases.back().groups = 2;                                               // gradient's 48 columns padded to 64)
  cases.push_back(make(2, 64, 7, 5, 96, 1, 1, 1, 1));                   // 2 groups of 32 -> 48 (padded)
  cases.back().groups = 2;
  cases.push_back(make(1, 51, 5, 5, 96, 0, 0, 0, 0));                   // 3 groups of 17 -> 32
  cases.back().groups = 3;
  cases.push_back(make(4, 16, 30, 30, 16, 1, 1, 1, 1));                 // many tile blocks
  cases.push_back(make(1, 20, 50, 47, 24, 1, 1, 1, 1));                 // a plane the dispatcher reads in place
  for (RefPad mode : {RefPad::Reflect, RefPad::Replicate, RefPad::Circular})
    cases.push_back(make(2, 20, 7, 9, 24, 1, 2, 2, 1, mode));
  cases.push_back(make(2, 16, 1, 9, 16, 1, 1, 1, 1, RefPad::Circular));  // edge tiles reach 3 rows past a 1-row input
  cases.push_back(make(1, 16, 2, 1, 20, 1, 1, 1, 1, RefPad::Circular));
  // 5x5 kernels, F(2x2, 5x5)
  const RefPad zeros = RefPad::Zeros;
  for (int64_t hw : {5, 6, 7, 9})  // output sizes 1-5 without padding
    cases.push_back(make(1, 16, hw, hw + 1, 16, 0, 0, 0, 0, zeros, 5));
  cases.push_back(make(2, 17, 5, 7, 20, 2, 2, 2, 2, zeros, 5));       // channels not multiples of 16
  cases.push_back(make(2, 24, 7, 10, 32, 0, 1, 3, 0, zeros, 5));      // asymmetric padding
  cases.push_back(make(1, 20, 3, 3, 24, 4, 4, 4, 4, zeros, 5));       // padding 4 (input gradient: none)
  cases.push_back(make(1, 300, 6, 6, 20, 2, 2, 2, 2, zeros, 5));     // C over one GEMM depth block
  cases.push_back(make(1, 40, 6, 6, 64, 2, 2, 2, 2, zeros, 5));      // 16-channel blocks of 25 taps
  cases.push_back(make(2, 64, 7, 9, 64, 2, 2, 2, 2, zeros, 5));      // 2 groups of 32 -> 32
  cases.back().groups = 2;
  cases.push_back(make(1, 96, 9, 8, 256, 2, 2, 2, 2, zeros, 5));     // AlexNet's conv2: 2 groups of 48 -> 128
  cases.back().groups = 2;
  for (RefPad mode : {RefPad::Reflect, RefPad::Replicate, RefPad::Circular})
    cases.push_back(make(2, 20, 7, 9, 24, 2, 1, 1, 2, mode, 5));
  cases.push_back(make(2, 16, 2, 9, 16, 2, 2, 2, 2, RefPad::Circular, 5));  // a 2-row input
  RefConv grouped = make(2, 64, 13, 11, 64, 1, 1, 1, 1);  // for the regimes below
  grouped.groups = 2;
  uint64_t seed = 1;
  check_dilated(2, 16, 12, 10, 24, 2, 2, 2, 2, seed += 7);
  check_dilated(1, 17, 12, 18, 20, 2, 3, 4, 3, seed += 7);
  check_dilated(2, 16, 16, 16, 16, 8, 8, 8, 8, seed += 7);
  for (size_t i = 0; i < cases.size(); ++i)
    for (bool with_bias : {true, false})
      if (fastconv_test::sampled(i)) check(cases[i], with_bias, seed += 7);
  // every forward regime (private blocks, output-channel panels, team blocks), and blocks of 7 tiles (the
  // weight gradient's; the team regime's rounded up to 14): many blocks, a partial last one
  size_t run = 0;
  for (int regime : {1, 2, 3})
    for (int64_t block : {0, 7}) {
      fastconv::cpu::set_winograd_forward_regime(regime);
      fastconv::cpu::set_winograd_block_tiles(block);
      for (const RefConv& c : {make(2, 17, 13, 11, 20, 1, 1, 1, 1), make(1, 16, 9, 9, 40, 0, 0, 0, 0),
                               make(3, 33, 30, 17, 16, 0, 2, 1, 1), grouped,
                               make(2, 17, 13, 11, 20, 2, 2, 2, 2, RefPad::Zeros, 5)})
        if (fastconv_test::sampled(run++)) check(c, block == 0, seed += 7);
    }
  fastconv::cpu::set_winograd_forward_regime(0);
  fastconv::cpu::set_winograd_block_tiles(0);
  fastconv::cpu::set_winograd_allowed(false);
  FC_CHECK(!fastconv::cpu::use_winograd_forward(fastconv_test::to_params(cases[0], Layout::NHWC, 1), 4),
           "allow_winograd off: no Winograd path");
  fastconv::cpu::set_winograd_allowed(true);
  std::printf("test_winograd: %zu shapes, worst max-norm relative error %.3g\n", cases.size(), worst);
  return fastconv_test::report("test_winograd");
}
