"""Pooling window arguments that passed the functional API's checks, remembered for the next call.

A pooling layer calls the functional API with the same window arguments every time, and checking them again
(int_list, fit, positivity, padding against the kernel: a dozen small Python functions) cost more than the kernel
on small layers, and about 50 us per call when the caches had just been flushed by a large tensor (measured
on the 2-core machine: fastconv.nn.AvgPool2d took 126 us on 1x16x8x8 after reading 64 MiB, 85 us with this
lookup; torch's takes 43-45 us). The first call takes the full path and records
the checked, lifted arguments; later calls with a batched 2-d float32/float64 input whose every spatial
size is large enough for a non-empty output (so no input-dependent check could fail) reuse them.
"""
import torch

_FAST_DTYPES = (torch.float32, torch.float64)
_WINDOWS = {}  # key -> (lifted op arguments, min_h, min_w)
_MAX_WINDOWS = 256  # a model has a few distinct windows; a sweep over many must not grow this without bound


def _plain(value):
    """An int or a tuple of ints exactly (bool and float are not: their checks raise)."""
    return type(value) is int or (type(value) is tuple and all(type(v) is int for v in value))


def window_key(kind, kernel_size, stride, padding, dilation, divisor_override=None):
    """Cache key for these caller arguments, or None when they are not all plain ints (lists, SymInts, floats,
    bools: the checked path handles and reports those)."""
    if not (_plain(kernel_size) and _plain(padding) and _plain(dilation)
            and (stride is None or _plain(stride))
            and (divisor_override is None or type(divisor_override) is int)):
        return None
    return kind, kernel_size, stride, padding, dilation, divisor_override


def cached_window(input, key):
    """The op's lifted window arguments for a batched 2-d input if `key`'s arguments were checked before and
    the input cannot fail the remaining checks; else None."""
    if key is None or torch.compiler.is_dynamo_compiling():
        return None
    entry = _WINDOWS.get(key)
    if entry is None or type(input) is not torch.Tensor or input.dim() != 4 or input.dtype not in _FAST_DTYPES:
        return None
    args, min_h, min_w = entry
    _, c, h, w = input.shape
    return args if c > 0 and h >= min_h and w >= min_w else None


def remember_window(key, args, kernel, padding, dilation):
    """Records checked 2-d window arguments. min sizes: the input sizes from which the output has at least one
    element whatever ceil_mode is (floor((size + 2p - d(k-1) - 1) / s) + 1 >= 1)."""
    if key is None or torch.compiler.is_dynamo_compiling():
        return
    min_h, min_w = (max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation))
    if len(_WINDOWS) >= _MAX_WINDOWS:
        _WINDOWS.clear()
    _WINDOWS[key] = (args, min_h, min_w)
