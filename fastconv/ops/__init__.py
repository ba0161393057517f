"""Fake (meta) registrations of the ops that fastconv._C defines (namespace torch.ops.fastconv).

Their autograd kernels are C++ (csrc/bindings/*_autograd.cpp)."""
from . import conv  # noqa: F401
from . import conv_transpose  # noqa: F401
from . import pool  # noqa: F401
from . import adaptive_pool  # noqa: F401
