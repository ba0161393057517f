"""Argument normalisation and checks shared by the functional API (errors name the argument)."""
import numbers

import torch

from ..errors import FastconvDtypeError, FastconvError, FastconvOverflowError, FastconvTypeError, FastconvValueError

FLOAT_DTYPES_CPU = (torch.float32, torch.float64)
FLOAT_DTYPES_CUDA = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def is_int(v):
    """A Python / numpy / symbolic integer, not a bool (torch's int arguments reject bools)."""
    return type(v) is int or (isinstance(v, (numbers.Integral, torch.SymInt)) and not isinstance(v, bool))


def ntuple(value, n, op, name):
    """An int or a length-n sequence of ints -> tuple of n Python ints. A value or item of another type
    (str, float, bool, None, a nested tuple) raises FastconvTypeError, as torch's argument parser raises
    TypeError; a sequence of ints of the wrong length raises FastconvValueError (torch: RuntimeError)."""
    # Fast paths for what modules pass (plain ints and int tuples): the checks below go through the
    # numbers.Integral ABC, several microseconds per layer call.
    if type(value) is int:
        return (value,) * n
    if type(value) is tuple and len(value) == n and all(type(v) is int for v in value):
        return value
    if is_int(value):
        return (value,) * n
    # torch's int-list arguments take a list, tuple or torch.Size; not a str, set, range, array or iterator
    items = tuple(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(is_int(v) for v in items):
        raise FastconvTypeError(f"fastconv.{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(items) == 1:
        items = items * n
    if len(items) != n:
        raise FastconvValueError(f"fastconv.{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return items


INT64_MAX = 2 ** 63 - 1


def check_int64(values, op, name):
    """The ops take int64 values; torch raises ValueError or TypeError ("Overflow when unpacking long long")
    past that."""
    if any(v > INT64_MAX or v < -INT64_MAX - 1 for v in values):
        raise FastconvOverflowError(f"fastconv.{op}: {name} does not fit in int64, got {tuple(values)}")


def positive(values, op, name):
    if any(not 0 < v <= INT64_MAX for v in values):
        if any(v <= 0 for v in values):
            raise FastconvValueError(f"fastconv.{op}: {name} must be positive, got {tuple(values)}")
        check_int64(values, op, name)
    return values


def non_negative(values, op, name):
    if any(not 0 <= v <= INT64_MAX for v in values):
        if any(v < 0 for v in values):
            raise FastconvValueError(f"fastconv.{op}: {name} must be non-negative, got {tuple(values)}")
        check_int64(values, op, name)
    return values


def flag_error(value, op, name):
    """The error for a bool flag (ceil_mode, count_include_pad) that is not a bool: torch's argument parser
    raises TypeError for 0 / 1, numpy bools, strings ('False' would otherwise turn the flag on), None."""
    return FastconvTypeError(f"fastconv.{op}: {name} must be a bool (True or False), got "
                             f"{type(value).__name__} {value!r}")


def check_flag(value, op, name):
    """Raises unless value is True or False (callers on hot paths test `type(value) is bool` inline)."""
    if type(value) is not bool:
        raise flag_error(value, op, name)
    return value


def check_groups(groups, op):
    if not is_int(groups):
        raise FastconvTypeError(f"fastconv.{op}: groups must be a positive int, got {groups!r}")
    if groups <= 0:
        raise FastconvValueError(f"fastconv.{op}: groups must be a positive int, got {groups!r}")


def check_tensor(t, op, name):
    if not isinstance(t, torch.Tensor):
        raise FastconvTypeError(f"fastconv.{op}: {name} must be a Tensor, got {type(t).__name__}")


# Under torch.autocast the fastconv ops cast float16/bfloat16 arguments to float32 (fastconv/_autocast.py).
_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_autocast_warned = False


def autocast_casts(t):
    """True if an autocast region for t's device is active and will cast t to float32 for a fastconv op."""
    global _autocast_warned
    # Only cpu and cuda have autocast: torch.is_autocast_enabled raises for others (meta, used for shape
    # inference).
    if t.dtype not in _AUTOCAST_DTYPES or t.device.type not in ("cpu", "cuda") \
            or not torch.is_autocast_enabled(t.device.type):
        return False
    if not _autocast_warned and t.dtype != torch.float32:
        import warnings

        warnings.warn("fastconv: under torch.autocast, fastconv ops compute in float32 (their CPU kernels are "
                      f"float32/float64 only); {t.dtype} arguments are cast to float32", stacklevel=3)
        _autocast_warned = True
    return True


def check_float(t, op, name):
    if autocast_casts(t):
        return
    allowed = FLOAT_DTYPES_CUDA if t.device.type == "cuda" else FLOAT_DTYPES_CPU
    if t.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise FastconvDtypeError(f"fastconv.{op}: {name} must have a floating dtype ({names}) on {t.device.type}, "
                                 f"got {t.dtype}")


def check_same(a, an, b, bn, op):
    if a.dtype != b.dtype and not (autocast_casts(a) and autocast_casts(b)):
        raise FastconvTypeError(f"fastconv.{op}: {an} and {bn} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise FastconvError(f"fastconv.{op}: {an} and {bn} must be on the same device, got {a.device} and {b.device}")


def check_rank(t, ranks, op, name, meaning):
    if t.dim() not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise FastconvValueError(f"fastconv.{op}: expected {name} with {want} dimensions {meaning}, got {t.dim()} "
                                 f"dimensions (shape {tuple(t.shape)})")


def restore_rank(y, spatial, unbatched, keep_1d_format=False):
    """Undoes the functional API's lifting of 1-d and unbatched inputs to (N, C, H, W): drops the added
    dimensions, and gives the result torch's strides. The 4-d kernels return channels_last when the lifted
    view was channel-minor (an (N, L, C) tensor transposed to (N, C, L), say). torch returns its unbatched
    and most 1-d results contiguous then (code may call .view on them); its avg / Lp / adaptive 1-d pooling
    and max_pool1d with indices keep the channel-minor strides (keep_1d_format)."""
    if spatial == 1:
        y = y.squeeze(2)
    if unbatched:
        return y.squeeze(0).contiguous()
    return y if y.dim() == 4 or keep_1d_format else y.contiguous()
