"""Pooling with torch.nn.functional's signatures, on fastconv's kernels.

1-d runs as 2-d with H == 1 and unbatched inputs get a batch dimension (views only). lp_pool is composed
from fastconv's avg_pool / max_pool exactly as torch composes it.
"""
from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from .._typing import IntOrSeq, MaybeIndices
from ..errors import FastconvError, FastconvIndexError, FastconvTypeError, FastconvValueError, widened
from ..ops.pool import pool_out_size
from ._checked_windows import cached_window, remember_window, window_key
from ._direct_calls import ops
from ._args import (check_float, check_rank, check_tensor, fit, flag_error, int_arg, int_list, non_negative,
                    positive, raise_deferred, restore_rank)

_ops = torch.ops.fastconv
# The overloads themselves: calling them skips the packet's overload lookup (torch.compile traces either).
_max_pool2d = _ops.max_pool2d_with_indices.default
_max_pool2d_values = _ops.max_pool2d.default
_avg_pool2d = _ops.avg_pool2d.default


def _run_max_pool2d(x, window, ceil_mode, return_indices, direct=False):
    """(values, indices or None): the values-only op where neither the caller nor autograd needs the indices
    (inference: no index tensor, twice the values' bytes, written and dropped). direct: x is a plain tensor, and
    the ops are called through _direct_calls."""
    values_op, indices_op = (_max_pool2d_values, _max_pool2d)
    if direct:
        o = ops()
        values_op, indices_op = o.max_pool2d, o.max_pool2d_with_indices
    if not return_indices and not (x.requires_grad and torch.is_grad_enabled()):
        return values_op(x, *window, ceil_mode), None
    return indices_op(x, *window, ceil_mode)


def _as_batched_2d(input, spatial, op, name="input"):
    """-> (4-d view, unbatched flag). Checks type, rank and dtype."""
    check_tensor(input, op, name)
    check_rank(input, (spatial + 1, spatial + 2), op, name, f"(unbatched or batched {spatial}-d input)")
    check_float(input, op, name)
    unbatched = input.dim() == spatial + 1
    x = input.unsqueeze(0) if unbatched else input
    if spatial == 1:
        x = x.unsqueeze(2)
    return x, unbatched


def _parse_window(kernel_size, stride, padding, dilation, spatial, op, deferred):
    """torch's argument parser on the window arguments (types and int64 range; no values checked yet).
    stride None -> () (torch's F.max_pool passes [] for it: the kernel size). deferred: see int_list."""
    return (int_list(kernel_size, op, "kernel_size", spatial, deferred),
            () if stride is None else int_list(stride, op, "stride", spatial, deferred),
            int_list(padding, op, "padding", spatial, deferred),
            int_list(dilation, op, "dilation", spatial, deferred))


def _window_values(parsed, spatial, op):
    """Parsed window arguments -> per-axis tuples, checked for their values."""
    kernel, stride, padding, dilation = parsed
    kernel = positive(fit(kernel, spatial, op, "kernel_size"), op, "kernel_size")
    stride = kernel if len(stride) == 0 else positive(fit(stride, spatial, op, "stride"), op, "stride")
    padding = non_negative(fit(padding, spatial, op, "padding"), op, "padding")
    dilation = positive(fit(dilation, spatial, op, "dilation"), op, "dilation")
    return kernel, stride, padding, dilation


def _check_window(x, kernel, stride, padding, dilation, ceil_mode, spatial, op, is_max, shape):
    """torch's pool shape checks; raises FastconvValueError naming the argument. shape: the caller's input shape (x is
    its lifted 4-d view)."""
    for k, p, d in zip(kernel, padding, dilation):
        if is_max and p > ((k - 1) * d + 1) // 2:
            raise FastconvValueError(f"fastconv.{op}: padding: pad should be at most half of effective kernel size, "
                                     f"got padding={padding}, kernel_size={kernel} and dilation={dilation}")
        if p > k // 2:
            raise FastconvValueError(f"fastconv.{op}: padding: pad should be smaller than or equal to half of kernel "
                                     f"size, got padding={padding} and kernel_size={kernel}")
    in_sizes = tuple(x.shape[-spatial:])
    if x.shape[1] == 0 or any(s == 0 for s in in_sizes):
        raise FastconvValueError(f"fastconv.{op}: input must have non-zero channels and spatial size, got shape "
                                 f"{tuple(shape)}")
    out = tuple(pool_out_size(s, k, p, st, d, ceil_mode)
                for s, k, p, st, d in zip(in_sizes, kernel, padding, stride, dilation))
    if any(o < 1 for o in out):
        raise FastconvValueError(f"fastconv.{op}: given input size {in_sizes}, the calculated output size {out} is too "
                                 f"small (kernel_size={kernel}, padding={padding}, dilation={dilation})")


def _lift(spatial, kernel, stride, padding, dilation):
    """1-d window arguments -> 2-d ones with a trivial H axis."""
    if spatial == 2:
        return list(kernel), list(stride), list(padding), list(dilation)
    return [1, kernel[0]], [1, stride[0]], [0, padding[0]], [1, dilation[0]]


def max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, spatial, op):
    """return_indices is tested for truth, as torch's max_pool dispatch does (any value is accepted);
    ceil_mode must be a bool, as torch's argument parser requires."""
    if type(ceil_mode) is not bool:
        raise flag_error(ceil_mode, op, "ceil_mode")
    key = window_key("max", kernel_size, stride, padding, dilation) if spatial == 2 else None
    window = cached_window(input, key)
    if window is not None:  # a layer's repeat call: arguments checked before, input batched 2-d
        try:
            y, ind = _run_max_pool2d(input, window, ceil_mode, return_indices, direct=True)
        except (ValueError, TypeError, IndexError) as e:  # the op's own checks: as fastconv's error classes
            raise widened(e) from None
        return (y, ind) if return_indices else y
    deferred = []  # torch's parser first, then the checks
    parsed = _parse_window(kernel_size, stride, padding, dilation, spatial, op, deferred)
    raise_deferred(deferred)
    x, unbatched = _as_batched_2d(input, spatial, op)
    kernel, stride, padding, dilation = _window_values(parsed, spatial, op)
    _check_window(x, kernel, stride, padding, dilation, ceil_mode, spatial, op, is_max=True, shape=input.shape)
    window = _lift(spatial, kernel, stride, padding, dilation)
    remember_window(key, window, kernel, padding, dilation)
    try:
        y, ind = _run_max_pool2d(x, window, ceil_mode, return_indices)
    except (ValueError, TypeError, IndexError) as e:
        raise widened(e) from None
    # torch's max_pool1d keeps the lifted strides only on its with-indices path
    y = restore_rank(y, spatial, unbatched, keep_1d_format=return_indices)
    return (y, restore_rank(ind, spatial, unbatched, keep_1d_format=True)) if return_indices else y


def max_pool1d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: IntOrSeq = 0,
               dilation: IntOrSeq = 1, ceil_mode: bool = False, return_indices: bool = False) -> MaybeIndices:
    """torch.nn.functional.max_pool1d."""
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d")


def max_pool2d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: IntOrSeq = 0,
               dilation: IntOrSeq = 1, ceil_mode: bool = False, return_indices: bool = False) -> MaybeIndices:
    """torch.nn.functional.max_pool2d."""
    return max_pool_nd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d")


def avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, spatial, op):
    if type(ceil_mode) is not bool:
        raise flag_error(ceil_mode, op, "ceil_mode")
    if type(count_include_pad) is not bool:
        raise flag_error(count_include_pad, op, "count_include_pad")
    key = window_key("avg", kernel_size, stride, padding, 1, divisor_override) if spatial == 2 else None
    window = cached_window(input, key)
    if window is not None:  # a layer's repeat call: arguments checked before, input batched 2-d
        k, s, p, _ = window
        try:
            return ops().avg_pool2d(input, k, s, p, ceil_mode, count_include_pad, divisor_override)
        except (ValueError, TypeError, IndexError) as e:  # the op's own checks: as fastconv's error classes
            raise widened(e) from None
    # torch's parser first (types, int64 range), then the checks
    deferred = []
    parsed = _parse_window(kernel_size, stride, padding, 1, spatial, op, deferred)
    if divisor_override is not None:
        divisor_override = int_arg(divisor_override, op, "divisor_override", "an int or None", deferred)
    raise_deferred(deferred)
    x, unbatched = _as_batched_2d(input, spatial, op)
    kernel, stride, padding, dilation = _window_values(parsed, spatial, op)
    _check_window(x, kernel, stride, padding, dilation, ceil_mode, spatial, op, is_max=False, shape=input.shape)
    if divisor_override == 0:
        raise FastconvValueError(f"fastconv.{op}: divisor_override must be non-zero")
    window = _lift(spatial, kernel, stride, padding, dilation)
    remember_window(key, window, kernel, padding, dilation)
    k, s, p, _ = window
    try:
        y = _avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override)
    except (ValueError, TypeError, IndexError) as e:
        raise widened(e) from None
    return restore_rank(y, spatial, unbatched, keep_1d_format=True)


def avg_pool1d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: IntOrSeq = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """torch.nn.functional.avg_pool1d (which has no divisor_override)."""
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d")


def avg_pool2d(input: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None, padding: IntOrSeq = 0,
               ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """torch.nn.functional.avg_pool2d."""
    return avg_pool_nd(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2,
                       "avg_pool2d")


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, spatial, op):
    """torch's composition, step by step (so the same arguments fail in the same way); the avg / max pools it
    runs on report errors under the lp_pool op's name."""
    if spatial == 2:  # torch: kw, kh = _pair(kernel_size), before it looks at input
        kernel = tuple(kernel_size) if isinstance(kernel_size, Iterable) else (kernel_size, kernel_size)
        if len(kernel) != 2:
            raise FastconvValueError(f"fastconv.{op}: kernel_size must be an int or a pair, got {kernel_size!r}")
    check_tensor(input, op, "input")
    # torch takes any exponent Tensor.pow takes: a number (bools too) or a tensor
    if not isinstance(norm_type, (numbers.Real, torch.Tensor)):
        raise FastconvTypeError(f"fastconv.{op}: norm_type must be a number, got {norm_type!r}")
    if isinstance(norm_type, (int, float)) and norm_type == float("inf"):
        return max_pool_nd(input.abs(), kernel_size, stride, 0, 1, ceil_mode, False, spatial, op)
    if isinstance(norm_type, (int, float)) and norm_type == -float("inf"):
        return -max_pool_nd(-input.abs(), kernel_size, stride, 0, 1, ceil_mode, False, spatial, op)
    out = avg_pool_nd(input.pow(norm_type), kernel_size, stride, 0, ceil_mode, True, None, spatial, op)
    elems = fit(int_list(kernel_size, op, "kernel_size", spatial), 1, op, "kernel_size")[0] if spatial == 1 \
        else kernel[0] * kernel[1]
    return (torch.sign(out) * torch.relu(torch.abs(out))).mul(elems).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type: float | Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
              ceil_mode: bool = False) -> Tensor:
    """torch.nn.functional.lp_pool1d."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1, "lp_pool1d")


def lp_pool2d(input: Tensor, norm_type: float | Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
              ceil_mode: bool = False) -> Tensor:
    """torch.nn.functional.lp_pool2d."""
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2, "lp_pool2d")


def _unpool_tuple(value, spatial):
    """torch's _single / _pair as F.max_unpool uses them: an iterable as a tuple (of any length), anything else
    repeated."""
    return tuple(value) if isinstance(value, Iterable) else (value,) * spatial


def _unpool_output_size(input, kernel, stride, padding, output_size, spatial, op):
    """torch's _unpool_output_size step by step: the window arguments only feed this arithmetic (torch checks
    nothing else about them: a negative stride is fine if the size comes out >= 0). output_size may give
    (H, W) or (N, C, H, W); each value must lie strictly between default - stride and default + stride."""
    n = len(kernel)
    try:
        default = [(input.shape[-n + d] - 1) * stride[d] + kernel[d] - 2 * padding[d] for d in range(n)]
    except IndexError:
        raise FastconvIndexError(f"fastconv.{op}: kernel_size, stride and padding must have {spatial} values for "
                                 f"input of shape {tuple(input.shape)}, got {kernel}, {stride}, {padding}") from None
    except TypeError:
        raise FastconvTypeError(f"fastconv.{op}: kernel_size, stride and padding must be ints or tuples of ints, "
                                f"got {kernel}, {stride}, {padding}") from None
    if output_size is None:
        ret = default
    else:
        if not hasattr(output_size, "__len__"):
            raise FastconvTypeError(f"fastconv.{op}: output_size must be a tuple of {spatial} or {spatial + 2} "
                                    f"ints, got {output_size!r}")
        if len(output_size) == n + 2:
            output_size = output_size[2:]
        if len(output_size) != n:
            raise FastconvValueError(f"fastconv.{op}: output_size should be a sequence containing {n} or {n + 2} "
                                     f"elements, but it has a length of '{len(output_size)}'")
        for d in range(n):
            lo, hi = default[d] - stride[d], default[d] + stride[d]
            try:
                inside = lo < output_size[d] < hi
            except TypeError:
                raise FastconvTypeError(f"fastconv.{op}: output_size must be a sequence of ints, got "
                                        f"{output_size!r}") from None
            if not inside:
                raise FastconvValueError(f"fastconv.{op}: invalid output_size {list(output_size)} (dim {d} must be "
                                         f"between {lo} and {hi}, exclusive)")
        ret = output_size
    for d in range(n):  # torch._check_value(ret[d] >= 0): the comparison must give a bool (not NaN, a tensor)
        try:
            size_ok = ret[d] >= 0
        except TypeError:
            raise FastconvTypeError(f"fastconv.{op}: output_size must be a sequence of ints, got {ret!r}") from None
        if isinstance(size_ok, torch.Tensor) and torch.jit.is_tracing():  # sizes are traced as tensors
            size_ok = bool(size_ok)
        if not isinstance(size_ok, (bool, torch.SymBool)):
            raise FastconvTypeError(f"fastconv.{op}: output_size must be ints, got {ret!r} (from kernel_size, "
                                    f"stride and padding of another type)")
        if not size_ok:
            raise FastconvValueError(f"fastconv.{op}: max_unpooling: output_size must contain non-negative spatial "
                                     f"dimensions, but got output_size[{d}]={ret[d]}")
    return ret


_PLANE_1D = re.compile(r"(outside )the plane of size 1x(\d+)")


def _as_1d_error(e, op2d, op):
    """An error raised by the 2-d op `op2d` that runs the 1-d `op` (with H == 1), reworded for the 1-d call:
    the same exception type, naming `op` and the length instead of a 1xL plane."""
    msg = str(e).replace(f"fastconv.{op2d}", f"fastconv.{op}")
    msg = _PLANE_1D.sub(lambda m: f"{m.group(1)}the output of length {m.group(2)}", msg)
    try:
        new = type(e)(msg)
    except Exception:  # an exception type that cannot be built from a message alone: keep the original
        return e
    return new


def max_unpool_nd(input, indices, kernel_size, stride, padding, output_size, spatial, op):
    """torch's order: the output size from the window arguments (F.max_unpool's Python), then the op's
    argument parser on it, then the tensor checks."""
    check_tensor(input, op, "input")
    kernel = _unpool_tuple(kernel_size, spatial)
    stride = kernel if stride is None else _unpool_tuple(stride, spatial)
    out = _unpool_output_size(input, kernel, stride, _unpool_tuple(padding, spatial), output_size, spatial, op)
    out = list(int_list(out, op, "output_size"))
    if len(out) != spatial:  # (a kernel_size of another length gave it that length)
        raise FastconvValueError(f"fastconv.{op}: output_size must have {spatial} spatial sizes, got {out}")
    x, unbatched = _as_batched_2d(input, spatial, op)
    check_tensor(indices, op, "indices")
    if indices.dtype != torch.int64:
        raise FastconvTypeError(f"fastconv.{op}: indices must be int64, got {indices.dtype}")
    if indices.shape != input.shape:
        raise FastconvValueError(f"fastconv.{op}: indices of shape {tuple(indices.shape)} must have the shape of input "
                                 f"{tuple(input.shape)}")
    if indices.device != input.device:
        raise FastconvError(f"fastconv.{op}: indices and input must be on the same device, got {indices.device} "
                            f"and {input.device}")
    if torch.jit.is_tracing():  # the sizes were traced as tensors; the op takes ints (recorded as constants)
        out = [int(v) for v in out]
    ind = indices.unsqueeze(0) if unbatched else indices
    if spatial == 1:
        ind, out = ind.unsqueeze(2), [1] + out
    try:
        y = _ops.max_unpool2d(x, ind, out)
    except Exception as e:  # the op's own checks (index range): as fastconv's error classes, and for a 1-d
        # call reworded to say what they mean for it
        raise widened(e if spatial == 2 else _as_1d_error(e, "max_unpool2d", op)) from None
    return restore_rank(y, spatial, unbatched)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, output_size: Sequence[int] | None = None) -> Tensor:
    """torch.nn.functional.max_unpool1d."""
    return max_unpool_nd(input, indices, kernel_size, stride, padding, output_size, 1, "max_unpool1d")


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, output_size: Sequence[int] | None = None) -> Tensor:
    """torch.nn.functional.max_unpool2d."""
    return max_unpool_nd(input, indices, kernel_size, stride, padding, output_size, 2, "max_unpool2d")


__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "lp_pool1d", "lp_pool2d", "max_unpool1d",
           "max_unpool2d"]
