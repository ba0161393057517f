"""GoogLeNet / Inception-v1 (Szegedy et al. 2014): inception modules with 1x1 reductions.

Convs are followed by batch norm (as in torchvision's version); the two auxiliary training classifiers of
the paper are omitted.
"""
from __future__ import annotations

import torch

from .._typing import LayerSource
from ._layers import resolve, scaled

# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) per inception module, as in the paper's table 1.
_INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


class ConvBN(torch.nn.Sequential):
    def __init__(self, L, cin, cout, k, **kw):
        super().__init__(L.Conv2d(cin, cout, k, bias=False, **kw), L.BatchNorm2d(cout, eps=0.001),
                         L.ReLU(inplace=True))


class Inception(torch.nn.Module):
    """Four parallel branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 max pool->1x1."""

    def __init__(self, L, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = ConvBN(L, cin, c1, 1)
        self.branch2 = torch.nn.Sequential(ConvBN(L, cin, c3r, 1), ConvBN(L, c3r, c3, 3, padding=1))
        self.branch3 = torch.nn.Sequential(ConvBN(L, cin, c5r, 1), ConvBN(L, c5r, c5, 5, padding=2))
        self.branch4 = torch.nn.Sequential(L.MaxPool2d(3, stride=1, padding=1), ConvBN(L, cin, pp, 1))
        self.out_channels = c1 + c3 + c5 + pp

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(torch.nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, dropout: float = 0.4,
                 layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        s = lambda n: scaled(n, width)  # noqa: E731
        self.stem = torch.nn.Sequential(
            ConvBN(L, in_channels, s(64), 7, stride=2, padding=3), L.MaxPool2d(3, 2, ceil_mode=True),
            ConvBN(L, s(64), s(64), 1), ConvBN(L, s(64), s(192), 3, padding=1), L.MaxPool2d(3, 2, ceil_mode=True))
        blocks, c = [], s(192)
        for name in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
            if name in ("4a", "5a"):
                blocks.append(L.MaxPool2d(3 if name == "4a" else 2, 2, ceil_mode=True))
            m = Inception(L, c, *(s(v) for v in _INCEPTION[name]))
            blocks.append(m)
            c = m.out_channels
        self.inception = torch.nn.Sequential(*blocks)
        self.avgpool = L.AdaptiveAvgPool2d(1)
        self.dropout = L.Dropout(dropout)
        self.fc = L.Linear(c, num_classes)

    def forward(self, x):
        x = self.avgpool(self.inception(self.stem(x)))
        return self.fc(self.dropout(torch.flatten(x, 1)))
