"""fastconv.convert: swap torch.nn convolution / pooling modules of any model for fastconv's.

    model, report = fastconv.convert(model)      # in place; report says what was swapped and what was left

How the swap works: fastconv's modules are subclasses of torch's with the same attributes, so a module is
converted by creating the fastconv object without running __init__ and giving it the old module's __dict__
(a shallow copy). The _parameters / _buffers / hook dicts are therefore the *same objects*: `new.weight is
old.weight`, optimizer state keyed on those Parameters stays valid, hook handles still remove their hooks,
and training/eval mode, device and dtype are unchanged. No tensor is copied or re-initialised.

Only modules whose type is exactly one of the torch classes below are converted: a user subclass (or a
parametrized / lazy module, whose class is generated or different) may override forward and is left alone.
Modules whose parameters have a dtype/device fastconv has no kernels for are left too, and so are layers
without parameters (pooling) in a model whose parameters have one (their inputs would have it too), and
convolution / pooling classes fastconv has no kernels for (NO_KERNEL: the 3-d ones, fractional max pooling);
every module left is listed in the report with the reason, once, and strict=True raises instead.

Pooling or convolution written as function calls inside a forward (F.adaptive_avg_pool2d(x, 1)) is no module
and is not seen here: fastconv.enabled() routes those calls (fastconv/functional_switch.py).
"""
from __future__ import annotations

import copy
import dataclasses
import logging

import torch

from ._support import tensor_reason

logger = logging.getLogger("fastconv.convert")

# torch.nn class names fastconv.nn provides under the same name (looked up by name at convert time, so a
# fastconv build that lacks one of them simply reports it as left).
CONVERTIBLE = (
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "LPPool1d", "LPPool2d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
    "MaxUnpool1d", "MaxUnpool2d",
)

# torch.nn convolution / pooling classes fastconv has no kernels for: left on torch (their subclasses and lazy
# versions too) and listed in the report, so that the report accounts for every such layer of the model.
NO_KERNEL = (
    "Conv3d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d", "LPPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d",
    "MaxUnpool3d", "FractionalMaxPool2d", "FractionalMaxPool3d",
)


@dataclasses.dataclass
class ConvertReport:
    """swapped: (qualified name, torch class name); left: (qualified name, class name, reason)."""

    swapped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    left: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"fastconv.convert: {len(self.swapped)} module(s) swapped, {len(self.left)} left"]
        lines += [f"  swapped {name or '<root>'}: torch.nn.{cls} -> fastconv.nn.{cls}" for name, cls in self.swapped]
        lines += [f"  left    {name or '<root>'} ({cls}): {reason}" for name, cls, reason in self.left]
        return "\n".join(lines)


class ConvertError(RuntimeError):
    """Raised by convert(strict=True) when a convolution / pooling module was left on torch."""


def _torch_classes():
    return {getattr(torch.nn, n): n for n in CONVERTIBLE}


def _no_kernel_classes():
    return tuple(getattr(torch.nn, n) for n in NO_KERNEL if hasattr(torch.nn, n))


def _fastconv_class(name):
    from . import nn as fnn

    return getattr(fnn, name, None)


def _unsupported_reason(module, recurse=False):
    """None if fastconv can run this module's tensors (with recurse, its submodules' too); otherwise why not."""
    for pname, p in list(module.named_parameters(recurse=recurse)) + list(module.named_buffers(recurse=recurse)):
        reason = None if p is None else tensor_reason(pname, p)
        if reason is not None:
            return reason
    return None


def _why_not_exact(module, torch_classes):
    """A reason string for modules that look like a convertible torch class but are not exactly one."""
    for base, name in torch_classes.items():
        if isinstance(module, base) and type(module) is not base:
            from . import nn as fnn

            fc = getattr(fnn, name, None)
            if fc is not None and isinstance(module, fc):
                return None  # already a fastconv module: nothing to do, not "left"
            if isinstance(module, torch.nn.modules.lazy.LazyModuleMixin):
                return "lazy module: run one forward to materialize it, then convert"
            return (f"subclass {type(module).__module__}.{type(module).__qualname__} of torch.nn.{name} "
                    "(its forward may differ from torch's): not converted")
    return None


def _swap(module, cls):
    new = cls.__new__(cls)
    new.__dict__ = module.__dict__.copy()  # shares _parameters/_buffers/hooks dicts: no tensor copies
    return new


def _has_own_tensors(module):
    return any(t is not None for t in list(module._parameters.values()) + list(module._buffers.values()))


def _no_kernel_reason(module, no_kernel):
    for base in no_kernel:
        if isinstance(module, base):
            return f"fastconv has no kernels for torch.nn.{base.__name__}: it stays on torch"
    return None


def _convert_one(module, qualname, torch_classes, no_kernel, report, memo, model_reason=None):
    """The replacement for `module` (itself if not converted). memo: id(old) -> new, so a module that
    appears twice in the tree (shared weights) becomes one fastconv module. model_reason: why the model's
    own tensors are unsupported (None if they are supported), applied to layers without tensors (pooling),
    whose input's dtype/device follows the model's."""
    if id(module) in memo:
        return memo[id(module)]
    name = torch_classes.get(type(module))
    result = module
    if name is not None:
        cls = _fastconv_class(name)
        if cls is None:
            report.left.append((qualname, name, f"this fastconv build has no fastconv.nn.{name}"))
        else:
            reason = _unsupported_reason(module)
            if reason is None and model_reason is not None and not _has_own_tensors(module):
                reason = f"layer without parameters in a model whose {model_reason}"
            if reason is None:
                result = _swap(module, cls)
                report.swapped.append((qualname, name))
            else:
                report.left.append((qualname, name, reason))
    else:
        reason = _why_not_exact(module, torch_classes) or _no_kernel_reason(module, no_kernel)
        if reason is not None:
            report.left.append((qualname, type(module).__name__, reason))
    memo[id(module)] = result
    for child_name, child in list(result._modules.items()):
        if child is None:
            continue
        new_child = _convert_one(child, f"{qualname}.{child_name}" if qualname else child_name, torch_classes,
                                 no_kernel, report, memo, model_reason)
        if new_child is not child:
            result._modules[child_name] = new_child
    return result


def convert(model: torch.nn.Module, inplace: bool = True,
            strict: bool = False) -> tuple[torch.nn.Module, ConvertReport]:
    """Replace torch.nn conv/pooling modules in `model` by fastconv's; returns (model, ConvertReport).

    inplace=False converts a deep copy and leaves `model` untouched. If `model` itself is convertible the
    returned model is a new object (use the return value). Converting an already converted model is a no-op.
    strict=True raises ConvertError if any convolution / pooling module is left (a convertible-looking one, or
    one fastconv has no kernels for: Conv3d, MaxPool3d, FractionalMaxPool2d, ...).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"fastconv.convert: model must be a torch.nn.Module, got {type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    report = ConvertReport()
    model = _convert_one(model, "", _torch_classes(), _no_kernel_classes(), report, {},
                         _unsupported_reason(model, recurse=True))
    # One record, at INFO: the returned report is where the caller reads what was left (a warning per layer
    # as well printed each left layer a second time, on stderr, next to print(report)).
    logger.info("%s", report)
    if strict and report.left:
        raise ConvertError(str(report))
    return model, report


__all__ = ["convert", "ConvertReport", "ConvertError", "CONVERTIBLE", "NO_KERNEL"]
