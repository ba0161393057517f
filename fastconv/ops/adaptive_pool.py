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

from . import _checks as check
from ._layout import activation_format, empty_activation


def _backward_format(channels_last, a, b):
    return torch.channels_last if channels_last else activation_format(a, b)


# ---- fake (meta) implementations: the C++ ops' checks (adaptive_pool_args.cpp), then shapes and strides; used
# by torch.compile, opcheck and meta tensors ----

def _forward_shape(input, output_size, op):
    check.activation(input, op, "input")
    check.list_size(output_size, 2, op, "output_size")
    check.adaptive(input.shape, output_size, op)
    n, c = input.shape[:2]
    return (n, c, output_size[0], output_size[1])


def _averages_an_empty_plane(h, w, out_hw):
    """torch's adaptive average to 1x1 is a mean over the plane: NaN for an empty plane, which its pooling kernel
    would reject (adaptive_pool_args.h, averages_an_empty_plane)."""
    return out_hw[0] == 1 and out_hw[1] == 1 and (h == 0 or w == 0)


@torch.library.register_fake("fastconv::adaptive_avg_pool2d")
def _adaptive_avg_pool2d_fake(input, output_size):
    op = "adaptive_avg_pool2d"
    check.activation(input, op, "input")
    check.list_size(output_size, 2, op, "output_size")
    if _averages_an_empty_plane(input.shape[2], input.shape[3], output_size):
        return input.new_empty((input.shape[0], input.shape[1], 1, 1))
    shape = _forward_shape(input, output_size, op)
    return empty_activation(shape, input, activation_format(input, input))


@torch.library.register_fake("fastconv::adaptive_max_pool2d")
def _adaptive_max_pool2d_fake(input, output_size):
    op = "adaptive_max_pool2d"
    shape = _forward_shape(input, output_size, op)
    check.value(shape[1] > 0, op, "input must have non-zero channels (torch's adaptive max pooling rejects them), "
                f"got shape {list(input.shape)}")
    fmt = activation_format(input, input)
    indices = torch.empty(shape, dtype=torch.int64, device=input.device, memory_format=fmt)
    return empty_activation(shape, input, fmt), indices


def _backward_checks(grad_output, input_size, op):
    check.list_size(input_size, 4, op, "input_size")
    check.adaptive(input_size, grad_output.shape[2:], op)
    check.adaptive_batch_channels(grad_output, input_size, op)


@torch.library.register_fake("fastconv::adaptive_avg_pool2d_backward")
def _adaptive_avg_pool2d_backward_fake(grad_output, input_size, channels_last):
    op = "adaptive_avg_pool2d_backward"
    check.activation(grad_output, op, "grad_output")
    check.list_size(input_size, 4, op, "input_size")
    if _averages_an_empty_plane(input_size[2], input_size[3], grad_output.shape[2:]):
        for v in input_size:
            check.value(v >= 0, op, f"input_size must be non-negative, got {list(input_size)}")
        check.adaptive_batch_channels(grad_output, input_size, op)
        return grad_output.new_empty(tuple(input_size))
    _backward_checks(grad_output, input_size, op)
    fmt = _backward_format(channels_last, grad_output, grad_output)
    return empty_activation(tuple(input_size), grad_output, fmt)


@torch.library.register_fake("fastconv::adaptive_max_pool2d_backward")
def _adaptive_max_pool2d_backward_fake(grad_output, indices, input_size, channels_last):
    op = "adaptive_max_pool2d_backward"
    check.activation(grad_output, op, "grad_output")
    check.indices(indices, grad_output, "grad_output", op)
    _backward_checks(grad_output, input_size, op)
    fmt = _backward_format(channels_last, grad_output, indices)
    return empty_activation(tuple(input_size), grad_output, fmt)


@torch.library.register_fake("fastconv::adaptive_max_pool2d_gather")
def _adaptive_max_pool2d_gather_fake(input, indices):
    op = "adaptive_max_pool2d_gather"
    check.activation(input, op, "input")
    check.indices(indices, input, "input", op, same_shape=False)
    check.value(indices.shape[:2] == input.shape[:2], op, f"indices of shape {list(indices.shape)} do not match "
                f"input of shape {list(input.shape)} in batch and channels")
    check.adaptive(input.shape, indices.shape[2:], op)
    return empty_activation(tuple(indices.shape), input, activation_format(input, indices))
