"""Typed calls of the ops (fastconv._C.direct, csrc/bindings/direct_calls.cpp) for the functional API's common
calls. They run through the same dispatcher, kernels and errors as torch.ops.fastconv, 1.4-2.9 us sooner: torch.ops
matches the Python arguments against the op's schema generically (on a 1x4x4x4 input, 2 threads: avg_pool2d
6.1 -> 3.2 us, max_pool2d 4.0 -> 1.7, adaptive_avg_pool2d 4.4 -> 3.0, conv2d 7.6 -> 4.8; torch's own avg_pool2d
2.7), which is most of a small pooling layer's time. torch.ops also hands a call to an active TorchFunctionMode
and to tensor subclasses (__torch_function__), and torch.compile traces it: so callers pass plain tensors only
(torch.Tensor, nn.Parameter) and take `ops()`, which is torch.ops under a mode or while compiling."""
import torch

from .. import _C

_direct = _C.direct
_ops = torch.ops.fastconv


def ops():
    """fastconv._C.direct, or torch.ops.fastconv where a TorchFunctionMode is active or torch.compile traces
    (both entry points take the same arguments and return the same results)."""
    if torch._C._is_torch_function_mode_enabled() or torch.compiler.is_compiling():
        return _ops
    return _direct
