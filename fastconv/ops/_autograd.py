"""register_autograd for fastconv's ops: torch.library.register_autograd's kernel without its per-call
argument re-normalisation.

torch.library.register_autograd registers, at the Autograd dispatch key, a kernel that runs an
autograd.Function whose forward redispatches below autograd and calls setup_context. On every call it also
rebuilds the argument list from the schema (torch/_library/utils.py fill_defaults), to restore arguments
the dispatcher dropped for equalling their defaults: measured 12-13 us per call here, more than the whole
kernel of a small layer, and half of fastconv's per-op overhead with autograd on. fastconv's schemas
declare no default values, so the arguments always arrive complete and that step has nothing to do.
This registers the same kind of kernel without it (and checks the no-defaults premise per op).
"""
import torch
from torch import _C

_LIBRARIES = {}


def register_autograd(qualname, backward, setup_context):
    """Like torch.library.register_autograd(qualname, backward, setup_context=setup_context), for an op
    whose schema has no default values, keyword-only arguments or tensor lists."""
    namespace, name = qualname.split("::")
    op = getattr(getattr(torch.ops, namespace), name).default
    for arg in op._schema.arguments:
        if arg.has_default_value() or arg.kwarg_only:
            raise ValueError(f"{qualname}: argument {arg.name} has a default or is keyword-only; use "
                             "torch.library.register_autograd")
    below_autograd = _C._after_autograd_keyset

    def forward(ctx, *args):
        keyset, args = args[-1], args[:-1]
        with _C._AutoDispatchBelowAutograd():
            result = op.redispatch(keyset & below_autograd, *args)
        setup_context(ctx, args, result)
        return result

    def backward_with_keyset(ctx, *grads):
        needs = ctx.needs_input_grad
        ctx.needs_input_grad = needs[:-1]  # the op's own arguments, without the keyset
        try:
            result = backward(ctx, *grads)
        finally:
            ctx.needs_input_grad = needs
        return (*result, None) if isinstance(result, tuple) else (result, None)

    function = type(f"FastconvBackward_{name}", (torch.autograd.Function,),
                    {"forward": staticmethod(forward), "backward": staticmethod(backward_with_keyset)})

    def autograd_kernel(keyset, *args):
        if _C.is_grad_enabled() and _C._any_requires_grad(*args):
            return function.apply(*args, keyset)
        with _C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & below_autograd, *args)

    if namespace not in _LIBRARIES:
        _LIBRARIES[namespace] = torch.library.Library(namespace, "IMPL")
    _LIBRARIES[namespace].impl(name, autograd_kernel, "Autograd", with_keyset=True)
