"""Switches for fastconv's algorithms, in the spirit of torch.backends.cudnn:

    fastconv.backends.cpu.allow_winograd = False     # exact (direct / GEMM) convolutions only
    with fastconv.backends.cpu.flags(allow_winograd=False):
        ...

allow_winograd (default True): float32 3x3 stride-1 convolutions may use Winograd F(4x4, 3x3), which is
faster and slightly less exact: its relative error against a float64 reference is within 1e-5 on every
benchmarked layer (README, "Algorithms and accuracy"), where the direct paths give ~2e-7. The setting is process-wide
(every thread), read when a convolution runs.

winograd_weight_cache_mb (default 512): inference (no grad, or a weight that does not require grad) keeps
the Winograd-transformed weights of recently run layers, up to this many MiB (4x the 3x3 weights' size), so
a model run again with unchanged weights skips the transform. An entry serves only the same tensor at the
same version counter: any in-place change misses. 0 turns the cache off (and empties it);
fastconv.backends.cpu.clear_winograd_weight_cache() empties it.

get_cpu_capability(): the kernel library loaded at import ("default", "avx2", "avx512"; "native" for a
FASTCONV_MARCH build), the best this CPU runs unless FASTCONV_CPU_CAPABILITY asks for a lower one.
"""
import contextlib

from .. import _C, _kernels
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

    @property
    def winograd_weight_cache_mb(self):
        return _C.winograd_weight_cache_mb()

    @winograd_weight_cache_mb.setter
    def winograd_weight_cache_mb(self, value):
        if type(value) is not int:
            raise FastconvTypeError(f"fastconv.backends.cpu.winograd_weight_cache_mb must be an int, got {value!r}")
        _C.set_winograd_weight_cache_mb(value)

    def get_cpu_capability(self):
        """The CPU kernels this process runs: "default" (baseline x86-64), "avx2", "avx512", or "native" (a
        FASTCONV_MARCH build); chosen at import from the CPU, FASTCONV_CPU_CAPABILITY can lower it (as
        torch.backends.cpu.get_cpu_capability() and ATEN_CPU_CAPABILITY)."""
        return _kernels.loaded_capability()

    def clear_winograd_weight_cache(self):
        """Drops every cached transformed weight."""
        _C.clear_winograd_weight_cache()

    @contextlib.contextmanager
    def flags(self, allow_winograd=None, winograd_weight_cache_mb=None):
        """Sets the given switches for the duration of a with block, then restores them."""
        old = self.allow_winograd, self.winograd_weight_cache_mb
        try:
            if allow_winograd is not None:
                self.allow_winograd = allow_winograd
            if winograd_weight_cache_mb is not None:
                self.winograd_weight_cache_mb = winograd_weight_cache_mb
            yield
        finally:
            _C.set_winograd_allowed(old[0])
            _C.set_winograd_weight_cache_mb(old[1])

    def __repr__(self):
        return (f"fastconv.backends.cpu(capability={self.get_cpu_capability()!r}, allow_winograd={self.allow_winograd}, "
                f"winograd_weight_cache_mb={self.winograd_weight_cache_mb})")


cpu = _CpuBackend()

__all__ = ["cpu"]
