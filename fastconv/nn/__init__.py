"""Modules with torch.nn's constructors, attributes and state_dict keys (subclasses of torch's)."""
from . import functional  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import __all__ as _modules_all

__all__ = ["functional"] + list(_modules_all)
