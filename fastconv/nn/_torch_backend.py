"""Which CPU backend torch's convolution would pick, for the few answers of torch that depend on it.

torch checks some things only in some of its convolution backends: its oneDNN backend rejects a bias of another
dtype under padding='same' / 'valid' (the other backends add it), and returns an empty result for a transposed
convolution into an empty output plane (its reference kernels raise "Output size is too small"). To give
torch's answer there, fastconv asks which backend torch would have run. This follows torch 2.13's
ConvParams::use_mkldnn (aten/src/ATen/native/Convolution.cpp) for CPU tensors.
"""
import torch

from ._args import empty_input


def torch_uses_onednn(x, weight, stride, dilation, groups, spatial, output_padding=None):
    """Whether torch runs this convolution (transposed when output_padding is given) on oneDNN. x: the input as
    passed (batched or not, 1-d or 2-d); stride, dilation, output_padding: per-axis tuples."""
    if x.dtype != torch.float32 or x.device.type != "cpu":
        return False
    if empty_input(x, spatial):  # torch's "Empty" backend comes first
        return False
    n = x.shape[0] if x.dim() == spatial + 2 else 1
    if output_padding is not None and any(o >= s for o, s in zip(output_padding, stride)):
        return False  # is_output_padding_big
    kernel = tuple(weight.shape[2:])
    kh, kw = (1,) + kernel if spatial == 1 else kernel  # torch runs 1-d as 2-d with H == 1
    if kh == kw == 1 and not (any(v != 1 for v in stride + dilation) or n >= 16 or torch.get_num_threads() > 1):
        return False  # a 1x1 convolution on one thread: its reference kernel is faster
    return groups > 1 or (kh > 3 and kw > 3) or n > 1 or x.numel() > 20480
