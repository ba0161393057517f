"""Autograd and fake (meta) registrations of the ops that fastconv._C defines (namespace torch.ops.fastconv)."""
from . import conv  # noqa: F401
from . import conv_transpose  # noqa: F401
