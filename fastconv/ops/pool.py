"""Fake implementations of the pooling ops (shapes and strides for torch.compile and opcheck).

Their autograd kernels are C++ (csrc/bindings/pool_autograd.cpp: the Python autograd.Function path cost more
than a whole kernel on small layers). Each backward is built from the ops themselves, so derivatives of any
order exist:
  max_pool2d_with_indices(x)          -> dx  = max_pool2d_backward_window(gy, idx, window)
  max_pool2d(x) (values only)         -> max_pool2d_with_indices' where a gradient is wanted
  max_pool2d_backward_window(gy, idx) -> dgy = max_pool2d_gather(ggx, idx)    (scatter-add's adjoint)
  max_pool2d_backward(gy, idx)        -> dgy = max_pool2d_gather(ggx, idx)    (scatter-add by indices)
  max_pool2d_gather(x, idx)           -> dx  = max_pool2d_backward(gy, idx)
  max_unpool2d(x, idx)                -> dx  = max_pool2d_gather(gy, idx)
  avg_pool2d(x)                       -> dx  = avg_pool2d_backward(gy)        (linear; adjoint pair)
  avg_pool2d_backward(gy)             -> dgy = avg_pool2d(ggx)
Indices are never differentiable.
"""
import torch

from . import _checks as check
from ._checks import pool_out_size  # noqa: F401  (fastconv.nn imports it from here)
from ._layout import activation_format, empty_activation


# ---- fake (meta) implementations: the C++ ops' checks (pool_ops.cpp), then shapes and strides; used by
# torch.compile, opcheck and meta tensors ----

def _pooled_shape(input, kernel_size, stride, padding, dilation, ceil_mode, op, is_max):
    check.activation(input, op, "input")
    n, c, h, w = input.shape
    oh, ow = check.pool_output_hw(c, h, w, kernel_size, stride, padding, dilation, ceil_mode, op, is_max)
    return (n, c, oh, ow)


@torch.library.register_fake("fastconv::max_pool2d_with_indices")
def _max_pool2d_fake(input, kernel_size, stride, padding, dilation, ceil_mode):
    shape = _pooled_shape(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", True)
    fmt = activation_format(input, input)
    y = empty_activation(shape, input, fmt)
    ind = torch.empty(shape, dtype=torch.int64, device=input.device, memory_format=fmt)
    return y, ind


@torch.library.register_fake("fastconv::max_pool2d")
def _max_pool2d_values_fake(input, kernel_size, stride, padding, dilation, ceil_mode):
    shape = _pooled_shape(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d", True)
    return empty_activation(shape, input, activation_format(input, input))


def _scatter(src, src_name, indices, out_hw, size_name, op):
    """scatter_by_indices' checks: src (N, C, OH, OW) and indices of its shape into a (N, C, *out_hw) result."""
    check.activation(src, op, src_name)
    check.indices(indices, src, src_name, op)
    check.non_negative_size(out_hw, op, size_name)
    n, c = src.shape[:2]
    return empty_activation((n, c, *out_hw), src, activation_format(src, indices))


@torch.library.register_fake("fastconv::max_pool2d_backward")
def _max_pool2d_backward_fake(grad_output, indices, input_size):
    return _scatter(grad_output, "grad_output", indices, input_size, "input_size", "max_pool2d_backward")


@torch.library.register_fake("fastconv::max_pool2d_backward_window")
def _max_pool2d_backward_window_fake(grad_output, indices, input_size, kernel_size, stride, padding, dilation):
    op = "max_pool2d_backward"
    check.pool_window(kernel_size, stride, padding, dilation, op)
    # grad_output must be what a max pooling of input_size with this window gives, in either ceil_mode (the op is
    # not told which): pool_window_args.cpp check_window_grad_output
    check.dim(grad_output, 4, op, "grad_output")
    check.non_negative_size(input_size, op, "input_size")
    n, c, oh, ow = grad_output.shape
    shapes = [tuple(pool_out_size(size, k, p, s, d, ceil)
                    for size, k, p, s, d in zip(input_size, kernel_size, padding, stride, dilation))
              for ceil in (False, True)]
    check.value((oh, ow) == shapes[0] or (oh, ow) == shapes[1], op, f"grad_output of shape {list(grad_output.shape)} "
                f"does not match the output shape {[n, c, *shapes[0]]} (or its ceil_mode one) of a max pooling of "
                f"input_size {list(input_size)} with kernel_size {tuple(kernel_size)}, stride {tuple(stride)}, padding "
                f"{tuple(padding)} and dilation {tuple(dilation)}")
    return _scatter(grad_output, "grad_output", indices, input_size, "input_size", op)


@torch.library.register_fake("fastconv::max_pool2d_gather")
def _max_pool2d_gather_fake(input, indices):
    op = "max_pool2d_gather"
    check.activation(input, op, "input")
    check.dim(indices, 4, op, "indices")
    check.type_(indices.dtype == torch.int64, op, f"indices must be int64, got {indices.dtype}")
    check.value(indices.shape[:2] == input.shape[:2], op, f"indices of shape {list(indices.shape)} do not match the "
                f"batch and channels of input {list(input.shape)}")
    n, c = input.shape[:2]
    return empty_activation((n, c, *indices.shape[2:]), input, activation_format(input, indices))


@torch.library.register_fake("fastconv::max_unpool2d")
def _max_unpool2d_fake(input, indices, output_size):
    return _scatter(input, "input", indices, output_size, "output_size", "max_unpool2d")


def _divisor(divisor_override, op):
    check.value(divisor_override != 0, op, "divisor_override must be non-zero")


@torch.library.register_fake("fastconv::avg_pool2d")
def _avg_pool2d_fake(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    op = "avg_pool2d"
    shape = _pooled_shape(input, kernel_size, stride, padding, (1, 1), ceil_mode, op, False)
    _divisor(divisor_override, op)
    return empty_activation(shape, input, activation_format(input, input))


@torch.library.register_fake("fastconv::avg_pool2d_backward")
def _avg_pool2d_backward_fake(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override):
    op = "avg_pool2d_backward"
    check.activation(grad_output, op, "grad_output")
    check.list_size(input_size, 2, op, "input_size")
    n, c = grad_output.shape[:2]
    oh, ow = check.pool_output_hw(c, *input_size, kernel_size, stride, padding, (1, 1), ceil_mode, op, False)
    _divisor(divisor_override, op)
    check.grad_output_shape(grad_output, (n, c, oh, ow), op, "pooling")
    return empty_activation((n, c, *input_size), grad_output, activation_format(grad_output, grad_output))
