"""Fake implementations of the convolution ops (shapes and strides for torch.compile and opcheck).

Their autograd kernels are C++ (csrc/bindings/conv_autograd.cpp). The backward of each op is built from the
ops themselves, so derivatives of any order exist:
  conv2d(x, w)                   -> dx = conv2d_backward_input(gy, w),  dw = conv2d_backward_weight(gy, x)
  conv2d_backward_input(gy, w)   -> dgy = conv2d(ggx, w),               dw = conv2d_backward_weight(gy, ggx)
  conv2d_backward_weight(gy, x)  -> dgy = conv2d(x, ggw),               dx = conv2d_backward_input(gy, ggw)
(backward_input is the adjoint of conv2d in x; backward_weight its adjoint in w.)
"""
import torch

from ._layout import activation_format, empty_activation


def conv_out_size(size, pad_lo, pad_hi, k, stride, dil):
    return (size + pad_lo + pad_hi - dil * (k - 1) - 1) // stride + 1


# ---- fake (meta) implementations: shapes and strides only, used by torch.compile and opcheck ----

@torch.library.register_fake("fastconv::conv2d")
def _conv2d_fake(input, weight, bias, stride, padding, dilation, groups, padding_mode):
    n, _, h, w = input.shape
    k, _, r, s = weight.shape
    oh = conv_out_size(h, padding[0], padding[1], r, stride[0], dilation[0])
    ow = conv_out_size(w, padding[2], padding[3], s, stride[1], dilation[1])
    return empty_activation((n, k, oh, ow), input, activation_format(input, weight))


@torch.library.register_fake("fastconv::conv2d_backward_input")
def _conv2d_backward_input_fake(grad_output, weight, input_size, stride, padding, dilation, groups, padding_mode):
    return empty_activation(tuple(input_size), grad_output, activation_format(grad_output, weight))


@torch.library.register_fake("fastconv::conv2d_backward_weight")
def _conv2d_backward_weight_fake(grad_output, input, weight_size, stride, padding, dilation, groups, padding_mode):
    return input.new_empty(tuple(weight_size))


@torch.library.register_fake("fastconv::conv_backward_bias")
def _conv_backward_bias_fake(grad_output):
    return grad_output.new_empty((grad_output.shape[1],))
