"""Autocast rules for the fastconv ops: under torch.autocast they run on fastconv's kernels in float32.

fastconv's CPU kernels are float32/float64 only, so on the CPU (and, for symmetry, on CUDA) every op in
torch.ops.fastconv that takes floating tensors gets torch's "fp32" autocast policy: inside an autocast region
its float16/bfloat16/float32 tensor arguments are cast to float32 (float64 is left alone, as torch does) and
the op runs with autocast disabled. The cast is an ordinary differentiable torch op, so gradients flow back
in the dtype of the original tensors. Outputs are float32; the next autocast-listed torch op (e.g. a Linear)
casts them to the low-precision dtype again.

The Python argument checks (fastconv/nn/_args.py) accept the mixed dtypes that autocast produces (e.g. a
bfloat16 activation coming out of an autocast Linear meeting a float32 conv weight) only while autocast is
enabled for that device; they warn once that fastconv computes such ops in float32.

Ops registered later (e.g. by a fastconv build that defines more ops after import) can be covered by calling
register_all() again; it skips ops already registered.
"""
import torch

_DEVICE_TYPES = ("cpu", "cuda")
_registered = set()


def _fastconv_op_names():
    return sorted({n.split(".")[0] for n in torch._C._dispatch_get_all_op_names() if n.startswith("fastconv::")})


def _takes_tensors(qualname):
    ns, name = qualname.split("::")
    packet = getattr(getattr(torch.ops, ns), name)
    for overload in packet.overloads():
        schema = getattr(packet, overload)._schema
        if any("Tensor" in str(a.type) for a in schema.arguments):
            return True
    return False


def register_all():
    """Register the float32 autocast rule for every fastconv op taking tensors; returns the ops newly done."""
    done = []
    for qualname in _fastconv_op_names():
        if qualname in _registered or not _takes_tensors(qualname):
            continue
        for device_type in _DEVICE_TYPES:
            if torch.amp.is_autocast_available(device_type):
                torch.library.register_autocast(qualname, device_type, torch.float32)
        _registered.add(qualname)
        done.append(qualname)
    return done


register_all()
