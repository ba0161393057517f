"""Fake implementations of the convolution ops (shapes and strides for torch.compile and opcheck).

Their autograd kernels are C++ (csrc/bindings/conv_autograd.cpp). The backward of each op is built from the
ops themselves, so derivatives of any order exist:
  conv2d(x, w)                   -> dx = conv2d_backward_input(gy, w),  dw = conv2d_backward_weight(gy, x)
  conv2d_backward_input(gy, w)   -> dgy = conv2d(ggx, w),               dw = conv2d_backward_weight(gy, ggx)
  conv2d_backward_weight(gy, x)  -> dgy = conv2d(x, ggw),               dx = conv2d_backward_input(gy, ggw)
(backward_input is the adjoint of conv2d in x; backward_weight its adjoint in w.)
"""
import torch

from . import _checks as check
from ._checks import conv_out_size  # noqa: F401  (fastconv.nn imports it from here)
from ._layout import activation_format, empty_activation


# ---- fake (meta) implementations: the C++ ops' checks (conv_args.cpp), then shapes and strides; used by
# torch.compile, opcheck and meta tensors ----

@torch.library.register_fake("fastconv::conv2d")
def _conv2d_fake(input, weight, bias, stride, padding, dilation, groups, padding_mode):
    op = "conv2d"
    check.activation(input, op, "input")
    check.activation(weight, op, "weight")
    check.value(weight.shape[0] > 0, op, f"weight must have at least one output channel, got weight of shape "
                f"{list(weight.shape)}")
    check.same_dtype_device(input, "input", weight, "weight", op)
    check.conv_bias(input, bias, weight.shape[0], op)
    oh, ow = check.conv_output_hw(input.shape, weight.shape, stride, padding, dilation, groups, padding_mode, op)
    return empty_activation((input.shape[0], weight.shape[0], oh, ow), input, activation_format(input, weight))


def _backward_checks(grad_output, other, other_name, input_size, weight_size, stride, padding, dilation, groups,
                     padding_mode, op):
    """The backward ops: grad_output must have exactly conv2d's output shape for these arguments."""
    check.activation(grad_output, op, "grad_output")
    check.activation(other, op, other_name)
    check.same_dtype_device(grad_output, "grad_output", other, other_name, op)
    oh, ow = check.conv_output_hw(input_size, weight_size, stride, padding, dilation, groups, padding_mode, op)
    check.grad_output_shape(grad_output, (input_size[0], weight_size[0], oh, ow), op, "convolution")


@torch.library.register_fake("fastconv::conv2d_backward_input")
def _conv2d_backward_input_fake(grad_output, weight, input_size, stride, padding, dilation, groups, padding_mode):
    _backward_checks(grad_output, weight, "weight", input_size, weight.shape, stride, padding, dilation, groups,
                     padding_mode, "conv2d_backward_input")
    return empty_activation(tuple(input_size), grad_output, activation_format(grad_output, weight))


@torch.library.register_fake("fastconv::conv2d_backward_weight")
def _conv2d_backward_weight_fake(grad_output, input, weight_size, stride, padding, dilation, groups, padding_mode):
    _backward_checks(grad_output, input, "input", input.shape, weight_size, stride, padding, dilation, groups,
                     padding_mode, "conv2d_backward_weight")
    return input.new_empty(tuple(weight_size))


@torch.library.register_fake("fastconv::conv_backward_bias")
def _conv_backward_bias_fake(grad_output):
    check.activation(grad_output, "conv_backward_bias", "grad_output")
    return grad_output.new_empty((grad_output.shape[1],))
