"""SegNet (Badrinarayanan et al. 2015): a VGG-16-style encoder whose 2x2 max pools return their argmax
indices, and a mirrored decoder that upsamples with max-unpooling at those indices (no learned upsampling)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .._typing import LayerSource
from ._layers import resolve, scaled

# conv channels per encoder stage (VGG-16's 13 conv layers).
_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


def _conv_bn_relu(L, cin, cout):
    return [L.Conv2d(cin, cout, 3, padding=1), L.BatchNorm2d(cout), L.ReLU(inplace=True)]


class SegNet(torch.nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 12, width: float = 1.0,
                 stages: Sequence[Sequence[int]] = _STAGES, layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        stages = [[scaled(c, width) for c in s] for s in stages]
        self.encoders, self.decoders = torch.nn.ModuleList(), torch.nn.ModuleList()
        c = in_channels
        for s in stages:
            mods = []
            for out in s:
                mods += _conv_bn_relu(L, c, out)
                c = out
            self.encoders.append(torch.nn.Sequential(*mods))
        # decoder i mirrors encoder i: same widths reversed, ending with the channels of the stage above it
        # (the first stage's decoder ends in the classifier instead)
        for i in reversed(range(len(stages))):
            s = stages[i]
            outs = list(reversed(s))[1:] + ([stages[i - 1][-1]] if i > 0 else [])
            mods = []
            for out in outs:
                mods += _conv_bn_relu(L, c, out)
                c = out
            self.decoders.append(torch.nn.Sequential(*mods))
        self.pool = L.MaxPool2d(2, 2, return_indices=True)
        self.unpool = L.MaxUnpool2d(2, 2)
        self.classifier = L.Conv2d(c, num_classes, 3, padding=1)

    def forward(self, x):
        saved = []
        for enc in self.encoders:
            x = enc(x)
            size = x.shape
            x, idx = self.pool(x)
            saved.append((idx, size))
        for dec in self.decoders:
            idx, size = saved.pop()
            x = dec(self.unpool(x, idx, output_size=size))
        return self.classifier(x)
