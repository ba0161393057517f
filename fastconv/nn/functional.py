"""The functional API, mirroring torch.nn.functional for the ops fastconv implements."""
from ._functional_conv import conv1d, conv2d  # noqa: F401

__all__ = ["conv1d", "conv2d"]
from ._functional_adaptive_pool import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d, adaptive_max_pool2d  # noqa: F401,E501
__all__ += ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d"]
