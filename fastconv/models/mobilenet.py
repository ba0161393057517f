"""MobileNet-V2 (Sandler et al. 2018): inverted residuals of 1x1 expansion, 3x3 depthwise conv
(groups=channels) and linear 1x1 projection; torchvision's layout and channel rounding."""
from __future__ import annotations

import torch

from .._typing import LayerSource
from ._layers import resolve

# (expansion t, channels c, repeats n, first stride s), the paper's table 2.
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
             (6, 320, 1, 1)]


def make_divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class ConvBNReLU6(torch.nn.Sequential):
    def __init__(self, L, cin, cout, k=3, stride=1, groups=1):
        super().__init__(L.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         L.BatchNorm2d(cout), L.ReLU6(inplace=True))


class InvertedResidual(torch.nn.Module):
    def __init__(self, L, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        mods = [] if expand == 1 else [ConvBNReLU6(L, cin, hidden, 1)]
        mods += [ConvBNReLU6(L, hidden, hidden, 3, stride, groups=hidden),  # depthwise
                 L.Conv2d(hidden, cout, 1, bias=False), L.BatchNorm2d(cout)]  # linear bottleneck
        self.conv = torch.nn.Sequential(*mods)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(torch.nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, last_channel: int = 1280,
                 dropout: float = 0.2, layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        c = make_divisible(32 * width)
        last = make_divisible(last_channel * max(1.0, width))
        mods = [ConvBNReLU6(L, in_channels, c, 3, 2)]
        for t, ch, n, s in _SETTINGS:
            out = make_divisible(ch * width)
            for i in range(n):
                mods.append(InvertedResidual(L, c, out, s if i == 0 else 1, t))
                c = out
        mods += [ConvBNReLU6(L, c, last, 1), L.AdaptiveAvgPool2d(1), L.Flatten()]
        self.features = torch.nn.Sequential(*mods)
        self.classifier = torch.nn.Sequential(L.Dropout(dropout), L.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
