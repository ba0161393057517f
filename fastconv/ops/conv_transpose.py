"""Autograd and fake implementations of fastconv::conv_transpose2d.

conv_transpose2d(x, w) with w of shape (Cin, Cout/groups, R, S) is conv2d_backward_input of the
convolution mapping Cout -> Cin channels with the same w (see csrc/bindings/conv_transpose_ops.cpp).
Its derivatives are therefore the other two adjoints of that convolution (roles of input/grad swap):
  dx = conv2d(gy, w)                                      cropped to x's spatial size
  dw = conv2d_backward_weight(grad_output=x, input=gy)    (x plays the convolution's output gradient)
  db = conv_backward_bias(gy)
All three are differentiable fastconv ops, so derivatives of any order exist.
"""
import torch

from ._autograd import register_autograd
from ._layout import activation_format, empty_activation
from .conv import _crop_to

_ops = torch.ops.fastconv


def transposed_out_size(size, stride, pad, k, dil, out_pad):
    """torch's output size of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * pad + dil * (k - 1) + out_pad + 1


@torch.library.register_fake("fastconv::conv_transpose2d")
def _conv_transpose2d_fake(input, weight, bias, stride, padding, output_padding, groups, dilation):
    n, _, h, w = input.shape
    _, cout_g, r, s = weight.shape
    oh = transposed_out_size(h, stride[0], padding[0], r, dilation[0], output_padding[0])
    ow = transposed_out_size(w, stride[1], padding[1], s, dilation[1], output_padding[1])
    return empty_activation((n, cout_g * groups, oh, ow), input, activation_format(input, weight))


def _setup(ctx, inputs, output):
    input, weight, bias, stride, padding, output_padding, groups, dilation = inputs
    ctx.save_for_backward(input, weight)
    ctx.has_bias = bias is not None
    # Arguments of the underlying convolution (Cout -> Cin): symmetric padding, zeros mode.
    pad4 = [padding[0], padding[0], padding[1], padding[1]]
    ctx.conv_args = (list(stride), pad4, list(dilation), groups, "zeros")


def _backward(ctx, grad):
    input, weight = ctx.saved_tensors
    gi = gw = gb = None
    if ctx.needs_input_grad[0]:
        gi = _crop_to(_ops.conv2d(grad, weight, None, *ctx.conv_args), input)
    if ctx.needs_input_grad[1]:
        gw = _ops.conv2d_backward_weight(input, grad, list(weight.shape), *ctx.conv_args)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        gb = _ops.conv_backward_bias(grad)
    return gi, gw, gb, None, None, None, None, None


register_autograd("fastconv::conv_transpose2d", _backward, setup_context=_setup)
