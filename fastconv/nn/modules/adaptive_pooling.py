"""AdaptiveAvgPool1d/2d and AdaptiveMaxPool1d/2d: subclasses of torch's modules (same constructor,
attributes and repr) whose forward runs fastconv's kernels."""
import torch

from .. import _functional_adaptive_pool as F
from ._common import refuse_script_module


class AdaptiveAvgPool1d(torch.nn.AdaptiveAvgPool1d):
    """torch.nn.AdaptiveAvgPool1d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """torch.nn.AdaptiveAvgPool2d on fastconv kernels (output_size (1, 1): global average pooling)."""
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool1d(torch.nn.AdaptiveMaxPool1d):
    """torch.nn.AdaptiveMaxPool1d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(torch.nn.AdaptiveMaxPool2d):
    """torch.nn.AdaptiveMaxPool2d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)
