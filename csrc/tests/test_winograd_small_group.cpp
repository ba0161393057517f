// Winograd F(4x4, 3x3) for groups of 8, 16 or 32 channels in and out (csrc/cpu/winograd/winograd_small_group.cpp):
// forward, input gradient and (16 per group) weight gradient against the naive reference (reference_conv.h), called directly and through the
// dispatcher, NCHW and channels_last, 1 and 2 threads, with and without bias: output sizes 1-7 and not multiples of
// the 4x4 tile, padding 0-3 and asymmetric (the input gradient takes it for padding <= 2 only), several bands and GEMM
// blocks of tiles, a channels_last weight. Outputs are pre-filled with NaN. allow_winograd off: the exact kernels.
// Exit code non-zero on a mismatch.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

#include "conv_test_params.h"
#include "cpu/conv/conv_kernels.h"
#include "cpu/winograd/winograd.h"
#include "reference_conv.h"
#include "test_util.h"

using fastconv::ConvParams;
using fastconv::Layout;
using fastconv_test::RefConv;

namespace {

constexpr double kBound = 2e-5;  // max-norm relative error (the Winograd tests' bound)
double worst = 0;

RefConv make(int64_t N, int64_t groups, int64_t H, int64_t W, int64_t pt, int64_t pb, int64_t pl, int64_t pr,
             int64_t cg = 16) {
  RefConv c{N, cg * groups, H, W, cg * groups, 3, 3};
  c.groups = groups;
  c.pt = pt, c.pb = pb, c.pl = pl, c.pr = pr;
  return c;
}

// err of got (in `layout`, shape n x ch x h x w) against the NCHW reference
double error(const std::vector<float>& got, Layout layout, int64_t n, int64_t ch, int64_t h, int64_t w,
             const std::vector<float>& ref) {
  const double e = fastconv_test::max_rel_error(
      layout == Layout::NHWC ? fastconv_test::to_nchw(got, n, ch, h, w) : got, ref);
  worst = std::max(worst, e);
  return e;
}

void check(const RefConv& c, bool with_bias, uint64_t seed) {
  const int64_t OH = c.oh(), OW = c.ow(), Cg = c.C / c.groups;
  const auto x = fastconv_test::random_vector<float>(c.N * c.C * c.H * c.W, seed);
  const auto w = fastconv_test::random_vector<float>(c.K * Cg * 9, seed + 1);
  const auto b = fastconv_test::random_vector<float>(c.K, seed + 2);
  const auto gy = fastconv_test::random_vector<float>(c.N * c.K * OH * OW, seed + 3);
  const float* bias = with_bias ? b.data() : nullptr;
  const auto y_ref = fastconv_test::ref_forward(c, x, w, bias);
  const auto gx_ref = fastconv_test::ref_backward_input(c, gy, w);
  const auto gw_ref = fastconv_test::ref_backward_weight(c, x, gy);
  const auto x_nhwc = fastconv_test::to_nhwc(x, c.N, c.C, c.H, c.W);
  const auto gy_nhwc = fastconv_test::to_nhwc(gy, c.N, c.K, OH, OW);
  const auto w_rsc = fastconv_test::to_nhwc(w, c.K, Cg, 3, 3);
  const bool input_winograd = std::max({c.pt, c.pb, c.pl, c.pr}) <= 2, weight_winograd = Cg == 16;
  char what[160];
  std::snprintf(what, sizeof what, "N=%lld groups=%lld of %lld H=%lld W=%lld pad=(%lld,%lld,%lld,%lld) bias=%d",
                (long long)c.N, (long long)c.groups, (long long)Cg, (long long)c.H, (long long)c.W, (long long)c.pt, (long long)c.pb,
                (long long)c.pl, (long long)c.pr, int(with_bias));
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  for (Layout layout : {Layout::NCHW, Layout::NHWC})
    for (int threads : {1, 2}) {
      const bool nhwc = layout == Layout::NHWC;
      const float* xl = nhwc ? x_nhwc.data() : x.data();
      const float* gyl = nhwc ? gy_nhwc.data() : gy.data();
      const ConvParams p = fastconv_test::to_params(c, layout, threads);
      FC_CHECK(fastconv::cpu::small_group_winograd_applies(p, 4), "forward applies: %s", what);
      FC_CHECK(fastconv::cpu::small_group_winograd_backward_input_applies(p, 4) == input_winograd,
               "input gradient applies iff padding <= 2: %s", what);
      FC_CHECK(fastconv::cpu::small_group_winograd_backward_weight_applies(p, 4) == weight_winograd,
               "weight gradient applies iff 16 channels per group: %s", what);
      std::vector<float> y(y_ref.size(), nan), y2(y_ref.size(), nan);
      fastconv::cpu::small_group_winograd_forward(p, xl, w.data(), bias, y.data());
      fastconv::cpu::conv_forward<float>(p, xl, w.data(), bias, y2.data());
      const double e = error(y, layout, c.N, c.K, OH, OW, y_ref), e2 = error(y2, layout, c.N, c.K, OH, OW, y_ref);
      FC_CHECK(e <= kBound && e2 <= kBound, "forward rel err %.3g / dispatched %.3g: %s layout=%d threads=%d", e, e2,
               what, int(layout), threads);
      if (input_winograd) {
        std::vector<float> gx(gx_ref.size(), nan);
        fastconv::cpu::small_group_winograd_backward_input(p, gyl, w.data(), gx.data());
        const double ei = error(gx, layout, c.N, c.C, c.H, c.W, gx_ref);
        FC_CHECK(ei <= kBound, "input gradient rel err %.3g: %s layout=%d threads=%d", ei, what, int(layout), threads);
      }
      std::vector<float> gx2(gx_ref.size(), nan);
      fastconv::cpu::conv_backward_input<float>(p, gyl, w.data(), gx2.data());
      const double ei2 = error(gx2, layout, c.N, c.C, c.H, c.W, gx_ref);
      FC_CHECK(ei2 <= kBound, "input gradient (dispatched) rel err %.3g: %s layout=%d threads=%d", ei2, what,
               int(layout), threads);
      std::vector<float> gw(gw_ref.size(), nan), gw2(gw_ref.size(), nan);
      if (weight_winograd) fastconv::cpu::small_group_winograd_backward_weight(p, xl, gyl, gw.data());
      fastconv::cpu::conv_backward_weight<float>(p, xl, gyl, gw2.data());
      const double ew = weight_winograd ? fastconv_test::max_rel_error(gw, gw_ref) : 0;
      const double ew2 = fastconv_test::max_rel_error(gw2, gw_ref);
      worst = std::max({worst, ew, ew2});
      FC_CHECK(ew <= kBound && ew2 <= kBound, "weight gradient rel err %.3g / dispatched %.3g: %s layout=%d threads=%d",
               ew, ew2, what, int(layout), threads);
      if (nhwc) {  // a channels_last weight (K, 3, 3, 16) through the dispatcher
        ConvParams r = p;
        r.weight_rsc = true;
        std::vector<float> y3(y_ref.size(), nan), gx3(gx_ref.size(), nan);
        fastconv::cpu::conv_forward<float>(r, xl, w_rsc.data(), bias, y3.data());
        fastconv::cpu::conv_backward_input<float>(r, gyl, w_rsc.data(), gx3.data());
        const double e3 = error(y3, layout, c.N, c.K, OH, OW, y_ref), ei3 = error(gx3, layout, c.N, c.C, c.H, c.W, gx_ref);
        FC_CHECK(e3 <= kBound && ei3 <= kBound, "channels_last weight: forward %.3g, input gradient %.3g: %s threads=%d",
                 e3, ei3, what, threads);
      }
    }
}

}  // namespace

int main() {
  FC_CHECK(fastconv::cpu::winograd_allowed(), "the Winograd paths are allowed by default");
  std::vector<RefConv> cases;
  for (int64_t hw : {3, 4, 5, 6, 7, 9})  // output sizes 1-7 without padding
    cases.push_back(make(1, 2, hw, hw + 1, 0, 0, 0, 0));
  cases.push_back(make(2, 3, 14, 14, 1, 1, 1, 1));   // ResNeXt-like: 4x4 tiles, two of them clipped
  cases.push_back(make(1, 2, 9, 11, 2, 2, 2, 2));    // padding 2 (the input gradient's own padding 0)
  cases.push_back(make(2, 2, 7, 10, 0, 1, 2, 0));    // asymmetric padding
  cases.push_back(make(1, 2, 6, 5, 3, 3, 3, 3));     // padding 3: the input gradient stays exact
  cases.push_back(make(1, 2, 1, 1, 1, 1, 1, 1));     // a 1x1 image
  cases.push_back(make(3, 4, 30, 29, 1, 1, 1, 1));   // several bands of tile rows, GEMM blocks of 8 and a partial one
  cases.push_back(make(1, 32, 14, 14, 1, 1, 1, 1));  // ResNeXt-50's layer3: 32 groups
  // 8 channels per group: two groups per vector, interleaved lanes
  for (int64_t hw : {3, 5, 7})
    cases.push_back(make(1, 2, hw, hw + 2, 0, 0, 0, 0, 8));
  cases.push_back(make(2, 4, 14, 13, 1, 1, 1, 1, 8));
  cases.push_back(make(1, 2, 9, 11, 2, 1, 0, 2, 8));   // asymmetric padding 0-2
  cases.push_back(make(1, 6, 6, 5, 3, 3, 3, 3, 8));    // padding 3: the input gradient stays exact
  cases.push_back(make(2, 32, 28, 28, 1, 1, 1, 1, 8));  // ResNeXt-50's layer2
  // 32 channels per group: two vectors per group
  for (int64_t hw : {3, 6})
    cases.push_back(make(1, 2, hw, hw + 1, 0, 0, 0, 0, 32));
  cases.push_back(make(2, 3, 9, 11, 1, 2, 2, 0, 32));  // asymmetric padding
  cases.push_back(make(1, 2, 5, 5, 3, 3, 3, 3, 32));   // padding 3
  cases.push_back(make(2, 32, 7, 7, 1, 1, 1, 1, 32));  // ResNeXt-50's layer4
  uint64_t seed = 11;
  for (size_t i = 0; i < cases.size(); ++i)
    for (bool with_bias : {true, false})
      if (fastconv_test::sampled(2 * i + with_bias)) check(cases[i], with_bias, seed += 7);
  // the switch: off, neither the kernels' conditions nor the dispatcher take Winograd
  fastconv::cpu::set_winograd_allowed(false);
  const ConvParams p = fastconv_test::to_params(cases[6], Layout::NHWC, 1);
  FC_CHECK(!fastconv::cpu::small_group_winograd_applies(p, 4) &&
               !fastconv::cpu::small_group_winograd_backward_input_applies(p, 4),
           "allow_winograd off: no small-group Winograd");
  fastconv::cpu::set_winograd_allowed(true);
  // float64, 4, 64 or an odd number of 8 channels per group, stride 2, dilation 2: not these kernels
  for (auto edit : {+[](ConvParams& q) { q.stride_h = q.stride_w = 2; }, +[](ConvParams& q) { q.dil_h = 2; },
                    +[](ConvParams& q) { q.C = q.K = 4 * q.groups; }, +[](ConvParams& q) { q.C = q.K = 64 * q.groups; },
                    +[](ConvParams& q) { q.groups = 3, q.C = q.K = 24; }}) {
    ConvParams q = p;
    edit(q);
    FC_CHECK(!fastconv::cpu::small_group_winograd_applies(q, 4), "a shape the kernels do not take");
  }
  FC_CHECK(!fastconv::cpu::small_group_winograd_applies(p, 8), "float64 stays exact");
  std::printf("test_winograd_small_group: %zu shapes, worst max-norm relative error %.3g\n", cases.size(), worst);
  return fastconv_test::report("test_winograd_small_group");
}
