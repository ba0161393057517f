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

from . import _checks as check
from ._checks import transposed_out_size  # noqa: F401  (fastconv.nn imports it from here)
from ._layout import activation_format, empty_activation


@torch.library.register_fake("fastconv::conv_transpose2d")
def _conv_transpose2d_fake(input, weight, bias, stride, padding, output_padding, groups, dilation):
    # the checks of conv_args.cpp (check_transpose_args, plan_conv_transpose2d), in its order
    op = "conv_transpose2d"
    check.activation(input, op, "input")
    check.activation(weight, op, "weight")
    check.same_dtype_device(input, "input", weight, "weight", op)
    args = (("stride", stride), ("padding", padding), ("output_padding", output_padding), ("dilation", dilation))
    for name, v in args:
        check.list_size(v, 2, op, name)
    for name, v in args:
        check.value(max(v) < check.MAX_WINDOW_ARG, op, f"{name} must be smaller than 2^31, got {list(v)}")
    for i in range(2):
        check.value(stride[i] > 0, op, f"stride must be positive, got {list(stride)}")
        check.value(dilation[i] > 0, op, f"dilation must be positive, got {list(dilation)}")
        check.value(padding[i] >= 0, op, f"padding must be non-negative, got {list(padding)}")
        check.value(output_padding[i] >= 0, op, f"output_padding must be non-negative, got {list(output_padding)}")
        check.value(output_padding[i] < stride[i] or output_padding[i] < dilation[i], op, "output_padding must be "
                    f"smaller than either stride or dilation, got output_padding {list(output_padding)}, stride "
                    f"{list(stride)}, dilation {list(dilation)}")
    check.value(groups > 0, op, f"groups must be positive, got {groups}")
    n, c, h, w = input.shape
    cin, cout_g, r, s = weight.shape
    check.value(c == cin, op, f"input has {c} channels but weight of shape {list(weight.shape)} expects "
                f"in_channels={cin} (transposed convolution weight is (in_channels, out_channels/groups, kH, kW))")
    check.value(cin % groups == 0, op, f"groups={groups} does not divide in_channels={cin}")
    for v in (cin, cout_g):
        check.value(v > 0, op, "weight must have at least one input and one output channel, got weight of shape "
                    f"{list(weight.shape)}")
    for v in (r, s):
        check.value(v > 0, op, f"kernel_size must be positive, got weight of shape {list(weight.shape)}")
    for v in (h, w):
        check.value(v > 0, op, f"input spatial size must be positive, got input of shape {list(input.shape)}")
    check.conv_bias(input, bias, cout_g * groups, op)
    oh = transposed_out_size(h, stride[0], padding[0], r, dilation[0], output_padding[0])
    ow = transposed_out_size(w, stride[1], padding[1], s, dilation[1], output_padding[1])
    for v in (oh, ow):
        check.value(v < check.MAX_SIZE, op, "the output size must be smaller than 2^48 along each axis")
        check.value(v > 0, op, f"output size ({oh}, {ow}) is not positive for input spatial size ({h}, {w}), "
                    f"padding {list(padding)} and kernel ({r}, {s})")
    # the convolution whose input gradient this is (Cout -> Cin channels, output (H, W)): its own checks
    pad4 = (padding[0], padding[0], padding[1], padding[1])
    check.conv_output_hw((n, cout_g * groups, oh, ow), weight.shape, stride, pad4, dilation, groups, "zeros", op,
                         out_hw=(h, w))
    return empty_activation((n, cout_g * groups, oh, ow), input, activation_format(input, weight))
