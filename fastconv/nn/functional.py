"""The functional API, mirroring torch.nn.functional for the ops fastconv implements."""
from ._functional_conv import conv1d, conv2d  # noqa: F401
from ._functional_conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: F401

__all__ = ["conv1d", "conv2d"]
__all__ += ["conv_transpose1d", "conv_transpose2d"]
