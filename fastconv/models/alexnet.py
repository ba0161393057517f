"""AlexNet (Krizhevsky et al. 2012), single-tower layout as in torchvision, with a width multiplier."""
from __future__ import annotations

import torch

from .._typing import LayerSource
from ._layers import resolve, scaled


class AlexNet(torch.nn.Module):
    """Five convs (11x11/4, 5x5, 3x3 x3) with three 3x3/2 max pools, adaptive average pool to 6x6 (so any
    input >= 63 pixels works) and a 3-layer classifier with dropout. width scales every channel/unit count."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, dropout: float = 0.5,
                 layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        c = [scaled(n, width) for n in (64, 192, 384, 256, 256)]
        hidden = scaled(4096, width)
        self.features = torch.nn.Sequential(
            L.Conv2d(in_channels, c[0], 11, stride=4, padding=2), L.ReLU(inplace=True), L.MaxPool2d(3, 2),
            L.Conv2d(c[0], c[1], 5, padding=2), L.ReLU(inplace=True), L.MaxPool2d(3, 2),
            L.Conv2d(c[1], c[2], 3, padding=1), L.ReLU(inplace=True),
            L.Conv2d(c[2], c[3], 3, padding=1), L.ReLU(inplace=True),
            L.Conv2d(c[3], c[4], 3, padding=1), L.ReLU(inplace=True), L.MaxPool2d(3, 2),
        )
        self.avgpool = L.AdaptiveAvgPool2d((6, 6))
        self.classifier = torch.nn.Sequential(
            L.Dropout(dropout), L.Linear(c[4] * 36, hidden), L.ReLU(inplace=True),
            L.Dropout(dropout), L.Linear(hidden, hidden), L.ReLU(inplace=True),
            L.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
