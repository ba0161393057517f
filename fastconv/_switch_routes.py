"""Which torch functions the functional switch (fastconv/functional_switch.py) routes, and to what.

The keys are the objects a TorchFunctionMode is handed (checked on torch 2.13): F.conv2d *is* torch.conv2d,
F.avg_pool2d is torch._C._nn.avg_pool2d, F.avg_pool1d / F.adaptive_avg_pool1d are torch's builtins, and the
other F functions hand the mode themselves; F.max_pool2d(..., return_indices=True) hands it
F.max_pool2d_with_indices (boolean_dispatch calls that directly). torch.max_pool2d and friends are listed for
code that calls them directly. A value is (the name the report uses, fastconv's function) or, for the
convolution / pooling fastconv has no kernels for, (name, None): those run on torch and are reported.
"""
import inspect

import torch
import torch.nn.functional as F

from .nn import functional as FF


def _with_indices(fast):
    """fastconv's `fast` for a torch function that always returns (output, indices): return_indices is
    forced on, whatever the call passed (positionally or by keyword)."""
    at = list(inspect.signature(fast).parameters).index("return_indices")

    def call(*args, **kwargs):
        kwargs.pop("return_indices", None)
        return fast(*args[:at], *args[at + 1:], return_indices=True, **kwargs)

    return call


def _table():
    routes = {}
    for name in FF.__all__:  # conv1d ... max_unpool2d: the F function of the same name
        routes[getattr(F, name)] = (f"F.{name}", getattr(FF, name))
    for d in ("1d", "2d"):
        routes[getattr(F, f"max_pool{d}_with_indices")] = (f"F.max_pool{d}", _with_indices(getattr(FF, f"max_pool{d}")))
        routes[getattr(F, f"adaptive_max_pool{d}_with_indices")] = (
            f"F.adaptive_max_pool{d}", _with_indices(getattr(FF, f"adaptive_max_pool{d}")))
        routes[getattr(torch, f"max_pool{d}")] = (f"torch.max_pool{d}", getattr(FF, f"max_pool{d}"))
    routes[torch.max_pool1d_with_indices] = ("torch.max_pool1d_with_indices", _with_indices(FF.max_pool1d))
    routes[torch.adaptive_max_pool1d] = ("torch.adaptive_max_pool1d", _with_indices(FF.adaptive_max_pool1d))
    for name in ("conv3d", "conv_transpose3d", "avg_pool3d", "max_pool3d", "max_pool3d_with_indices", "lp_pool3d",
                 "adaptive_avg_pool3d", "adaptive_max_pool3d", "adaptive_max_pool3d_with_indices", "max_unpool3d",
                 "fractional_max_pool2d", "fractional_max_pool2d_with_indices", "fractional_max_pool3d",
                 "fractional_max_pool3d_with_indices"):
        if hasattr(F, name):
            routes.setdefault(getattr(F, name), (f"F.{name.replace('_with_indices', '')}", None))
    return routes


ROUTES = _table()
