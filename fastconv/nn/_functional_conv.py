"""conv1d / conv2d with torch.nn.functional's signatures, on fastconv's kernels."""
from __future__ import annotations

import torch
from torch import Tensor

from .._typing import IntOrSeq, Padding
from ..errors import FastconvDtypeError, FastconvValueError, widened
from ..ops.conv import conv_out_size
from ._args import (check_float, check_groups, check_int64, check_rank, check_same, check_same_device, check_tensor,
                    common_dtype, empty_input, fit, int_arg, int_list, non_negative, positive, raise_deferred,
                    restore_rank)
from ._fast_call import fast_conv1d, fast_conv2d
from ._torch_backend import torch_uses_onednn

_ops = torch.ops.fastconv


def _resolve_padding(padding, kernel, stride, dilation, op, allow_causal):
    """-> per-axis (lo, hi) pairs. padding: 'valid', 'same', (1-d) 'causal', or an int_list-parsed tuple."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise FastconvValueError(f"fastconv.{op}: padding='same' is not supported for strided convolutions "
                                         f"(stride={tuple(stride)})")
            # torch's rule: total = d*(k-1), the extra element (even kernels) goes to the end.
            check_int64([d * (k - 1) for k, d in zip(kernel, dilation)], op, "padding='same' (dilation * "
                        "(kernel_size - 1))")
            return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
        if padding == "causal" and allow_causal:  # (its size is checked in conv_nd)
            return [(d * (k - 1), 0) for k, d in zip(kernel, dilation)]
        allowed = "'valid', 'same' or 'causal'" if allow_causal else "'valid' or 'same'"
        raise FastconvValueError(f"fastconv.{op}: padding must be an int, a tuple of ints, {allowed}; got '{padding}'")
    pads = non_negative(fit(padding, n, op, "padding"), op, "padding")
    return [(p, p) for p in pads]


def _module_pads(flat, spatial, mode, op):
    """A module's _reversed_padding_repeated_twice (last axis lo, hi, ..., first axis lo, hi), parsed as torch's
    F.pad parses it -> per-axis (lo, hi) pairs. torch pads with F.pad before the convolution, which rejects a
    list of another length (NotImplementedError there)."""
    flat = int_list(flat, op, "padding", 2 * spatial)
    if len(flat) != 2 * spatial:
        raise FastconvValueError(f"fastconv.{op}: padding_mode={mode!r} needs {spatial} padding values (one per "
                                 f"spatial axis), got {len(flat) // 2}")
    non_negative(flat, op, "padding")
    return [(flat[2 * i], flat[2 * i + 1]) for i in reversed(range(spatial))]


def _check_conv_args(input, weight, bias, groups, spatial, op, bias_any_dtype):
    """Tensor checks. bias_any_dtype: the bias may have another (real) dtype, which is cast to the input's, as
    torch's string-padding path does unless it runs on oneDNN (its int-padding conv1d / conv2d always check)."""
    check_rank(input, (spatial + 1, spatial + 2), op, "input",
               f"(unbatched or batched {spatial}-d input)")
    check_rank(weight, (spatial + 2,), op, "weight", "(out_channels, in_channels/groups, *kernel_size)")
    check_float(input, op, "input")
    if empty_input(input, spatial):
        check_float(weight, op, "weight")
        check_same_device(input, "input", weight, "weight", op)
    else:
        check_same(input, "input", weight, "weight", op)
    if bias is not None:
        if bias_any_dtype:
            check_same_device(input, "input", bias, "bias", op)
            if bias.is_complex():
                raise FastconvDtypeError(f"fastconv.{op}: bias must have a real dtype (float32, float64 or an integer "
                                         f"type, cast to the input's), got {bias.dtype}")
        else:
            check_same(input, "input", bias, "bias", op)
        if bias.dim() != 1 or bias.shape[0] != weight.shape[0]:
            raise FastconvValueError(f"fastconv.{op}: bias must have shape ({weight.shape[0]},) to match out_channels, "
                                     f"got {tuple(bias.shape)}")
    check_groups(groups, op)
    in_channels = input.shape[-spatial - 1]
    if weight.shape[0] % groups != 0:
        raise FastconvValueError(f"fastconv.{op}: groups={groups} does not divide out_channels={weight.shape[0]}")
    if in_channels % groups != 0:
        raise FastconvValueError(f"fastconv.{op}: groups={groups} does not divide in_channels={in_channels}")
    if in_channels != weight.shape[1] * groups:
        raise FastconvValueError(f"fastconv.{op}: input has {in_channels} channels but weight of shape "
                                 f"{tuple(weight.shape)} with groups={groups} expects "
                                 f"{weight.shape[1] * groups} channels")


def _check_fits(in_sizes, pads, kernel, stride, dilation, op):
    for size, (lo, hi), k, d in zip(in_sizes, pads, kernel, dilation):
        if size + lo + hi < d * (k - 1) + 1:
            dilated = tuple(dd * (kk - 1) + 1 for kk, dd in zip(kernel, dilation))
            raise FastconvValueError(f"fastconv.{op}: kernel size (dilated) {dilated} is larger than the padded "
                                     f"input {tuple(s + lo + hi for s, (lo, hi) in zip(in_sizes, pads))}")


def _check_mode_pads(in_sizes, pads, mode, op):
    for size, (lo, hi) in zip(in_sizes, pads):
        if mode == "reflect" and (lo >= size or hi >= size) and (lo or hi):
            raise FastconvValueError(f"fastconv.{op}: padding_mode='reflect' needs padding smaller than the input "
                                     f"size, got padding {pads} for input size {tuple(in_sizes)}")
        if mode == "circular" and (lo > size or hi > size):
            raise FastconvValueError(f"fastconv.{op}: padding_mode='circular' needs padding no larger than the input "
                                     f"size, got padding {pads} for input size {tuple(in_sizes)}")


def conv_nd(input, weight, bias, stride, padding, dilation, groups, padding_mode, spatial, op, pads=None):
    """Shared body of conv1d/conv2d. pads: a module's _reversed_padding_repeated_twice, which replaces padding
    (modules with a non-zero padding_mode or causal padding pass torch's asymmetric pads this way; the public
    functions cannot, so F.conv2d(x, w, padding=[(1, 2), (3, 4)]) is a TypeError as in torch)."""
    # torch's order: F.pad (modules), then the argument parser (types, int64 range), then value and tensor checks
    if pads is not None:
        pads = _module_pads(pads, spatial, padding_mode, op)
    deferred = []
    stride = int_list(stride, op, "stride", spatial, deferred)
    if pads is None and not isinstance(padding, str):
        padding = int_list(padding, op, "padding", spatial, deferred)
    dilation = int_list(dilation, op, "dilation", spatial, deferred)
    groups = int_arg(groups, op, "groups", "a positive int", deferred)
    raise_deferred(deferred)
    for t, name in ((input, "input"), (weight, "weight")):
        check_tensor(t, op, name)
    if bias is not None:
        check_tensor(bias, op, "bias")
    if padding == "causal" and spatial == 1 and len(dilation) == 1 and weight.dim() == 3:
        # torch's spelling pads with F.pad by dilation * (kernel_size - 1) before any convolution check
        check_int64((dilation[0] * (weight.shape[-1] - 1),), op, "padding='causal' (dilation * (kernel_size - 1))")
    stride = positive(fit(stride, spatial, op, "stride"), op, "stride")
    dilation = positive(fit(dilation, spatial, op, "dilation"), op, "dilation")
    bias_any_dtype = (isinstance(padding, str) and padding != "causal" and bias is not None
                      and bias.dtype != input.dtype and isinstance(groups, int) and groups > 0
                      and not torch_uses_onednn(input, weight, stride, dilation, groups, spatial))
    _check_conv_args(input, weight, bias, groups, spatial, op, bias_any_dtype)
    kernel = tuple(weight.shape[2:])
    if pads is None:
        pads = _resolve_padding(padding, kernel, stride, dilation, op, allow_causal=spatial == 1)
    unbatched = input.dim() == spatial + 1
    x = input.unsqueeze(0) if unbatched else input
    in_sizes = tuple(x.shape[2:])
    _check_fits(in_sizes, pads, kernel, stride, dilation, op)
    if padding_mode != "zeros":
        _check_mode_pads(in_sizes, pads, padding_mode, op)
    x, weight, bias = common_dtype(x, weight, bias)
    w = weight
    if spatial == 1:  # run 1-d as 2-d with H == 1 (views only)
        x, w = x.unsqueeze(2), w.unsqueeze(2)
        stride, dilation, pads = (1,) + stride, (1,) + dilation, [(0, 0)] + pads
    pad4 = [pads[0][0], pads[0][1], pads[1][0], pads[1][1]]
    try:
        y = _ops.conv2d(x, w, bias, list(stride), pad4, list(dilation), groups, padding_mode)
    except (ValueError, TypeError, IndexError) as e:  # the op's own checks: as fastconv's error classes
        raise widened(e) from None
    return restore_rank(y, spatial, unbatched)


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1, padding: Padding = 0,
           dilation: IntOrSeq = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv1d, plus padding='causal' (left padding dilation*(kernel-1), as in WaveNet)."""
    y = fast_conv1d(input, weight, bias, stride, padding, dilation, groups)
    if y is not None:
        return y
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, "zeros", 1, "conv1d")


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntOrSeq = 1, padding: Padding = 0,
           dilation: IntOrSeq = 1, groups: int = 1) -> Tensor:
    """torch.nn.functional.conv2d."""
    y = fast_conv2d(input, weight, bias, stride, padding, dilation, groups)
    if y is not None:
        return y
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, "zeros", 2, "conv2d")


__all__ = ["conv1d", "conv2d", "conv_out_size"]
