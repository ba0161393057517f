"""Which devices and dtypes fastconv has kernels for: shared by convert() (a module's parameters) and the
functional switch (a call's tensors), so both leave the same things to torch and say so in the same words."""
import torch

from .nn._args import FLOAT_DTYPES_CPU, FLOAT_DTYPES_CUDA


def device_supported(device_type):
    if device_type in ("cpu", "meta"):
        return True
    if device_type == "cuda":
        return torch._C._dispatch_has_kernel_for_dispatch_key("fastconv::conv2d", "CUDA")
    return False


def float_supported(dtype, device_type):
    return dtype in (FLOAT_DTYPES_CUDA if device_type == "cuda" else FLOAT_DTYPES_CPU)


def tensor_reason(name, t, data=False):
    """None if fastconv has kernels for t's device and dtype; otherwise why not. Integer tensors pass (indices,
    counters) unless data: the tensor the kernel computes on (a call's input), which must be floating."""
    dev = t.device.type
    if not device_supported(dev):
        return f"{name} is on device '{dev}', for which this fastconv build has no kernels"
    if (data or t.is_floating_point() or t.is_complex()) and not float_supported(t.dtype, dev):
        return f"{name} has dtype {t.dtype}, for which fastconv has no {dev} kernels"
    return None
