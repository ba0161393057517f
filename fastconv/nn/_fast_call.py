"""The convolution ops called directly for the common call: batched tensors of one dtype, integer arguments,
outside torch.compile's tracing. The full functional path parses and checks every argument in torch's order
(about 10 us per call in Python, a tenth of a small layer's time); the op checks the same values itself. So
anything unusual, and any call the op refuses, returns None here, and the caller runs the full path, which
raises fastconv's message for it."""
from __future__ import annotations

import torch

from ._args import restore_rank
from ._direct_calls import ops

_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


def int_pair(value):
    """value as a 2-list when it is an int or a 2-sequence of ints (bools excluded), else None."""
    if type(value) is int:
        return [value, value]
    if (type(value) is tuple or type(value) is list) and len(value) == 2 and type(value[0]) is int \
            and type(value[1]) is int:
        return [value[0], value[1]]
    return None


def int_single(value):
    """value as a 1-list when it is an int or a 1-sequence of an int, else None."""
    if type(value) is int:
        return [value]
    if (type(value) is tuple or type(value) is list) and len(value) == 1 and type(value[0]) is int:
        return [value[0]]
    return None


def usual_call(input, weight, bias, rank, groups):
    """True for the call the fast path takes: input of `rank` dimensions with a non-empty batch and channels,
    weight and bias of its dtype, plain tensors (or parameters), an int groups, and no tracing."""
    return (type(input) in _TENSOR_TYPES and type(weight) in _TENSOR_TYPES and input.dim() == rank
            and input.dtype == weight.dtype and (bias is None or (type(bias) in _TENSOR_TYPES
                                                                  and bias.dtype == input.dtype))
            and input.shape[0] != 0 and input.shape[1] != 0 and type(groups) is int
            and not torch.compiler.is_compiling())


def conv2d_op(input, weight, bias, stride, pad4, dilation, groups):
    """The conv2d op on prepared lists, or None where it refuses the call."""
    try:
        return ops().conv2d(input, weight, bias, stride, pad4, dilation, groups, "zeros")
    except Exception:  # noqa: BLE001 - the full path raises the error with fastconv's message
        return None


def fast_conv2d(input, weight, bias, stride, padding, dilation, groups):
    """F.conv2d's common call on the op, or None (then the caller runs the full path)."""
    if not usual_call(input, weight, bias, 4, groups):
        return None
    stride, padding, dilation = int_pair(stride), int_pair(padding), int_pair(dilation)
    if stride is None or padding is None or dilation is None:
        return None
    return conv2d_op(input, weight, bias, stride, [padding[0], padding[0], padding[1], padding[1]], dilation,
                     groups)


def fast_conv1d(input, weight, bias, stride, padding, dilation, groups):
    """F.conv1d's common call (and padding='causal') on the 2-d op (H == 1 views), or None."""
    if not usual_call(input, weight, bias, 3, groups) or weight.dim() != 3:
        return None
    stride, dilation = int_single(stride), int_single(dilation)
    if stride is None or dilation is None:
        return None
    if type(padding) is str and padding == "causal":
        pads = [0, 0, dilation[0] * (weight.shape[2] - 1), 0]
    else:
        padding = int_single(padding)
        if padding is None:
            return None
        pads = [0, 0, padding[0], padding[0]]
    y = conv2d_op(input.unsqueeze(2), weight.unsqueeze(2), bias, [1, stride[0]], pads, [1, dilation[0]], groups)
    return None if y is None else restore_rank(y, 1, False)


def fast_conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation):
    """F.conv_transpose2d's common call on the op, or None."""
    if not usual_call(input, weight, bias, 4, groups):
        return None
    stride, padding, output_padding, dilation = (int_pair(stride), int_pair(padding), int_pair(output_padding),
                                                 int_pair(dilation))
    if stride is None or padding is None or output_padding is None or dilation is None:
        return None
    try:
        return ops().conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    except Exception:  # noqa: BLE001 - the full path raises the error with fastconv's message
        return None
