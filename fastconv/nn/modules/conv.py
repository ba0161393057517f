"""Conv1d / Conv2d: subclasses of torch's modules (same constructor, init, attributes, state_dict keys),
whose forward runs fastconv's kernels. Non-zero padding modes are applied inside the kernel."""
import torch

from .._fast_call import fast_conv1d, fast_conv2d
from .._functional_conv import conv_nd
from ._common import refuse_script_module


class Conv1d(torch.nn.Conv1d):
    """torch.nn.Conv1d on fastconv kernels; also accepts padding='causal'."""
    __prepare_scriptable__ = refuse_script_module

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None):
        causal = isinstance(padding, str) and padding == "causal"
        super().__init__(in_channels, out_channels, kernel_size, stride, 0 if causal else padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        if causal:
            self.padding = "causal"
            self._reversed_padding_repeated_twice = [self.dilation[0] * (self.kernel_size[0] - 1), 0]

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros" or self.padding == "causal":
            return conv_nd(input, weight, bias, self.stride, 0, self.dilation, self.groups, self.padding_mode, 1,
                           "conv1d", pads=self._reversed_padding_repeated_twice)
        y = fast_conv1d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        if y is not None:
            return y
        return conv_nd(input, weight, bias, self.stride, self.padding, self.dilation, self.groups, "zeros", 1,
                       "conv1d")


class Conv2d(torch.nn.Conv2d):
    """torch.nn.Conv2d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            return conv_nd(input, weight, bias, self.stride, 0, self.dilation, self.groups, self.padding_mode, 2,
                           "conv2d", pads=self._reversed_padding_repeated_twice)
        y = fast_conv2d(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)
        if y is not None:
            return y
        return conv_nd(input, weight, bias, self.stride, self.padding, self.dilation, self.groups, "zeros", 2,
                       "conv2d")
