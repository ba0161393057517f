"""fastconv: hand-written CPU and CUDA kernels for convolution and pooling, a drop-in for torch.nn.

    import fastconv
    y = fastconv.nn.functional.conv2d(x, w, b, padding="same")
    model = fastconv.nn.Conv2d(3, 64, 3, padding=1)
    with fastconv.enabled() as report:    # torch.nn.functional conv / pooling calls run on fastconv
        y = model(x)
"""
import torch  # noqa: F401  (the extension links against torch's libraries)

from ._extension_error import check_torch, extension_error

check_torch()  # the torch the extension was built against: an ImportError before loading it if it cannot work
try:
    from . import _kernels
    _kernels.load()  # the CPU kernel library for this CPU (or FASTCONV_CPU_CAPABILITY): _C calls into it
    from . import _C  # noqa: F401  registers the ops with the dispatcher
except ImportError as _exc:
    raise extension_error(_exc) from _exc
from . import errors
from .errors import FastconvError
from . import ops  # noqa: F401  registers their autograd and fake implementations
from . import nn
from ._info import build_info
from . import _autocast  # noqa: F401  autocast rules for the fastconv ops (run in float32 on the CPU)
from .convert import ConvertReport, convert
from .functional_switch import FunctionalReport, disable, enable, enabled, functional_report, is_enabled
from .fold import fold_batchnorm
from . import models
from . import backends
from ._version import __version__

__all__ = ["nn", "ops", "build_info", "__version__", "convert", "ConvertReport", "models", "errors",
           "FastconvError", "backends", "fold_batchnorm", "enabled", "enable", "disable", "is_enabled",
           "functional_report", "FunctionalReport"]
