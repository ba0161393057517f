#include "pool_window_args.h"

#include "tensor_checks.h"

namespace fastconv {

PoolParams pool_window_params(at::IntArrayRef kernel, at::IntArrayRef stride, at::IntArrayRef padding,
                              at::IntArrayRef dilation, const char* op) {
  check_list_size(kernel, 2, op, "kernel_size");
  check_list_size(stride, 2, op, "stride");
  check_list_size(padding, 2, op, "padding");
  check_list_size(dilation, 2, op, "dilation");
  PoolParams p;
  p.kh = kernel[0], p.kw = kernel[1];
  p.sh = stride[0], p.sw = stride[1];
  p.ph = padding[0], p.pw = padding[1];
  p.dh = dilation[0], p.dw = dilation[1];
  const std::string err = validate_pool_window(p, op);
  TORCH_CHECK_VALUE(err.empty(), err);
  return p;
}

namespace {

// pool_out_size in 128 bits: input_size may be anything up to 2^63 - 1 (the window's arguments are below 2^31).
__int128 pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  using Wide = __int128;
  const Wide num = Wide(in) + 2 * Wide(pad) - Wide(dil) * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  Wide out = (num >= 0 ? num / stride : -((-num + stride - 1) / stride)) + 1;  // floor division
  if (ceil_mode && (out - 1) * stride >= Wide(in) + pad) --out;
  return out;
}

}  // namespace

void check_window_grad_output(const PoolParams& window, const at::Tensor& grad_output, at::IntArrayRef input_size,
                              const char* op) {
  check_dim(grad_output, 4, op, "grad_output");
  check_list_size(input_size, 2, op, "input_size");
  TORCH_CHECK_VALUE(input_size[0] >= 0 && input_size[1] >= 0, "fastconv.", op,
                    ": input_size must be non-negative, got ", input_size);
  const auto& w = window;
  __int128 oh[2], ow[2];
  for (const bool ceil : {false, true}) {
    oh[ceil] = pooled_size(input_size[0], w.kh, w.ph, w.sh, w.dh, ceil);
    ow[ceil] = pooled_size(input_size[1], w.kw, w.pw, w.sw, w.dw, ceil);
    if (grad_output.size(2) == oh[ceil] && grad_output.size(3) == ow[ceil]) return;
  }
  TORCH_CHECK_VALUE(false, "fastconv.", op, ": grad_output of shape ", grad_output.sizes(),
                    " does not match the output shape (", grad_output.size(0), ", ", grad_output.size(1), ", ",
                    int64_t(oh[0]), ", ", int64_t(ow[0]), ") (or its ceil_mode one) of a max pooling of input_size ",
                    input_size, " with kernel_size (", w.kh, ", ", w.kw, "), stride (", w.sh, ", ", w.sw,
                    "), padding (", w.ph, ", ", w.pw, ") and dilation (", w.dh, ", ", w.dw, ")");
}

}  // namespace fastconv
