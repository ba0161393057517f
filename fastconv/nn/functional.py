"""The functional API, mirroring torch.nn.functional for the ops fastconv implements."""
from ._functional_conv import conv1d, conv2d  # noqa: F401

__all__ = ["conv1d", "conv2d"]
from ._functional_pool import __all__ as _pool_all, avg_pool1d, avg_pool2d, lp_pool1d, lp_pool2d, max_pool1d, max_pool2d, max_unpool1d, max_unpool2d  # noqa: F401,E501
__all__ += _pool_all
