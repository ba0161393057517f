"""Memory-format rule for op outputs; mirrors csrc/bindings/tensor_checks.h so fake tensors match eager."""
import torch


def is_channels_last(t):
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def activation_format(a, b):
    return torch.channels_last if (is_channels_last(a) or is_channels_last(b)) else torch.contiguous_format


def empty_activation(shape, like, fmt):
    return torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=fmt)
