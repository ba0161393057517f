"""Pooling modules: subclasses of torch's (same constructor, attributes and repr) whose forward runs
fastconv's kernels. Constructors check that ceil_mode / count_include_pad are bools (torch's forward would
raise TypeError for anything else); return_indices is tested for truth, as torch's is."""
import torch

from .. import _functional_pool as F
from ._common import checked_init, refuse_script_module


class MaxPool1d(torch.nn.MaxPool1d):
    __init__ = checked_init(torch.nn.MaxPool1d, ("ceil_mode",))
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class MaxPool2d(torch.nn.MaxPool2d):
    __init__ = checked_init(torch.nn.MaxPool2d, ("ceil_mode",))
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)


class AvgPool1d(torch.nn.AvgPool1d):
    __init__ = checked_init(torch.nn.AvgPool1d, ("ceil_mode", "count_include_pad"))
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AvgPool2d(torch.nn.AvgPool2d):
    __init__ = checked_init(torch.nn.AvgPool2d, ("ceil_mode", "count_include_pad"))
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class LPPool1d(torch.nn.LPPool1d):
    __init__ = checked_init(torch.nn.LPPool1d, ("ceil_mode",))
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.lp_pool1d(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)


class LPPool2d(torch.nn.LPPool2d):
    __init__ = checked_init(torch.nn.LPPool2d, ("ceil_mode",))
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input):
        return F.lp_pool2d(input, float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode)


class MaxUnpool1d(torch.nn.MaxUnpool1d):
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input, indices, output_size=None):
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool2d(torch.nn.MaxUnpool2d):
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "LPPool1d", "LPPool2d", "MaxUnpool1d",
           "MaxUnpool2d"]
