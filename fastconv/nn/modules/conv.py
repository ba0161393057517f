"""Conv1d / Conv2d: subclasses of torch's modules (same constructor, init, attributes, state_dict keys),
whose forward runs fastconv's kernels. Non-zero padding modes are applied inside the kernel."""
import torch

from .._functional_conv import conv_nd

_ops = torch.ops.fastconv
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
        return conv_nd(input, weight, bias, self.stride, self.padding, self.dilation, self.groups, "zeros", 1,
                       "conv1d")


class Conv2d(torch.nn.Conv2d):
    """torch.nn.Conv2d on fastconv kernels."""
    __prepare_scriptable__ = refuse_script_module

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode != "zeros":
            return conv_nd(input, weight, bias, self.stride, 0, self.dilation, self.groups, self.padding_mode, 2,
                           "conv2d", pads=self._reversed_padding_repeated_twice)
        y = _fast_conv2d(self, input, weight, bias)
        if y is not None:
            return y
        return conv_nd(input, weight, bias, self.stride, self.padding, self.dilation, self.groups, "zeros", 2,
                       "conv2d")


def _op_args(module):
    """The op's (stride, padding, dilation) lists for a zero-padded Conv2d with integer padding, rebuilt only
    when the module's attributes are replaced (the cache holds the tuples it was made from)."""
    cache = module.__dict__.get("_fastconv_op_args")
    stride, padding, dilation = module.stride, module.padding, module.dilation
    if cache is None or cache[0] is not stride or cache[1] is not padding or cache[2] is not dilation:
        args = None
        if (type(stride) is tuple and type(padding) is tuple and type(dilation) is tuple
                and all(type(v) is int for v in stride + padding + dilation) and len(padding) == 2):
            args = (list(stride), [padding[0], padding[0], padding[1], padding[1]], list(dilation))
        cache = (stride, padding, dilation, args)
        object.__setattr__(module, "_fastconv_op_args", cache)
    return cache[3]


def _fast_conv2d(module, input, weight, bias):
    """The op called directly for the common case (a batched 4-d input with channels, weight and bias of its
    dtype, integer padding, outside torch.compile's tracing): the functional path's argument parsing costs
    ~15 us per call, a tenth of a small layer. Anything unusual, and any error the op raises, goes through
    conv_nd, which checks everything in torch's order and raises fastconv's messages. Returns None then."""
    if torch.compiler.is_compiling() or type(input) is not torch.Tensor or input.dim() != 4:
        return None
    args = _op_args(module)
    if (args is None or input.dtype != weight.dtype or (bias is not None and bias.dtype != input.dtype)
            or input.shape[0] == 0 or input.shape[1] == 0 or type(module.groups) is not int):
        return None
    try:
        return _ops.conv2d(input, weight, bias, args[0], args[1], args[2], module.groups, "zeros")
    except Exception:  # noqa: BLE001 - conv_nd raises the error with fastconv's message
        return None
