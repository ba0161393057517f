"""Autograd and fake implementations of the convolution ops.

The backward of each op is built from the ops themselves, so derivatives of any order exist:
  conv2d(x, w)                   -> dx = conv2d_backward_input(gy, w),  dw = conv2d_backward_weight(gy, x)
  conv2d_backward_input(gy, w)   -> dgy = conv2d(ggx, w),               dw = conv2d_backward_weight(gy, ggx)
  conv2d_backward_weight(gy, x)  -> dgy = conv2d(x, ggw),               dx = conv2d_backward_input(gy, ggw)
(backward_input is the adjoint of conv2d in x; backward_weight its adjoint in w.)
"""
import torch

from ._autograd import register_autograd
from ._layout import activation_format, empty_activation

_ops = torch.ops.fastconv


def conv_out_size(size, pad_lo, pad_hi, k, stride, dil):
    return (size + pad_lo + pad_hi - dil * (k - 1) - 1) // stride + 1


def _crop_to(t, like):
    """conv2d gives the formula's output size; a grad_output may be smaller (transposed conv's
    output_padding >= stride): keep the leading rows/columns that exist."""
    if t.shape[2] == like.shape[2] and t.shape[3] == like.shape[3]:
        return t
    return t[:, :, : like.shape[2], : like.shape[3]]


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


# ---- autograd ----

def _save_conv_args(ctx, stride, padding, dilation, groups, padding_mode):
    ctx.conv_args = (list(stride), list(padding), list(dilation), groups, padding_mode)


def _conv2d_setup(ctx, inputs, output):
    input, weight, bias, stride, padding, dilation, groups, padding_mode = inputs
    ctx.save_for_backward(input, weight)
    ctx.has_bias = bias is not None
    _save_conv_args(ctx, stride, padding, dilation, groups, padding_mode)


def _conv2d_backward(ctx, grad):
    input, weight = ctx.saved_tensors
    gi = gw = gb = None
    if ctx.needs_input_grad[0]:
        gi = _ops.conv2d_backward_input(grad, weight, list(input.shape), *ctx.conv_args)
    if ctx.needs_input_grad[1]:
        gw = _ops.conv2d_backward_weight(grad, input, list(weight.shape), *ctx.conv_args)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        gb = _ops.conv_backward_bias(grad)
    return gi, gw, gb, None, None, None, None, None


def _backward_input_setup(ctx, inputs, output):
    grad_output, weight, input_size, stride, padding, dilation, groups, padding_mode = inputs
    ctx.save_for_backward(grad_output, weight)
    _save_conv_args(ctx, stride, padding, dilation, groups, padding_mode)


def _backward_input_backward(ctx, ggi):
    grad_output, weight = ctx.saved_tensors
    ggo = gw = None
    if ctx.needs_input_grad[0]:
        ggo = _crop_to(_ops.conv2d(ggi, weight, None, *ctx.conv_args), grad_output)
    if ctx.needs_input_grad[1]:
        gw = _ops.conv2d_backward_weight(grad_output, ggi, list(weight.shape), *ctx.conv_args)
    return ggo, gw, None, None, None, None, None, None


def _backward_weight_setup(ctx, inputs, output):
    grad_output, input, weight_size, stride, padding, dilation, groups, padding_mode = inputs
    ctx.save_for_backward(grad_output, input)
    _save_conv_args(ctx, stride, padding, dilation, groups, padding_mode)


def _backward_weight_backward(ctx, ggw):
    grad_output, input = ctx.saved_tensors
    ggo = gi = None
    if ctx.needs_input_grad[0]:
        ggo = _crop_to(_ops.conv2d(input, ggw, None, *ctx.conv_args), grad_output)
    if ctx.needs_input_grad[1]:
        gi = _ops.conv2d_backward_input(grad_output, ggw, list(input.shape), *ctx.conv_args)
    return ggo, gi, None, None, None, None, None, None


def _backward_bias_setup(ctx, inputs, output):
    (grad_output,) = inputs
    ctx.grad_output_shape = grad_output.shape


def _backward_bias_backward(ctx, ggb):
    n, k, oh, ow = ctx.grad_output_shape
    return ggb.reshape(1, k, 1, 1).expand(n, k, oh, ow)


register_autograd("fastconv::conv2d", _conv2d_backward, setup_context=_conv2d_setup)
register_autograd(
    "fastconv::conv2d_backward_input", _backward_input_backward, setup_context=_backward_input_setup)
register_autograd(
    "fastconv::conv2d_backward_weight", _backward_weight_backward, setup_context=_backward_weight_setup)
register_autograd(
    "fastconv::conv_backward_bias", _backward_bias_backward, setup_context=_backward_bias_setup)
