"""Argument normalisation and checks shared by the functional API (errors name the argument)."""
import numbers

import torch

FLOAT_DTYPES_CPU = (torch.float32, torch.float64)
FLOAT_DTYPES_CUDA = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def ntuple(value, n, op, name):
    """An int or a length-n sequence of ints -> tuple of n Python ints."""
    # Fast paths for what modules pass (plain ints and int tuples): the checks below go through the
    # numbers.Integral ABC, several microseconds per layer call.
    if type(value) is int:
        return (value,) * n
    if type(value) is tuple and len(value) == n and all(type(v) is int for v in value):
        return value
    if isinstance(value, bool):
        raise TypeError(f"fastconv.{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, numbers.Integral) or isinstance(value, torch.SymInt):
        return (value,) * n
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"fastconv.{op}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(items) == 1:
        items = items * n
    if len(items) != n or not all(isinstance(v, (numbers.Integral, torch.SymInt)) and not isinstance(v, bool)
                                  for v in items):
        raise ValueError(f"fastconv.{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(items)


def positive(values, op, name):
    if any(v <= 0 for v in values):
        raise ValueError(f"fastconv.{op}: {name} must be positive, got {tuple(values)}")
    return values


def non_negative(values, op, name):
    if any(v < 0 for v in values):
        raise ValueError(f"fastconv.{op}: {name} must be non-negative, got {tuple(values)}")
    return values


def check_tensor(t, op, name):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"fastconv.{op}: {name} must be a Tensor, got {type(t).__name__}")


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
        raise TypeError(f"fastconv.{op}: {name} must have a floating dtype ({names}) on {t.device.type}, "
                        f"got {t.dtype}")


def check_same(a, an, b, bn, op):
    if a.dtype != b.dtype and not (autocast_casts(a) and autocast_casts(b)):
        raise TypeError(f"fastconv.{op}: {an} and {bn} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise RuntimeError(f"fastconv.{op}: {an} and {bn} must be on the same device, got {a.device} and {b.device}")


def check_rank(t, ranks, op, name, meaning):
    if t.dim() not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"fastconv.{op}: expected {name} with {want} dimensions {meaning}, got {t.dim()} "
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
