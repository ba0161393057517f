"""adaptive_{avg,max}_pool{1,2}d with torch.nn.functional's signatures, on fastconv's kernels.
1-d runs as 2-d with H == 1; unbatched inputs get a batch dimension of 1 (views only)."""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .._typing import MaybeIndices, OutputSize
from ..errors import FastconvTypeError, FastconvValueError, widened
from ._args import check_float, check_rank, check_tensor, fit, int_list, non_negative, restore_rank
from ._checked_windows import _FAST_DTYPES
from ._direct_calls import ops
from ._fast_call import int_pair, int_single

_ops = torch.ops.fastconv


def _parse_output_size(input, output_size, spatial, op):
    """torch's steps: 2-d pooling first replaces None entries by the input's sizes (F's _list_with_default,
    whose only check is that the input has more dimensions than output_size has entries), then the argument
    parser takes the result (1-d pooling: output_size as given, no None) as an int list."""
    if spatial == 2 and not isinstance(output_size, (int, torch.SymInt)):
        if not hasattr(output_size, "__len__"):
            raise FastconvTypeError(f"fastconv.{op}: output_size must be an int or a tuple of {spatial} ints or "
                                    f"None, got {output_size!r}")
        n = len(output_size)
        if input.dim() <= n:
            raise FastconvValueError(f"fastconv.{op}: input dimension should be at least {n + 1} for output_size "
                                     f"{output_size!r}, got shape {tuple(input.shape)}")
        defaults = input.shape[input.dim() - n:]
        output_size = [d if v is None else v for v, d in zip(output_size, defaults)]
        if torch.jit.is_tracing():  # an input size was traced as a tensor; the op takes ints (constants)
            output_size = [int(v) for v in output_size]
    sizes = int_list(output_size, op, "output_size", spatial)
    if isinstance(output_size, (list, tuple)) and len(sizes) != spatial:  # only a lone int is repeated
        raise FastconvValueError(f"fastconv.{op}: output_size must be an int or a tuple of {spatial} ints, got "
                                 f"{output_size!r}")
    return sizes


def _prepare(input, output_size, spatial, op, is_max):
    """Checks input; -> (4-d input view, [OH, OW], unbatched). torch's rules: the spatial sizes must be
    non-zero, and for max pooling every dimension after the first (channels of a batched input); average
    pooling takes C == 0, and any pooling an output_size of 0, and returns an empty result; an average to
    1x1 takes an empty plane too (NaN: a mean over no elements, as torch's)."""
    check_tensor(input, op, "input")
    sizes = _parse_output_size(input, output_size, spatial, op)
    check_rank(input, (spatial + 1, spatial + 2), op, "input", f"(unbatched or batched {spatial}-d input)")
    check_float(input, op, "input")
    sizes = list(non_negative(fit(sizes, spatial, op, "output_size"), op, "output_size"))
    unbatched = input.dim() == spatial + 1
    x = input.unsqueeze(0) if unbatched else input
    if spatial == 1:
        x, sizes = x.unsqueeze(2), [1] + sizes
    to_mean = not is_max and sizes == [1, 1]
    if any(s == 0 for s in (input.shape[1:] if is_max else x.shape[2:])) and not to_mean:
        what = "non-batch" if is_max else "spatial"
        raise FastconvValueError(f"fastconv.{op}: input must have non-zero size in its {what} dimensions, "
                                 f"got shape {tuple(input.shape)}")
    return x, sizes, unbatched


def _global_average_any_rank(input, output_size, op):
    """torch computes an adaptive average to 1x1 as a mean over the last two dimensions, before it checks the
    rank: a (2-d or more than 4-d) input of any other rank gets one. -> that result, or None for other
    output sizes and ranks (which the usual checks then reject)."""
    if not isinstance(input, torch.Tensor) or input.dim() in (0, 1, 3, 4):
        return None
    sizes = _parse_output_size(input, output_size, 2, op)
    if fit(sizes, 2, op, "output_size") != (1, 1):
        return None
    check_float(input, op, "input")
    lead, (h, w) = tuple(input.shape[:-2]), input.shape[-2:]
    planes = input.reshape(math.prod(lead), 1, h, w)
    try:
        y = _ops.adaptive_avg_pool2d(planes, [1, 1])
    except (ValueError, TypeError, IndexError) as e:
        raise widened(e) from None
    return y.reshape(lead + (1, 1))


def _common_adaptive_avg(input, output_size, spatial):
    """The common call (a plain batched float32/float64 input of non-empty planes, positive int output sizes)
    straight on the op, or None for any other call and any the op refuses: the full path then checks and reports
    it. (The full path's checks took longer than ResNet-18's 4x512x7x7 global average itself, and than M5's
    8x512x30 one.)"""
    if type(input) is not torch.Tensor or input.dim() != spatial + 2 or input.dtype not in _FAST_DTYPES:
        return None
    sizes = int_pair(output_size) if spatial == 2 else int_single(output_size)
    if sizes is None or min(sizes) <= 0 or 0 in input.shape[1:]:
        return None
    try:
        if spatial == 2:
            return ops().adaptive_avg_pool2d(input, sizes)
        return restore_rank(ops().adaptive_avg_pool2d(input.unsqueeze(2), [1, sizes[0]]), 1, False,
                            keep_1d_format=True)
    except Exception:  # noqa: BLE001 - the full path raises the error with fastconv's message
        return None


def _adaptive_avg(input, output_size, spatial, op):
    y = _common_adaptive_avg(input, output_size, spatial)
    if y is not None:
        return y
    if spatial == 2:
        y = _global_average_any_rank(input, output_size, op)
        if y is not None:
            return y
    x, sizes, unbatched = _prepare(input, output_size, spatial, op, False)
    try:
        y = _ops.adaptive_avg_pool2d(x, sizes)
    except (ValueError, TypeError, IndexError) as e:  # the op's own checks: as fastconv's error classes
        raise widened(e) from None
    return restore_rank(y, spatial, unbatched, keep_1d_format=True)


def _adaptive_max(input, output_size, return_indices, spatial, op):
    x, sizes, unbatched = _prepare(input, output_size, spatial, op, True)
    # An unbatched input of 0 channels (only those pass _prepare with C == 0): torch answers it, the op (like
    # torch's batched max pooling) rejects C == 0, so it runs as (0, 1, H, W), the same planes as a batch of 0.
    swapped = x.shape[1] == 0
    if swapped:
        x = x.transpose(0, 1)
    try:
        y, indices = _ops.adaptive_max_pool2d(x, sizes)
        if swapped:
            y, indices = y.transpose(0, 1), indices.transpose(0, 1)
    except (ValueError, TypeError, IndexError) as e:  # the op's own checks: as fastconv's error classes
        raise widened(e) from None
    y = restore_rank(y, spatial, unbatched, keep_1d_format=True)
    return (y, restore_rank(indices, spatial, unbatched, keep_1d_format=True)) if return_indices else y


def adaptive_avg_pool1d(input: Tensor, output_size: OutputSize) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input: Tensor, output_size: OutputSize) -> Tensor:
    """torch.nn.functional.adaptive_avg_pool2d (output_size entries may be None: keep that input size)."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_max_pool1d(input: Tensor, output_size: OutputSize, return_indices: bool = False) -> MaybeIndices:
    """torch.nn.functional.adaptive_max_pool1d; indices are positions along the input length."""
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input: Tensor, output_size: OutputSize, return_indices: bool = False) -> MaybeIndices:
    """torch.nn.functional.adaptive_max_pool2d; indices are flattened positions ih * W + iw per plane."""
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"]
