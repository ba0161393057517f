"""Dilated context network (Yu & Koltun 2016, "Multi-scale context aggregation by dilated convolutions"):
3x3 convolutions with exponentially growing dilation 1,1,2,4,8,16,1 (padding = dilation keeps the
resolution) aggregate context over a 67x67 receptive field, then a 1x1 conv gives per-pixel class scores.

The paper puts the context module on top of a front-end that already produces class scores; here a small
front-end (two 3x3 convs) maps the input to `channels` features so the network is self-contained.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .._typing import LayerSource
from ._layers import resolve


class DilatedContextNet(torch.nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 21, channels: int = 64,
                 dilations: Sequence[int] = (1, 1, 2, 4, 8, 16, 1), layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        self.frontend = torch.nn.Sequential(
            L.Conv2d(in_channels, channels, 3, padding=1), L.ReLU(inplace=True),
            L.Conv2d(channels, channels, 3, padding=1), L.ReLU(inplace=True))
        mods = []
        for d in dilations:
            mods += [L.Conv2d(channels, channels, 3, padding=d, dilation=d), L.ReLU(inplace=True)]
        self.context = torch.nn.Sequential(*mods)
        self.classifier = L.Conv2d(channels, num_classes, 1)

    def forward(self, x):
        return self.classifier(self.context(self.frontend(x)))
