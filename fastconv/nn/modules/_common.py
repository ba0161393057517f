"""What fastconv.nn's modules share: bool-flag checks at construction and the refusal of torch.jit.script."""
import functools

from .._args import check_flag
from .._jit import refuse_script_module


def checked_init(base, flags):
    """An __init__ for a subclass of torch module `base`: base's own (same signature, shown by
    inspect.signature), then a check that each of `flags` (ceil_mode, count_include_pad) is a bool. torch's
    constructors store any value and its forward raises TypeError for anything but a bool; fastconv raises
    that TypeError (a FastconvTypeError) here, naming the argument, instead of at the first call."""
    init = base.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        for name in flags:
            check_flag(getattr(self, name), f"nn.{type(self).__name__}", name)

    return __init__


__all__ = ["checked_init", "refuse_script_module"]
