"""The functional API, mirroring torch.nn.functional for the ops fastconv implements."""
from ._functional_adaptive_pool import (  # noqa: F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d)
from ._functional_conv import conv1d, conv2d  # noqa: F401
from ._functional_conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: F401
from ._functional_pool import (  # noqa: F401
    avg_pool1d, avg_pool2d, lp_pool1d, lp_pool2d, max_pool1d, max_pool2d, max_unpool1d, max_unpool2d)
from ._jit import refuse_script_function

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "lp_pool1d", "lp_pool2d",
    "max_unpool1d", "max_unpool2d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
]

# torch.jit.script of these (or of a function or module that calls them) raises one clear FastconvScriptError
for _name in __all__:
    refuse_script_function(globals()[_name])
del _name
