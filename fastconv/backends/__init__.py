"""Switches for fastconv's algorithms, in the spirit of torch.backends.cudnn:

    fastconv.backends.cpu.allow_winograd = False     # exact (direct / GEMM) convolutions only
    with fastconv.backends.cpu.flags(allow_winograd=False):
        ...

allow_winograd (default True): float32 3x3 stride-1 convolutions may use Winograd F(4x4, 3x3), which is
faster and slightly less exact: its relative error against a float64 reference is within 1e-5 on every
benchmarked layer (README, "Accuracy"), where the direct paths give ~1e-7. The setting is process-wide
(every thread), read when a convolution runs.
"""
import contextlib

from .. import _C
from ..errors import FastconvTypeError


class _CpuBackend:
    """fastconv.backends.cpu: switches of the CPU kernels."""

    @property
    def allow_winograd(self):
        return _C.winograd_allowed()

    @allow_winograd.setter
    def allow_winograd(self, value):
        if type(value) is not bool:
            raise FastconvTypeError(f"fastconv.backends.cpu.allow_winograd must be a bool, got {value!r}")
        _C.set_winograd_allowed(value)

    @contextlib.contextmanager
    def flags(self, allow_winograd=None):
        """Sets the given switches for the duration of a with block, then restores them."""
        old = self.allow_winograd
        try:
            if allow_winograd is not None:
                self.allow_winograd = allow_winograd
            yield
        finally:
            _C.set_winograd_allowed(old)

    def __repr__(self):
        return f"fastconv.backends.cpu(allow_winograd={self.allow_winograd})"


cpu = _CpuBackend()

__all__ = ["cpu"]
