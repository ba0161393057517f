"""fastconv.nn modules; each file adds its classes to __all__."""
from .conv import Conv1d, Conv2d

__all__ = ["Conv1d", "Conv2d"]
from .adaptive_pooling import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d  # noqa: E402
__all__ += ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"]
