"""ResNet-18 / ResNet-50 (He et al. 2015): basic and bottleneck residual blocks with batch norm
(torchvision's layout, stride on the 3x3 conv of the bottleneck), with a width multiplier."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .._typing import LayerSource
from ._layers import resolve, scaled


class BasicBlock(torch.nn.Module):
    expansion = 1

    def __init__(self, L, cin, planes, stride=1):
        super().__init__()
        self.conv1 = L.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = L.BatchNorm2d(planes)
        self.conv2 = L.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = L.BatchNorm2d(planes)
        self.relu = L.ReLU(inplace=True)
        self.downsample = _shortcut(L, cin, planes, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(torch.nn.Module):
    expansion = 4

    def __init__(self, L, cin, planes, stride=1):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = L.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = L.BatchNorm2d(planes)
        self.conv2 = L.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = L.BatchNorm2d(planes)
        self.conv3 = L.Conv2d(planes, out, 1, bias=False)
        self.bn3 = L.BatchNorm2d(out)
        self.relu = L.ReLU(inplace=True)
        self.downsample = _shortcut(L, cin, out, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(L, cin, cout, stride):
    """1x1 projection (+BN) when the shape changes, identity otherwise."""
    if stride == 1 and cin == cout:
        return None
    return torch.nn.Sequential(L.Conv2d(cin, cout, 1, stride, bias=False), L.BatchNorm2d(cout))


class ResNet(torch.nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], blocks_per_stage: Sequence[int], num_classes: int = 1000,
                 in_channels: int = 3, width: float = 1.0, layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        c = scaled(64, width)
        self.conv1 = L.Conv2d(in_channels, c, 7, 2, 3, bias=False)
        self.bn1 = L.BatchNorm2d(c)
        self.relu = L.ReLU(inplace=True)
        self.maxpool = L.MaxPool2d(3, 2, 1)
        stages = []
        for i, n in enumerate(blocks_per_stage):
            planes = scaled(64 * 2 ** i, width)
            mods = []
            for j in range(n):
                mods.append(block(L, c, planes, 2 if (j == 0 and i > 0) else 1))
                c = planes * block.expansion
            stages.append(torch.nn.Sequential(*mods))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = L.AdaptiveAvgPool2d((1, 1))
        self.fc = L.Linear(c, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(**kwargs: Any) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


def resnet50(**kwargs: Any) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)
