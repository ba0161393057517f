"""Argument normalisation and checks shared by the functional API (errors name the argument)."""
import numbers
import operator

import torch

from ..errors import FastconvDtypeError, FastconvError, FastconvOverflowError, FastconvTypeError, FastconvValueError

FLOAT_DTYPES_CPU = (torch.float32, torch.float64)
FLOAT_DTYPES_CUDA = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


INT64_MAX = 2 ** 63 - 1
INT64_MIN = -2 ** 63


def as_int(v, first=True):
    """v as an int if torch's argument parser takes it for one, else None. The parser takes ints, numpy ints,
    SymInts and one-element integer tensors; inside an int list it also takes bools, except as the first item
    (the one it inspects to pick the overload): stride=(1, True) is accepted, (True, 1) and True are not."""
    t = type(v)
    if t is int:
        return v
    if t is bool:
        return None if first else int(v)
    if isinstance(v, torch.Tensor):
        return int(v) if v.numel() == 1 and not (v.is_floating_point() or v.is_complex()) else None
    if isinstance(v, torch.SymInt):
        return v
    if isinstance(v, numbers.Integral):
        return operator.index(v)
    return None


def _overflow(values, op, name):
    """The error for ints past int64 among values, or None."""
    if any(not INT64_MIN <= v <= INT64_MAX for v in values if type(v) is int):
        return FastconvOverflowError(f"fastconv.{op}: {name} does not fit in int64, got {tuple(values)}")
    return None


def _report(error, deferred):
    """Raises error now, or (deferred: a list) records it for raise_deferred."""
    if deferred is None:
        raise error
    deferred.append(error)


def raise_deferred(deferred):
    """torch's parser matches every argument's type first (a lone value, or the first item of a list: errors
    raised then, left to right), and unpacks the values afterwards in the C++ call's argument order, which GCC
    evaluates right to left: of the unpacking errors (a later list item of the wrong type, an int past int64),
    the last argument's comes first."""
    if deferred:
        raise deferred[-1]


def int_list(value, op, name, n=None, deferred=None):
    """torch's parsing of an int-list argument (stride, kernel_size, ...): an int or a list / tuple /
    torch.Size of ints -> tuple of Python ints, of the length given (a lone int -> 1-tuple; fit() then
    broadcasts or rejects the length). A value or item of another type raises FastconvTypeError, one past int64
    FastconvOverflowError, as the parser does; the functional API parses every argument this way before it
    checks any value or tensor, so the first error is the one torch reports. n: the length the messages name;
    deferred: a list that collects the unpacking errors (see raise_deferred) instead of raising them."""
    what = "ints" if n is None else f"{n} ints"
    # Fast path for what modules pass (plain ints and int tuples).
    if type(value) is int:
        items = (value,)
    elif type(value) is tuple and all(type(v) is int for v in value):
        items = value
    elif isinstance(value, (list, tuple)):  # not a str, set, range, array or iterator
        items = tuple(as_int(v, first=i == 0) for i, v in enumerate(value))
        if any(v is None for v in items):
            error = FastconvTypeError(f"fastconv.{op}: {name} must be an int or a tuple of {what}, got {value!r}")
            if items[0] is None:
                raise error
            _report(error, deferred)
            return tuple(1 if v is None else v for v in items)
    else:
        v = as_int(value)
        if v is None:
            raise FastconvTypeError(f"fastconv.{op}: {name} must be an int or a tuple of {what}, got {value!r}")
        items = (v,)
    error = _overflow(items, op, name)
    if error is not None:
        _report(error, deferred)
    return items


def fit(items, n, op, name):
    """A parsed int list (int_list) -> n ints: one value is repeated for every axis; another length raises
    FastconvValueError (torch: RuntimeError)."""
    if len(items) == n:
        return items
    if len(items) == 1:
        return items * n
    raise FastconvValueError(f"fastconv.{op}: {name} must be an int or a tuple of {n} ints, got {items!r}")


def int_arg(value, op, name, what="an int", deferred=None):
    """torch's parsing of a lone int argument (groups, divisor_override): a bool or float is a TypeError; one
    past int64 an unpacking error (see int_list)."""
    v = as_int(value)
    if v is None:
        raise FastconvTypeError(f"fastconv.{op}: {name} must be {what}, got {type(value).__name__} {value!r}")
    error = _overflow((v,), op, name)
    if error is not None:
        _report(error, deferred)
    return v


def check_int64(values, op, name):
    """The ops take int64 values; torch raises ValueError or TypeError ("Overflow when unpacking long long")
    past that."""
    if any(v > INT64_MAX or v < INT64_MIN for v in values):
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
    """groups, parsed by int_arg, must be positive."""
    if groups <= 0:
        raise FastconvValueError(f"fastconv.{op}: groups must be a positive int, got {groups!r}")


def check_tensor(t, op, name):
    if not isinstance(t, torch.Tensor):
        raise FastconvTypeError(f"fastconv.{op}: {name} must be a Tensor, got {type(t).__name__}")


# Under torch.autocast the fastconv ops cast float16/bfloat16 arguments to float32 on the CPU, and the convolutions
# cast theirs to the region's low-precision dtype on CUDA (fastconv/_autocast.py).
_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_autocast_warned = False


def autocast_casts(t):
    """True if an autocast region for t's device is active, where a fastconv op casts t itself (CPU: to float32)."""
    global _autocast_warned
    # Only cpu and cuda have autocast: torch.is_autocast_enabled raises for others (meta, used for shape
    # inference).
    if t.dtype not in _AUTOCAST_DTYPES or t.device.type not in ("cpu", "cuda") \
            or not torch.is_autocast_enabled(t.device.type):
        return False
    if not _autocast_warned and t.dtype != torch.float32 and t.device.type == "cpu":
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
    check_same_device(a, an, b, bn, op)


def check_same_device(a, an, b, bn, op):
    if a.device != b.device:
        raise FastconvError(f"fastconv.{op}: {an} and {bn} must be on the same device, got {a.device} and {b.device}")


def common_dtype(x, weight, bias):
    """x, weight and bias in one dtype where torch lets theirs differ: an empty input (a batch of 0: x's dtype;
    0 channels: the promoted one, as torch's "Empty" convolution backend computes), and a bias its checks skip
    (string padding, transposed convolution: the input's). Under autocast the op casts them itself."""
    if autocast_casts(x):
        return x, weight, bias
    dtype = x.dtype
    if weight.dtype != dtype:
        if x.shape[0] != 0:
            dtype = torch.promote_types(x.dtype, weight.dtype)
        x, weight = x.to(dtype), weight.to(dtype)
    if bias is not None and bias.dtype != dtype:
        bias = bias.to(dtype)
    return x, weight, bias


def empty_input(x, spatial):
    """A batch of 0 or 0 channels: torch's convolutions compute nothing there (its "Empty" backend) and skip
    their input / weight dtype check."""
    return x.dim() == spatial + 2 and x.shape[0] == 0 or x.shape[-spatial - 1] == 0


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
