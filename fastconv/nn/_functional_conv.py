"""conv1d / conv2d with torch.nn.functional's signatures, on fastconv's kernels."""
import torch

from ..errors import FastconvValueError, widened
from ..ops.conv import conv_out_size
from ._args import (check_float, check_groups, check_rank, check_same, check_tensor, non_negative, ntuple,
                    positive, restore_rank)

_ops = torch.ops.fastconv


def _resolve_padding(padding, kernel, stride, dilation, op, allow_causal):
    """-> per-axis (lo, hi) pairs. Accepts ints, tuples, 'valid', 'same' and (1-d) 'causal'."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise FastconvValueError(f"fastconv.{op}: padding='same' is not supported for strided convolutions "
                                         f"(stride={tuple(stride)})")
            # torch's rule: total = d*(k-1), the extra element (even kernels) goes to the end.
            return [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in zip(kernel, dilation)]
        if padding == "causal" and allow_causal:
            return [(d * (k - 1), 0) for k, d in zip(kernel, dilation)]
        allowed = "'valid', 'same' or 'causal'" if allow_causal else "'valid' or 'same'"
        raise FastconvValueError(f"fastconv.{op}: padding must be an int, a tuple of ints, {allowed}; got '{padding}'")
    pads = non_negative(ntuple(padding, n, op, "padding"), op, "padding")
    return [(p, p) for p in pads]


def _check_conv_args(input, weight, bias, groups, spatial, op):
    for t, name in ((input, "input"), (weight, "weight")):
        check_tensor(t, op, name)
    check_rank(input, (spatial + 1, spatial + 2), op, "input",
               f"(unbatched or batched {spatial}-d input)")
    check_rank(weight, (spatial + 2,), op, "weight", "(out_channels, in_channels/groups, *kernel_size)")
    check_float(input, op, "input")
    check_same(input, "input", weight, "weight", op)
    if bias is not None:
        check_tensor(bias, op, "bias")
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
    """Shared body of conv1d/conv2d. pads: explicit per-axis (lo, hi) pairs that replace padding (modules with
    a non-zero padding_mode or causal padding pass torch's asymmetric pads this way; the public functions
    cannot, so F.conv2d(x, w, padding=[(1, 2), (3, 4)]) is a TypeError as in torch)."""
    _check_conv_args(input, weight, bias, groups, spatial, op)
    stride = positive(ntuple(stride, spatial, op, "stride"), op, "stride")
    dilation = positive(ntuple(dilation, spatial, op, "dilation"), op, "dilation")
    kernel = tuple(weight.shape[2:])
    if pads is None:
        pads = _resolve_padding(padding, kernel, stride, dilation, op, allow_causal=spatial == 1)
    unbatched = input.dim() == spatial + 1
    x = input.unsqueeze(0) if unbatched else input
    in_sizes = tuple(x.shape[2:])
    _check_fits(in_sizes, pads, kernel, stride, dilation, op)
    if padding_mode != "zeros":
        _check_mode_pads(in_sizes, pads, padding_mode, op)
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


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d, plus padding='causal' (left padding dilation*(kernel-1), as in WaveNet)."""
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, "zeros", 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d."""
    return conv_nd(input, weight, bias, stride, padding, dilation, groups, "zeros", 2, "conv2d")


__all__ = ["conv1d", "conv2d", "conv_out_size"]
