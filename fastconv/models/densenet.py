"""DenseNet-121 (Huang et al. 2016): dense blocks (BN-ReLU-1x1 conv-BN-ReLU-3x3 conv, outputs concatenated)
joined by transitions (BN-ReLU-1x1 conv halving the channels + 2x2 average pool)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .._typing import LayerSource
from ._layers import resolve


class DenseLayer(torch.nn.Module):
    def __init__(self, L, cin, growth_rate, bn_size):
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1, self.relu1 = L.BatchNorm2d(cin), L.ReLU(inplace=True)
        self.conv1 = L.Conv2d(cin, mid, 1, bias=False)
        self.norm2, self.relu2 = L.BatchNorm2d(mid), L.ReLU(inplace=True)
        self.conv2 = L.Conv2d(mid, growth_rate, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(torch.nn.ModuleList):
    def __init__(self, L, n, cin, growth_rate, bn_size):
        super().__init__(DenseLayer(L, cin + i * growth_rate, growth_rate, bn_size) for i in range(n))

    def forward(self, x):
        feats = [x]
        for layer in self:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class Transition(torch.nn.Sequential):
    def __init__(self, L, cin, cout):
        super().__init__(L.BatchNorm2d(cin), L.ReLU(inplace=True), L.Conv2d(cin, cout, 1, bias=False),
                         L.AvgPool2d(2, 2))


class DenseNet(torch.nn.Module):
    """DenseNet-BC. The defaults are DenseNet-121; tests shrink growth_rate / num_init_features."""

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000, in_channels: int = 3,
                 layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        c = num_init_features
        mods = [L.Conv2d(in_channels, c, 7, 2, 3, bias=False), L.BatchNorm2d(c), L.ReLU(inplace=True),
                L.MaxPool2d(3, 2, 1)]
        for i, n in enumerate(block_config):
            mods.append(DenseBlock(L, n, c, growth_rate, bn_size))
            c += n * growth_rate
            if i != len(block_config) - 1:
                mods.append(Transition(L, c, c // 2))
                c //= 2
        mods += [L.BatchNorm2d(c), L.ReLU(inplace=True), L.AdaptiveAvgPool2d(1), L.Flatten()]
        self.features = torch.nn.Sequential(*mods)
        self.classifier = L.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def densenet121(**kwargs: Any) -> DenseNet:
    return DenseNet(**kwargs)
