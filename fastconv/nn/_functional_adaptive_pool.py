"""adaptive_{avg,max}_pool{1,2}d with torch.nn.functional's signatures, on fastconv's kernels.
1-d runs as 2-d with H == 1; unbatched inputs get a batch dimension of 1 (views only)."""
import torch

from ..errors import FastconvTypeError, FastconvValueError, widened
from ._args import check_float, check_rank, check_tensor, is_int as _is_int, non_negative, restore_rank

_ops = torch.ops.fastconv


def _output_size(output_size, in_sizes, op):
    """int, or a sequence of len(in_sizes) ints / None (None keeps that input size) -> list of ints."""
    n = len(in_sizes)
    if _is_int(output_size):
        sizes = [output_size] * n
    else:
        # torch takes a list, tuple or torch.Size (not a str, set, range or iterator)
        items = list(output_size) if isinstance(output_size, (list, tuple)) else None
        if items is None or not all(v is None or _is_int(v) for v in items):
            raise FastconvTypeError(f"fastconv.{op}: output_size must be an int or a tuple of {n} ints or None, "
                                    f"got {output_size!r}")
        if len(items) != n:
            raise FastconvValueError(f"fastconv.{op}: output_size must be an int or a tuple of {n} ints or None, "
                                     f"got {output_size!r}")
        sizes = [s if v is None else v for v, s in zip(items, in_sizes)]
        if torch.jit.is_tracing():  # an input size was traced as a tensor; the op takes ints (constants)
            sizes = [int(v) for v in sizes]
    return list(non_negative(sizes, op, "output_size"))  # 0: an empty result, as torch


def _prepare(input, output_size, spatial, op, is_max):
    """Checks input; -> (4-d input view, [OH, OW], unbatched). torch's rules: the spatial sizes must be
    non-zero, and for max pooling every dimension after the first (channels of a batched input); average
    pooling takes C == 0, and any pooling an output_size of 0, and returns an empty result."""
    check_tensor(input, op, "input")
    check_rank(input, (spatial + 1, spatial + 2), op, "input", f"(unbatched or batched {spatial}-d input)")
    check_float(input, op, "input")
    unbatched = input.dim() == spatial + 1
    x = input.unsqueeze(0) if unbatched else input
    if any(s == 0 for s in (input.shape[1:] if is_max else x.shape[2:])):
        what = "non-batch" if is_max else "spatial"
        raise FastconvValueError(f"fastconv.{op}: input must have non-zero size in its {what} dimensions, "
                                 f"got shape {tuple(input.shape)}")
    sizes = _output_size(output_size, tuple(x.shape[2:]), op)
    if spatial == 1:
        x, sizes = x.unsqueeze(2), [1] + sizes
    return x, sizes, unbatched


def _adaptive_avg(input, output_size, spatial, op):
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


def adaptive_avg_pool1d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """torch.nn.functional.adaptive_avg_pool2d (output_size entries may be None: keep that input size)."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool1d; indices are positions along the input length."""
    return _adaptive_max(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """torch.nn.functional.adaptive_max_pool2d; indices are flattened positions ih * W + iw per plane."""
    return _adaptive_max(input, output_size, return_indices, 2, "adaptive_max_pool2d")


__all__ = ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"]
