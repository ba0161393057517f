"""Autograd and fake implementations of the adaptive pooling ops.

Backward ops are built from the ops themselves, so derivatives of any order exist:
  adaptive_avg_pool2d(x, out)                 -> dx   = adaptive_avg_pool2d_backward(gy, x.shape, cl)
  adaptive_avg_pool2d_backward(gy, size, cl)  -> dgy  = adaptive_avg_pool2d(ggx, gy.shape[2:])   (linear, adjoint)
  adaptive_max_pool2d(x, out) -> (y, idx)     -> dx   = adaptive_max_pool2d_backward(gy, idx, x.shape, cl)
  adaptive_max_pool2d_backward(gy, idx, ...)  -> dgy  = adaptive_max_pool2d_gather(ggx, idx)
  adaptive_max_pool2d_gather(x, idx)          -> dx   = adaptive_max_pool2d_backward(gy, idx, x.shape, cl)
(cl: whether grad_input takes the channels_last layout of the forward's input.)
"""
import torch

from ._autograd import register_autograd
from ._layout import activation_format, empty_activation, is_channels_last

_ops = torch.ops.fastconv


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


# ---- autograd ----

def _avg_setup(ctx, inputs, output):
    input, _ = inputs
    ctx.input_size = list(input.shape)
    ctx.channels_last = is_channels_last(input)


def _avg_backward(ctx, grad):
    if not ctx.needs_input_grad[0]:
        return None, None
    return _ops.adaptive_avg_pool2d_backward(grad, ctx.input_size, ctx.channels_last), None


def _avg_backward_setup(ctx, inputs, output):
    grad_output = inputs[0]
    ctx.output_size = list(grad_output.shape[2:])


def _avg_backward_backward(ctx, ggx):
    if not ctx.needs_input_grad[0]:
        return None, None, None
    return _ops.adaptive_avg_pool2d(ggx, ctx.output_size), None, None


def _max_setup(ctx, inputs, output):
    input, _ = inputs
    ctx.save_for_backward(output[1])
    ctx.input_size = list(input.shape)
    ctx.channels_last = is_channels_last(input)
    ctx.set_materialize_grads(False)  # no zero-filled int64 gradient for the indices output on every backward


def _max_backward(ctx, grad, _grad_indices):
    if not ctx.needs_input_grad[0] or grad is None:
        return None, None
    (indices,) = ctx.saved_tensors
    return _ops.adaptive_max_pool2d_backward(grad, indices, ctx.input_size, ctx.channels_last), None


def _max_backward_setup(ctx, inputs, output):
    _, indices, _, _ = inputs
    ctx.save_for_backward(indices)


def _max_backward_backward(ctx, ggx):
    if not ctx.needs_input_grad[0]:
        return None, None, None, None
    (indices,) = ctx.saved_tensors
    return _ops.adaptive_max_pool2d_gather(ggx, indices), None, None, None


def _gather_setup(ctx, inputs, output):
    input, indices = inputs
    ctx.save_for_backward(indices)
    ctx.input_size = list(input.shape)
    ctx.channels_last = is_channels_last(input)


def _gather_backward(ctx, grad):
    if not ctx.needs_input_grad[0]:
        return None, None
    (indices,) = ctx.saved_tensors
    return _ops.adaptive_max_pool2d_backward(grad, indices, ctx.input_size, ctx.channels_last), None


register_autograd("fastconv::adaptive_avg_pool2d", _avg_backward, setup_context=_avg_setup)
register_autograd(
    "fastconv::adaptive_avg_pool2d_backward", _avg_backward_backward, setup_context=_avg_backward_setup)
register_autograd("fastconv::adaptive_max_pool2d", _max_backward, setup_context=_max_setup)
register_autograd(
    "fastconv::adaptive_max_pool2d_backward", _max_backward_backward, setup_context=_max_backward_setup)
register_autograd(
    "fastconv::adaptive_max_pool2d_gather", _gather_backward, setup_context=_gather_setup)
