"""Fake implementations of the adaptive pooling ops (shapes and strides for torch.compile and opcheck).

Their autograd kernels are C++ (csrc/bindings/adaptive_pool_autograd.cpp). Backward ops are built from the ops
themselves, so derivatives of any order exist:
  adaptive_avg_pool2d(x, out)                 -> dx   = adaptive_avg_pool2d_backward(gy, x.shape, cl)
  adaptive_avg_pool2d_backward(gy, size, cl)  -> dgy  = adaptive_avg_pool2d(ggx, gy.shape[2:])   (linear, adjoint)
  adaptive_max_pool2d(x, out) -> (y, idx)     -> dx   = adaptive_max_pool2d_backward(gy, idx, x.shape, cl)
  adaptive_max_pool2d_backward(gy, idx, ...)  -> dgy  = adaptive_max_pool2d_gather(ggx, idx)
  adaptive_max_pool2d_gather(x, idx)          -> dx   = adaptive_max_pool2d_backward(gy, idx, x.shape, cl)
(cl: whether grad_input takes the channels_last layout of the forward's input.)
"""
import torch

from ._layout import activation_format, empty_activation


def _backward_format(channels_last, a, b):
    return torch.channels_last if channels_last else activation_format(a, b)


# ---- fake (meta) implementations: shapes and strides only, used by torch.compile and opcheck ----

@torch.library.register_fake("fastconv::adaptive_avg_pool2d")
def _adaptive_avg_pool2d_fake(input, output_size):
    n, c = input.shape[:2]
    return empty_activation((n, c, output_size[0], output_size[1]), input, activation_format(input, input))


@torch.library.register_fake("fastconv::adaptive_avg_pool2d_backward")
def _adaptive_avg_pool2d_backward_fake(grad_output, input_size, channels_last):
    fmt = _backward_format(channels_last, grad_output, grad_output)
    return empty_activation(tuple(input_size), grad_output, fmt)


@torch.library.register_fake("fastconv::adaptive_max_pool2d")
def _adaptive_max_pool2d_fake(input, output_size):
    n, c = input.shape[:2]
    shape = (n, c, output_size[0], output_size[1])
    fmt = activation_format(input, input)
    indices = torch.empty(shape, dtype=torch.int64, device=input.device, memory_format=fmt)
    return empty_activation(shape, input, fmt), indices


@torch.library.register_fake("fastconv::adaptive_max_pool2d_backward")
def _adaptive_max_pool2d_backward_fake(grad_output, indices, input_size, channels_last):
    fmt = _backward_format(channels_last, grad_output, indices)
    return empty_activation(tuple(input_size), grad_output, fmt)


@torch.library.register_fake("fastconv::adaptive_max_pool2d_gather")
def _adaptive_max_pool2d_gather_fake(input, indices):
    return empty_activation(tuple(indices.shape), input, activation_format(input, indices))
