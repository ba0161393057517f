"""fastconv.nn modules; each file adds its classes to __all__."""
from .conv import Conv1d, Conv2d

__all__ = ["Conv1d", "Conv2d"]
from .pooling import __all__ as _pooling_all, AvgPool1d, AvgPool2d, LPPool1d, LPPool2d, MaxPool1d, MaxPool2d, MaxUnpool1d, MaxUnpool2d  # noqa: F401,E402,E501
__all__ += _pooling_all
