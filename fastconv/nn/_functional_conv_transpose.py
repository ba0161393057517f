"""conv_transpose1d / conv_transpose2d with torch.nn.functional's signatures, on fastconv's kernels."""
from __future__ import annotations

import torch
from torch import Tensor

from .._typing import IntOrSeq
from ..errors import FastconvValueError, widened
from ..ops.conv_transpose import transposed_out_size
from ._args import (autocast_casts, check_float, check_groups, check_int64, check_rank, check_same, check_same_device,
                    check_tensor, common_dtype, empty_input, fit, int_arg, int_list, non_negative, positive,
                    raise_deferred, restore_rank)
from ._fast_call import fast_conv_transpose2d
from ._torch_backend import torch_uses_onednn

_ops = torch.ops.fastconv


def _check_tensors(input, weight, bias, groups, spatial, op):
    check_rank(input, (spatial + 1, spatial + 2), op, "input", f"(unbatched or batched {spatial}-d input)")
    check_rank(weight, (spatial + 2,), op, "weight", "(in_channels, out_channels/groups, *kernel_size)")
    check_float(input, op, "input")
    if empty_input(input, spatial):
        check_float(weight, op, "weight")
        check_same_device(input, "input", weight, "weight", op)
    else:
        check_same(input, "input", weight, "weight", op)
    check_groups(groups, op)
    in_channels = input.shape[-spatial - 1]
    if in_channels != weight.shape[0]:
        raise FastconvValueError(f"fastconv.{op}: input has {in_channels} channels but weight of shape "
                                 f"{tuple(weight.shape)} expects in_channels={weight.shape[0]} (transposed convolution "
                                 f"weight is (in_channels, out_channels/groups, *kernel_size))")
    if in_channels % groups != 0:
        raise FastconvValueError(f"fastconv.{op}: groups={groups} does not divide in_channels={in_channels}")
    if any(k <= 0 for k in weight.shape[2:]):
        raise FastconvValueError(f"fastconv.{op}: kernel_size must be positive, got weight of shape "
                                 f"{tuple(weight.shape)}")
    if bias is not None:  # torch adds a bias of any dtype (cast to the input's)
        check_same_device(input, "input", bias, "bias", op)
        out_channels = weight.shape[1] * groups
        if bias.dim() != 1 or bias.shape[0] != out_channels:
            raise FastconvValueError(f"fastconv.{op}: bias must have shape ({out_channels},) to match out_channels, "
                                     f"got {tuple(bias.shape)}")


def _empty_result(input, weight, bias, groups, batch, out_sizes):
    """torch's result where it computes nothing (a batch of 0, or an output plane with no elements): a contiguous
    (batch, out_channels, *out_sizes) tensor with no elements, in the autograd graph of input, weight and bias,
    whose gradients are then zeros."""
    dtype = torch.float32 if autocast_casts(input) else input.dtype
    link = input.sum().to(dtype) + weight.sum().to(dtype)
    if bias is not None:
        link = link + bias.sum().to(dtype)
    shape = (batch, weight.shape[1] * groups) + tuple(out_sizes)
    return torch.zeros(shape, dtype=dtype, device=input.device) + link * 0


def conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, spatial, op):
    """Shared body of conv_transpose1d/2d: checks, unbatched and 1-d inputs as views of the 2-d op."""
    # torch's order: the argument parser (types, int64 range) first, then value and tensor checks
    deferred = []
    stride = int_list(stride, op, "stride", spatial, deferred)
    padding = int_list(padding, op, "padding", spatial, deferred)
    output_padding = int_list(output_padding, op, "output_padding", spatial, deferred)
    groups = int_arg(groups, op, "groups", "a positive int", deferred)
    dilation = int_list(dilation, op, "dilation", spatial, deferred)
    raise_deferred(deferred)
    for t, name in ((input, "input"), (weight, "weight")):
        check_tensor(t, op, name)
    if bias is not None:
        check_tensor(bias, op, "bias")
    stride = positive(fit(stride, spatial, op, "stride"), op, "stride")
    dilation = positive(fit(dilation, spatial, op, "dilation"), op, "dilation")
    padding = non_negative(fit(padding, spatial, op, "padding"), op, "padding")
    output_padding = non_negative(fit(output_padding, spatial, op, "output_padding"), op, "output_padding")
    _check_tensors(input, weight, bias, groups, spatial, op)
    empty = empty_input(input, spatial)
    big_output_padding = any(o >= s and o >= d for o, s, d in zip(output_padding, stride, dilation))
    if big_output_padding and not empty:  # torch checks it only where it computes
        raise FastconvValueError(f"fastconv.{op}: output_padding must be smaller than either stride or dilation, "
                                 f"got output_padding={output_padding}, stride={stride}, dilation={dilation}")
    unbatched = input.dim() == spatial + 1
    x = input.unsqueeze(0) if unbatched else input
    in_sizes = tuple(x.shape[2:])
    out_sizes = tuple(transposed_out_size(size, s, p, k, d, o) for size, s, p, k, d, o in
                      zip(in_sizes, stride, padding, weight.shape[2:], dilation, output_padding))
    check_int64(out_sizes, op, "output size")  # torch's int64 arithmetic would wrap
    if x.shape[0] == 0 and any(size < 0 for size in out_sizes):
        raise FastconvValueError(f"fastconv.{op}: output size {out_sizes} is negative for input size {in_sizes}, "
                                 f"padding={padding}, kernel_size={tuple(weight.shape[2:])}, dilation={dilation}")
    if x.shape[0] != 0 and any(size <= 0 for size in in_sizes):
        raise FastconvValueError(f"fastconv.{op}: input spatial size must be positive, got input of shape "
                                 f"{tuple(input.shape)}")
    # An empty output plane: torch's oneDNN backend returns an empty result, its reference kernels raise
    empty_plane_ok = x.shape[0] == 0 or torch_uses_onednn(input, weight, stride, dilation, groups, spatial,
                                                          output_padding)
    if any(size < 0 for size in out_sizes) or (0 in out_sizes and not empty_plane_ok):
        raise FastconvValueError(f"fastconv.{op}: output size {out_sizes} is not positive for input size {in_sizes}, "
                                 f"padding={padding}, kernel_size={tuple(weight.shape[2:])}, dilation={dilation}")
    # torch computes nothing for an empty batch (from any input plane, with any output_padding) or into an
    # empty output plane: the kernels need neither
    if x.shape[0] == 0 and (any(size <= 0 for size in in_sizes) or big_output_padding) or 0 in out_sizes:
        y = _empty_result(input, weight, bias, groups, x.shape[0], out_sizes)
        return y.squeeze(0) if unbatched else y
    x, weight, bias = common_dtype(x, weight, bias)
    w = weight
    if spatial == 1:  # run 1-d as 2-d with H == 1 (views only)
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        stride, dilation = (1,) + stride, (1,) + dilation
        padding, output_padding = (0,) + padding, (0,) + output_padding
    try:
        y = _ops.conv_transpose2d(x, w, bias, list(stride), list(padding), list(output_padding), groups,
                                  list(dilation))
    except (ValueError, TypeError, IndexError) as e:  # the op's own checks: as fastconv's error classes
        raise widened(e) from None
    return restore_rank(y, spatial, unbatched)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1,
                     padding: IntOrSeq = 0, output_padding: IntOrSeq = 0, groups: int = 1,
                     dilation: IntOrSeq = 1) -> Tensor:
    """torch.nn.functional.conv_transpose1d."""
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, 1,
                             "conv_transpose1d")


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1,
                     padding: IntOrSeq = 0, output_padding: IntOrSeq = 0, groups: int = 1,
                     dilation: IntOrSeq = 1) -> Tensor:
    """torch.nn.functional.conv_transpose2d."""
    y = fast_conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation)
    if y is not None:
        return y
    return conv_transpose_nd(input, weight, bias, stride, padding, output_padding, groups, dilation, 2,
                             "conv_transpose2d")


__all__ = ["conv_transpose1d", "conv_transpose2d"]
