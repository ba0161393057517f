// Turns the ATen arguments of the convolution ops into a validated ConvParams (shared by CPU and CUDA).
// The plan_* functions hold every argument check of an op except the dtype rule, which differs by backend
// (CPU: float32/float64; CUDA: also float16/bfloat16) and is passed in; each backend then only allocates
// the output in plan.fmt and launches its kernel.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "../common/conv_params.h"
#include "tensor_checks.h"

namespace fastconv {

PaddingMode parse_padding_mode(c10::string_view mode, const char* op);

// input_size (N, C, H, W), weight_size (K, C/groups, R, S); padding is (top, bottom, left, right).
// output_hw (OH, OW) < 0 means "the formula's size". Raises ValueError on an invalid combination.
ConvParams make_conv_params(at::IntArrayRef input_size, at::IntArrayRef weight_size, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                            c10::string_view padding_mode, int64_t out_h, int64_t out_w, const char* op);

// A validated call: the kernel's parameters (layout set) and the memory format of the result.
struct ConvPlan {
  ConvParams p;
  at::MemoryFormat fmt;
};

ConvPlan plan_conv2d(const at::Tensor& input, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                     at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                     c10::string_view padding_mode, DtypeCheck check_dtype);

ConvPlan plan_conv2d_backward_input(const at::Tensor& grad_output, const at::Tensor& weight,
                                    at::IntArrayRef input_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                    at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode,
                                    DtypeCheck check_dtype);

ConvPlan plan_conv2d_backward_weight(const at::Tensor& grad_output, const at::Tensor& input,
                                     at::IntArrayRef weight_size, at::IntArrayRef stride, at::IntArrayRef padding,
                                     at::IntArrayRef dilation, int64_t groups, c10::string_view padding_mode,
                                     DtypeCheck check_dtype);

// p holds N, K (channels of grad_output), OH, OW and the layout.
ConvPlan plan_conv_backward_bias(const at::Tensor& grad_output, DtypeCheck check_dtype);

// conv_transpose2d(x, w) is the input-gradient of the convolution mapping Cout -> Cin with the same weight
// (see conv_transpose_ops.cpp): p describes that convolution, so the result has shape (p.N, p.C, p.H, p.W)
// and grad_output = input has (p.N, p.K, p.OH, p.OW).
ConvPlan plan_conv_transpose2d(const at::Tensor& input, const at::Tensor& weight,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                               at::IntArrayRef padding, at::IntArrayRef output_padding, int64_t groups,
                               at::IntArrayRef dilation, DtypeCheck check_dtype);

}  // namespace fastconv
