"""U-Net (Ronneberger et al. 2015): a contracting path of double 3x3 convs and 2x2 max pools, and an
expanding path of 2x2 stride-2 transposed convolutions whose outputs are concatenated with the skip
features ('same' padding, so the input size must be divisible by 2**depth; batch norm after each conv)."""
from __future__ import annotations

import torch

from .._typing import LayerSource
from ._layers import resolve


class DoubleConv(torch.nn.Sequential):
    def __init__(self, L, cin, cout):
        super().__init__(L.Conv2d(cin, cout, 3, padding=1, bias=False), L.BatchNorm2d(cout), L.ReLU(inplace=True),
                         L.Conv2d(cout, cout, 3, padding=1, bias=False), L.BatchNorm2d(cout), L.ReLU(inplace=True))


class Up(torch.nn.Module):
    def __init__(self, L, cin, cout):
        super().__init__()
        self.up = L.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = DoubleConv(L, cin // 2 + cout, cout)

    def forward(self, x, skip):
        return self.conv(torch.cat([skip, self.up(x)], 1))


class UNet(torch.nn.Module):
    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 64, depth: int = 4,
                 layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        chans = [base * 2 ** i for i in range(depth + 1)]
        self.inc = DoubleConv(L, in_channels, chans[0])
        self.pool = L.MaxPool2d(2)
        self.down = torch.nn.ModuleList(DoubleConv(L, chans[i], chans[i + 1]) for i in range(depth))
        self.up = torch.nn.ModuleList(Up(L, chans[i + 1], chans[i]) for i in reversed(range(depth)))
        self.outc = L.Conv2d(chans[0], num_classes, 1)

    def forward(self, x):
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(self.pool(skips[-1])))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.outc(x)
