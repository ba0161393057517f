"""fastconv.nn modules; each file adds its classes to __all__."""
from .conv import Conv1d, Conv2d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d

__all__ = ["Conv1d", "Conv2d"]
__all__ += ["ConvTranspose1d", "ConvTranspose2d"]
