"""Resolve the layer classes a model builder uses from its `layers` argument (fastconv.nn or torch.nn).

Convolution and pooling classes come from `layers`; classes fastconv does not implement (BatchNorm2d, ReLU,
Linear, Dropout, ...) always come from torch.nn. If `layers` lacks a conv/pooling class (a fastconv build
without it), the torch class is used and a warning names it, so the model still builds.
"""
import warnings

import torch

from ..convert import CONVERTIBLE


class Layers:
    """Attribute access L.Conv2d, L.BatchNorm2d, ... resolved as described in the module docstring."""

    def __init__(self, layers=None):
        if layers is None:
            from .. import nn as layers
        self.source = layers
        self.is_torch = layers is torch.nn

    def __getattr__(self, name):
        if name in CONVERTIBLE:
            cls = getattr(self.source, name, None)
            if cls is None:
                warnings.warn(f"{getattr(self.source, '__name__', self.source)} has no {name}; "
                              f"using torch.nn.{name}", stacklevel=2)
                cls = getattr(torch.nn, name)
        else:
            cls = getattr(torch.nn, name)
        return cls


def resolve(layers):
    return layers if isinstance(layers, Layers) else Layers(layers)


def scaled(channels, width):
    """Channel count scaled by a width multiplier, at least 1."""
    return max(1, int(round(channels * width)))
