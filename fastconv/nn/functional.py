"""The functional API, mirroring torch.nn.functional for the ops fastconv implements."""
from ._functional_conv import conv1d, conv2d  # noqa: F401

__all__ = ["conv1d", "conv2d"]
