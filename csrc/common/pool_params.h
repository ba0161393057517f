// Shape and parameter description of one 2-d pooling (1-d is H == 1), output-size arithmetic (incl.
// ceil_mode) and validation. Torch-free: shared by the CPU kernels, the CUDA kernels and the bindings.
#pragma once

#include <cstdint>
#include <string>

#include "conv_params.h"  // Layout
#include "op_error.h"

namespace fastconv {

struct PoolParams {
  int64_t N = 0, C = 0;
  int64_t H = 0, W = 0;    // the un-pooled side: pooling input, max_pool backward / unpool output
  int64_t OH = 0, OW = 0;  // the pooled side: pooling output, unpool input
  int64_t kh = 1, kw = 1;
  int64_t sh = 1, sw = 1;
  int64_t ph = 0, pw = 0;
  int64_t dh = 1, dw = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;   // avg pool
  int64_t divisor_override = 0;    // avg pool: 0 = none
  Layout layout = Layout::NCHW;
  int num_threads = 1;
};

// Index a max pooling emits for a window with no tap inside the input (possible only with dilation: every
// tap falls in the padding or past the end). Its value is -inf, as torch's; torch's index there is
// begin_h * W + begin_w, which points outside the plane or at a pixel of another row, so its backward
// sends the gradient to an element that did not take part. fastconv's max-pool backward and gather skip
// this index (the output does not depend on the input); max_unpool rejects it like any negative index.
constexpr int64_t kEmptyWindowIndex = -1;

// torch's pooling_output_shape: floor (or ceil) of (in + 2 pad - dil (k - 1) - 1) / stride + 1, and in
// ceil mode the last window must start inside the input or the left padding. May return <= 0.
inline int64_t pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  const int64_t num = in + 2 * pad - dil * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  // num / stride rounded toward -infinity (num may be negative)
  int64_t q = num / stride;
  if ((num % stride != 0) && ((num < 0) != (stride < 0))) --q;
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

inline void set_pool_output_size(PoolParams& p) {
  p.OH = pool_out_size(p.H, p.kh, p.ph, p.sh, p.dh, p.ceil_mode);
  p.OW = pool_out_size(p.W, p.kw, p.pw, p.sw, p.dw, p.ceil_mode);
}

// Checks kernel/stride/padding/dilation alone: positive (padding non-negative) and below 2^31, torch's own
// limit for its 2-d pools (it converts them to int). The bound keeps every product of window arithmetic
// (dil * (k - 1), o * stride, kh * kw divisors) far inside int64: call this before set_pool_output_size.
inline std::string validate_pool_window(const PoolParams& p, const char* op) {
  if (p.kh <= 0 || p.kw <= 0) {
    return op_error(op, "kernel_size must be positive, got (", p.kh, ", ", p.kw, ")");
  }
  if (p.sh <= 0 || p.sw <= 0) {
    return op_error(op, "stride must be positive, got (", p.sh, ", ", p.sw, ")");
  }
  if (p.dh <= 0 || p.dw <= 0) {
    return op_error(op, "dilation must be positive, got (", p.dh, ", ", p.dw, ")");
  }
  if (p.ph < 0 || p.pw < 0) {
    return op_error(op, "padding must be non-negative, got (", p.ph, ", ", p.pw, ")");
  }
  constexpr int64_t kMax = (int64_t(1) << 31) - 1;
  const struct { const char* name; int64_t a, b; } args[] = {
      {"kernel_size", p.kh, p.kw}, {"stride", p.sh, p.sw}, {"padding", p.ph, p.pw}, {"dilation", p.dh, p.dw}};
  for (const auto& a : args) {
    if (a.a > kMax || a.b > kMax) {
      return op_error(op, a.name, " must be smaller than 2^31, got (", a.a, ", ", a.b, ")");
    }
  }
  return std::string();
}

// Sets p.OH, p.OW when the window arguments are valid (else leaves them: validate_pool reports why).
inline void set_pool_output_size_checked(PoolParams& p, const char* op) {
  if (validate_pool_window(p, op).empty()) set_pool_output_size(p);
}

// Checks the window arguments and the input size of a pooling whose output size is p.OH, p.OW
// (set_pool_output_size_checked first). Returns "" when valid, else a message naming the argument.
// is_max: max pooling also checks padding against the dilated ("effective") kernel, like torch.
inline std::string validate_pool(const PoolParams& p, const char* op, bool is_max) {
  if (std::string err = validate_pool_window(p, op); !err.empty()) return err;
  if (is_max && (p.ph > ((p.kh - 1) * p.dh + 1) / 2 || p.pw > ((p.kw - 1) * p.dw + 1) / 2)) {
    return op_error(op, "padding: pad should be at most half of effective kernel size, got padding=(", p.ph, ", ",
        p.pw, "), kernel_size=(", p.kh, ", ", p.kw, ") and dilation=(", p.dh, ", ", p.dw, ")");
  }
  if (p.ph > p.kh / 2 || p.pw > p.kw / 2) {
    return op_error(op, "padding: pad should be smaller than or equal to half of kernel size, got padding=(", p.ph,
        ", ", p.pw, ") and kernel_size=(", p.kh, ", ", p.kw, ")");
  }
  if (p.C <= 0 || p.H <= 0 || p.W <= 0) {
    return op_error(op, "input must have non-zero channels and spatial size, got (C, H, W) = (", p.C, ", ", p.H, ", ",
        p.W, ")");
  }
  if (p.OH < 1 || p.OW < 1) {
    return op_error(op, "Given input size (", p.H, ", ", p.W, "), the calculated output size (", p.OH, ", ", p.OW,
        ") is too small");
  }
  return std::string();
}

}  // namespace fastconv
