"""Fake implementation of fastconv::conv_transpose2d (its autograd kernel: csrc/bindings/conv_autograd.cpp).

conv_transpose2d(x, w) with w of shape (Cin, Cout/groups, R, S) is conv2d_backward_input of the
convolution mapping Cout -> Cin channels with the same w (see csrc/bindings/conv_transpose_ops.cpp).
Its derivatives are therefore the other two adjoints of that convolution (roles of input/grad swap):
  dx = conv2d(gy, w)                                      cropped to x's spatial size
  dw = conv2d_backward_weight(grad_output=x, input=gy)    (x plays the convolution's output gradient)
  db = conv_backward_bias(gy)
All three are differentiable fastconv ops, so derivatives of any order exist.
"""
import torch

from ._layout import activation_format, empty_activation


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
