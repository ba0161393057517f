"""Autocast rules for the fastconv ops, torch's policy per device.

CPU: fastconv's CPU kernels are float32/float64 only, so every op in torch.ops.fastconv that takes floating
tensors gets torch's "fp32" autocast policy: inside an autocast region its float16/bfloat16/float32 tensor
arguments are cast to float32 (float64 is left alone, as torch does) and the op runs with autocast disabled.
The cast is an ordinary differentiable torch op, so gradients flow back in the dtype of the original tensors.
Outputs are float32; the next autocast-listed torch op (e.g. a Linear) casts them to the low-precision dtype
again.

CUDA: as torch's own CUDA autocast list, the convolution ops run in the region's low-precision dtype
(torch.get_autocast_dtype("cuda"): float16 or bfloat16): their float16/bfloat16/float32 arguments are cast to
it (float64 is left alone), and the pooling ops have no rule (they run in their input's dtype, as torch's
pooling does). Casting everything to float32 on CUDA too, as an earlier version did, kept mixed-precision
training off the tensor-core kernels and returned float32 where torch returns half.

The Python argument checks (fastconv/nn/_args.py) accept the mixed dtypes that autocast produces (e.g. a
bfloat16 activation coming out of an autocast Linear meeting a float32 conv weight) only while autocast is
enabled for that device; on the CPU they warn once that fastconv computes such ops in float32.

Ops registered later (e.g. by a fastconv build that defines more ops after import) can be covered by calling
register_all() again; it skips ops already registered.
"""
import torch

_registered = set()
_LIB = None  # the torch.library.Library holding the CUDA rules (kept alive for the process)


def _fastconv_op_names():
    return sorted({n.split(".")[0] for n in torch._C._dispatch_get_all_op_names() if n.startswith("fastconv::")})


def _packet(qualname):
    ns, name = qualname.split("::")
    return getattr(getattr(torch.ops, ns), name)


def _takes_tensors(qualname):
    packet = _packet(qualname)
    for overload in packet.overloads():
        schema = getattr(packet, overload)._schema
        if any("Tensor" in str(a.type) for a in schema.arguments):
            return True
    return False


def cuda_casts_to_low_precision(qualname):
    """Whether CUDA autocast casts this op's arguments to the low-precision dtype (the convolutions), rather than
    leaving them alone (pooling)."""
    return "conv" in qualname.split("::")[-1]


def cast_floating(args, dtype, device_type="cuda"):
    """args with every float16/bfloat16/float32 tensor on device_type cast to dtype (inside lists and tuples too);
    float64 and everything else unchanged, as torch's autocast casts."""
    def cast(a):
        if isinstance(a, torch.Tensor):
            if a.device.type == device_type and a.dtype in (torch.float16, torch.bfloat16, torch.float32):
                return a.to(dtype)
            return a
        if isinstance(a, (list, tuple)):
            return type(a)(cast(x) for x in a)
        return a
    return tuple(cast(a) for a in args)


def _register_cuda_low_precision(qualname):
    """The op under CUDA autocast: arguments cast to torch.get_autocast_dtype("cuda"), then run with autocast
    off (what torch.library.register_autocast does for a fixed dtype; the dtype here is the region's)."""
    global _LIB
    if _LIB is None:
        _LIB = torch.library.Library("fastconv", "IMPL")
    key = torch._C.DispatchKey.AutocastCUDA
    packet = _packet(qualname)
    name = qualname.split("::")[1]
    for overload in packet.overloads():
        op = getattr(packet, overload)

        def run(*args, _op=op, **kwargs):
            with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(key)):
                return _op(*cast_floating(args, torch.get_autocast_dtype("cuda")), **kwargs)

        if op.has_kernel_for_dispatch_key(key):  # the Python dispatcher's copy (torch.compile traces it)
            op.py_kernels.pop(key, None)
        op.py_impl(key)(run)
        opname = name if overload == "default" else f"{name}.{overload}"
        _LIB.impl(opname, lambda _keyset, *args, _run=run, **kwargs: _run(*args, **kwargs), "AutocastCUDA",
                  with_keyset=True)


def register_all():
    """Register the autocast rules for every fastconv op taking tensors; returns the ops newly done."""
    done = []
    for qualname in _fastconv_op_names():
        if qualname in _registered or not _takes_tensors(qualname):
            continue
        if torch.amp.is_autocast_available("cpu"):
            torch.library.register_autocast(qualname, "cpu", torch.float32)
        if torch.amp.is_autocast_available("cuda") and cuda_casts_to_low_precision(qualname):
            _register_cuda_low_precision(qualname)
        _registered.add(qualname)
        done.append(qualname)
    return done


register_all()
