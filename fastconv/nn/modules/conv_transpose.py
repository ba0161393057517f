"""ConvTranspose1d / ConvTranspose2d: subclasses of torch's modules (same constructor, init, attributes,
state_dict keys, weight layout (in_channels, out_channels/groups, *kernel_size)), whose forward runs
fastconv's kernels. forward(input, output_size=None) turns output_size into output_padding with torch's
own _output_padding (same valid range, same error)."""
import torch

from ...errors import FastconvValueError
from .._fast_call import fast_conv_transpose2d
from .._functional_conv_transpose import conv_transpose_nd
from ._common import refuse_script_module


def _forward(module, input, output_size, spatial, op):
    if module.padding_mode != "zeros":
        raise FastconvValueError(f"Only `zeros` padding mode is supported for ConvTranspose{spatial}d")
    output_padding = module._output_padding(input, output_size, module.stride, module.padding, module.kernel_size,
                                            spatial, module.dilation)
    if spatial == 2:
        y = fast_conv_transpose2d(input, module.weight, module.bias, module.stride, module.padding, output_padding,
                                  module.groups, module.dilation)
        if y is not None:
            return y
    return conv_transpose_nd(input, module.weight, module.bias, module.stride, module.padding, output_padding,
                             module.groups, module.dilation, spatial, op)


class ConvTranspose1d(torch.nn.ConvTranspose1d):
    """torch.nn.ConvTranspose1d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input, output_size=None):
        return _forward(self, input, output_size, 1, "conv_transpose1d")


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """torch.nn.ConvTranspose2d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def forward(self, input, output_size=None):
        return _forward(self, input, output_size, 2, "conv_transpose2d")
