// Checks the torch-free parameter helpers of csrc/common: validate_conv accepts valid convolutions and
// rejects each invalid one with a message naming the argument; conv_out_size follows torch's formula;
// remap_index agrees with the test reference's independent padding map in the range validate_conv allows.
#include <string>

#include "common/conv_params.h"
#include "common/conv_validate.h"
#include "reference_conv.h"
#include "test_util.h"

using fastconv::ConvParams;
using fastconv::PaddingMode;

namespace {

ConvParams valid_params() {
  ConvParams p;
  p.N = 2; p.C = 4; p.H = 6; p.W = 7; p.K = 6; p.R = 3; p.S = 3;
  p.pad_t = p.pad_b = p.pad_l = p.pad_r = 1;
  p.groups = 2;
  p.OH = 6; p.OW = 7;
  return p;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void expect_error(const ConvParams& p, const std::string& part, const char* what) {
  const std::string err = fastconv::validate_conv(p, "conv2d");
  FC_CHECK(contains(err, "fastconv.conv2d: ") && contains(err, part), "%s: expected an error containing '%s', got '%s'",
           what, part.c_str(), err.c_str());
}

}  // namespace

int main() {
  FC_CHECK(fastconv::validate_conv(valid_params(), "conv2d").empty(), "valid parameters rejected: %s",
           fastconv::validate_conv(valid_params(), "conv2d").c_str());
  {
    ConvParams p = valid_params();
    p.OH = 5;  // a smaller grad_output (backward) is allowed
    FC_CHECK(fastconv::validate_conv(p, "conv2d").empty(), "smaller output rejected");
  }
  ConvParams p;
  p = valid_params(); p.stride_w = 0;          expect_error(p, "stride must be positive, got (1, 0)", "stride 0");
  p = valid_params(); p.stride_h = -2;         expect_error(p, "stride must be positive", "negative stride");
  p = valid_params(); p.dil_h = 0;             expect_error(p, "dilation must be positive, got (0, 1)", "dilation 0");
  p = valid_params(); p.pad_r = -1;            expect_error(p, "padding must be non-negative, got (1, 1, 1, -1)", "pad");
  p = valid_params(); p.groups = 0;            expect_error(p, "groups must be positive, got 0", "groups 0");
  p = valid_params(); p.groups = 3;            expect_error(p, "groups=3 does not divide in_channels=4", "groups C");
  p = valid_params(); p.K = 5; p.groups = 2;   expect_error(p, "does not divide out_channels=5", "groups K");
  p = valid_params(); p.R = 0;                 expect_error(p, "kernel_size must be positive, got (0, 3)", "kernel 0");
  p = valid_params(); p.H = 1; p.pad_t = p.pad_b = 0; p.OH = 0;
  expect_error(p, "kernel size (dilated) (3, 3) is larger than the padded input (1, 9)", "kernel too big");
  p = valid_params(); p.mode = PaddingMode::Reflect; p.pad_l = 7;
  expect_error(p, "padding_mode='reflect' needs padding smaller than the input size", "reflect");
  p = valid_params(); p.mode = PaddingMode::Circular; p.pad_t = 7;
  expect_error(p, "padding_mode='circular' needs padding no larger than the input size", "circular");
  p = valid_params(); p.mode = PaddingMode::Circular; p.pad_t = p.pad_b = 6; p.OH = 16;
  FC_CHECK(fastconv::validate_conv(p, "conv2d").empty(), "circular padding equal to the input size rejected");
  p = valid_params(); p.mode = PaddingMode::Replicate; p.W = 0; p.OW = 0;
  expect_error(p, "padding_mode='replicate' needs a non-empty input", "replicate empty");
  p = valid_params(); p.OH = 7;                expect_error(p, "grad_output spatial size (7, 7)", "output too big");
  p = valid_params(); p.pad_t = int64_t(1) << 62;
  expect_error(p, "padding must be smaller than 2^62", "huge padding (overflow)");
  p = valid_params(); p.dil_w = int64_t(1) << 62;
  expect_error(p, "dilation must be smaller than 2^62", "huge dilation (overflow)");
  p = valid_params(); p.dil_w = (int64_t(1) << 62) - 1;  // the dilated extent overflows int64: still rejected
  expect_error(p, "kernel size (dilated) (3, 9223372036854775807) is larger than the padded input", "dilated extent");
  p = valid_params(); p.pad_t = p.pad_b = (int64_t(1) << 61) + 1;
  expect_error(p, "the padded input", "padded extent past 2^62");
  // torch accepts these (a 1x1 kernel ignores dilation; a stride past the input gives one output)
  p = valid_params(); p.R = p.S = 1; p.dil_h = p.dil_w = int64_t(1) << 40; p.pad_t = p.pad_b = p.pad_l = p.pad_r = 0;
  p.OH = 6; p.OW = 7;
  FC_CHECK(fastconv::validate_conv(p, "conv2d").empty(), "1x1 with dilation 2^40 rejected");
  p = valid_params(); p.stride_h = p.stride_w = int64_t(1) << 40; p.OH = p.OW = 1;
  FC_CHECK(fastconv::validate_conv(p, "conv2d").empty(), "stride 2^40 rejected");
  p = valid_params(); p.W = int64_t(1) << 32; p.OW = p.W;
  FC_CHECK(fastconv::validate_conv(p, "conv2d").empty(), "input width 2^32 rejected");
  p = valid_params(); p.W = int64_t(1) << 48;  expect_error(p, "input width must be smaller than 2^48", "width 2^48");
  p = valid_params(); p.H = -1;                expect_error(p, "sizes must be non-negative", "negative size");

  // conv_out_size: torch's floor((in + pads - dil*(k-1) - 1) / stride) + 1, and 0 when the kernel does not fit.
  FC_CHECK(fastconv::conv_out_size(7, 1, 1, 3, 1, 1) == 7, "same 3x3");
  FC_CHECK(fastconv::conv_out_size(7, 1, 1, 3, 2, 1) == 4, "stride 2");
  FC_CHECK(fastconv::conv_out_size(10, 0, 0, 3, 3, 2) == 2, "dilation 2 stride 3");
  FC_CHECK(fastconv::conv_out_size(8, 0, 1, 2, 1, 1) == 8, "'same' even kernel");
  FC_CHECK(fastconv::conv_out_size(2, 0, 0, 3, 1, 1) == 0, "kernel larger than input");

  // remap_index vs the reference's independent padding map, over the overhang validate_conv allows.
  for (int64_t n = 1; n <= 6; ++n)
    for (auto mode : {PaddingMode::Zeros, PaddingMode::Reflect, PaddingMode::Replicate, PaddingMode::Circular}) {
      const int64_t max_pad = mode == PaddingMode::Reflect ? n - 1 : n;
      const auto ref_mode = static_cast<fastconv_test::RefPad>(static_cast<int>(mode));
      for (int64_t q = -max_pad; q < n + max_pad; ++q) {
        const int64_t got = fastconv::remap_index(q, n, mode), want = fastconv_test::ref_source(q, n, ref_mode);
        FC_CHECK(got == want, "remap_index(%lld, %lld, mode %d) = %lld, reference %lld", (long long)q, (long long)n,
                 static_cast<int>(mode), (long long)got, (long long)want);
      }
    }
  return fastconv_test::report("test_conv_validate");
}
