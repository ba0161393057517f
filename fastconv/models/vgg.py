"""VGG-11 and VGG-16 (Simonyan & Zisserman 2014) with a width multiplier and a configurable input size."""
from __future__ import annotations

from typing import Any

import torch

from .._typing import LayerSource
from ._layers import resolve, scaled

CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(torch.nn.Module):
    """3x3 convs (padding 1) in five stages separated by 2x2 max pools; the classifier's input size follows
    from input_size (a multiple of 32) instead of torchvision's adaptive pool to 7x7."""

    def __init__(self, depth: int = 16, num_classes: int = 1000, in_channels: int = 3, input_size: int = 224,
                 width: float = 1.0, hidden: int = 4096, batch_norm: bool = False, dropout: float = 0.5,
                 layers: LayerSource = None) -> None:
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"VGG: depth must be one of {sorted(CONFIGS)}, got {depth}")
        if input_size % 32 != 0:
            raise ValueError(f"VGG: input_size must be a multiple of 32, got {input_size}")
        L = resolve(layers)
        mods, c = [], in_channels
        for v in CONFIGS[depth]:
            if v == "M":
                mods.append(L.MaxPool2d(2, 2))
                continue
            out = scaled(v, width)
            mods.append(L.Conv2d(c, out, 3, padding=1))
            if batch_norm:
                mods.append(L.BatchNorm2d(out))
            mods.append(L.ReLU(inplace=True))
            c = out
        self.features = torch.nn.Sequential(*mods)
        s, h = input_size // 32, scaled(hidden, width)
        self.classifier = torch.nn.Sequential(
            L.Flatten(), L.Linear(c * s * s, h), L.ReLU(inplace=True), L.Dropout(dropout),
            L.Linear(h, h), L.ReLU(inplace=True), L.Dropout(dropout), L.Linear(h, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


def vgg11(**kwargs: Any) -> VGG:
    return VGG(11, **kwargs)


def vgg16(**kwargs: Any) -> VGG:
    return VGG(16, **kwargs)
