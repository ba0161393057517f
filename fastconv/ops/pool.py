"""Fake implementations of the pooling ops (shapes and strides for torch.compile and opcheck).

Their autograd kernels are C++ (csrc/bindings/pool_autograd.cpp: the Python autograd.Function path cost more
than a whole kernel on small layers). Each backward is built from the ops themselves, so derivatives of any
order exist:
  max_pool2d_with_indices(x)          -> dx  = max_pool2d_backward_window(gy, idx, window)
  max_pool2d_backward_window(gy, idx) -> dgy = max_pool2d_gather(ggx, idx)    (scatter-add's adjoint)
  max_pool2d_backward(gy, idx)        -> dgy = max_pool2d_gather(ggx, idx)    (scatter-add by indices)
  max_pool2d_gather(x, idx)           -> dx  = max_pool2d_backward(gy, idx)
  max_unpool2d(x, idx)                -> dx  = max_pool2d_gather(gy, idx)
  avg_pool2d(x)                       -> dx  = avg_pool2d_backward(gy)        (linear; adjoint pair)
  avg_pool2d_backward(gy)             -> dgy = avg_pool2d(ggx)
Indices are never differentiable.
"""
import torch

from ._layout import activation_format, empty_activation


def pool_out_size(size, k, pad, stride, dil, ceil_mode):
    """torch's pooling_output_shape: the last window must start inside the input or the left padding."""
    out = (size + 2 * pad - dil * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pooled_shape(input, kernel_size, stride, padding, dilation, ceil_mode):
    n, c, h, w = input.shape
    oh = pool_out_size(h, kernel_size[0], padding[0], stride[0], dilation[0], ceil_mode)
    ow = pool_out_size(w, kernel_size[1], padding[1], stride[1], dilation[1], ceil_mode)
    return (n, c, oh, ow)


# ---- fake (meta) implementations: shapes and strides only, used by torch.compile and opcheck ----

@torch.library.register_fake("fastconv::max_pool2d_with_indices")
def _max_pool2d_fake(input, kernel_size, stride, padding, dilation, ceil_mode):
    shape = _pooled_shape(input, kernel_size, stride, padding, dilation, ceil_mode)
    fmt = activation_format(input, input)
    y = empty_activation(shape, input, fmt)
    ind = torch.empty(shape, dtype=torch.int64, device=input.device, memory_format=fmt)
    return y, ind


@torch.library.register_fake("fastconv::max_pool2d_backward")
def _max_pool2d_backward_fake(grad_output, indices, input_size):
    n, c = grad_output.shape[:2]
    return empty_activation((n, c, *input_size), grad_output, activation_format(grad_output, indices))


@torch.library.register_fake("fastconv::max_pool2d_backward_window")
def _max_pool2d_backward_window_fake(grad_output, indices, input_size, kernel_size, stride, padding, dilation):
    return _max_pool2d_backward_fake(grad_output, indices, input_size)


@torch.library.register_fake("fastconv::max_pool2d_gather")
def _max_pool2d_gather_fake(input, indices):
    n, c = input.shape[:2]
    return empty_activation((n, c, *indices.shape[2:]), input, activation_format(input, indices))


@torch.library.register_fake("fastconv::max_unpool2d")
def _max_unpool2d_fake(input, indices, output_size):
    n, c = input.shape[:2]
    return empty_activation((n, c, *output_size), input, activation_format(input, indices))


@torch.library.register_fake("fastconv::avg_pool2d")
def _avg_pool2d_fake(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    shape = _pooled_shape(input, kernel_size, stride, padding, (1, 1), ceil_mode)
    return empty_activation(shape, input, activation_format(input, input))


@torch.library.register_fake("fastconv::avg_pool2d_backward")
def _avg_pool2d_backward_fake(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override):
    n, c = grad_output.shape[:2]
    return empty_activation((n, c, *input_size), grad_output, activation_format(grad_output, grad_output))
