"""WaveNet-style stack (van den Oord et al. 2016): causal dilated 1-d convolutions (kernel 2, dilation
1, 2, 4, ... per stack) with gated tanh*sigmoid units, residual and skip 1x1 convolutions, and a
ReLU-1x1-ReLU-1x1 output head giving per-time-step class scores (e.g. 256 mu-law levels).

Causality: the fastconv build uses fastconv.nn.Conv1d(padding='causal') (left padding dilation*(k-1) done
inside the kernel); the torch build uses an unpadded torch Conv1d after an explicit left pad. Both have the
same parameters and state_dict keys.
"""
from __future__ import annotations

import torch

from .._typing import LayerSource
from ._layers import resolve


class CausalConv1d(torch.nn.Module):
    def __init__(self, L, cin, cout, kernel_size, dilation=1):
        super().__init__()
        self.left_pad = dilation * (kernel_size - 1)
        from ..nn import Conv1d as FastConv1d

        self.in_kernel = issubclass(L.Conv1d, FastConv1d)
        padding = "causal" if self.in_kernel else 0
        self.conv = L.Conv1d(cin, cout, kernel_size, padding=padding, dilation=dilation)

    def forward(self, x):
        if not self.in_kernel:
            x = torch.nn.functional.pad(x, (self.left_pad, 0))  # the torch reference build only
        return self.conv(x)


class ResidualBlock(torch.nn.Module):
    def __init__(self, L, residual_channels, skip_channels, kernel_size, dilation):
        super().__init__()
        self.dilated = CausalConv1d(L, residual_channels, 2 * residual_channels, kernel_size, dilation)
        self.residual = L.Conv1d(residual_channels, residual_channels, 1)
        self.skip = L.Conv1d(residual_channels, skip_channels, 1)

    def forward(self, x):
        f, g = self.dilated(x).chunk(2, dim=1)
        z = torch.tanh(f) * torch.sigmoid(g)
        return x + self.residual(z), self.skip(z)


class WaveNet(torch.nn.Module):
    def __init__(self, in_channels: int = 256, num_classes: int = 256, residual_channels: int = 32,
                 skip_channels: int = 64, layers_per_stack: int = 10, stacks: int = 2, kernel_size: int = 2,
                 layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        self.input = CausalConv1d(L, in_channels, residual_channels, kernel_size)
        self.blocks = torch.nn.ModuleList(
            ResidualBlock(L, residual_channels, skip_channels, kernel_size, 2 ** i)
            for _ in range(stacks) for i in range(layers_per_stack))
        self.head = torch.nn.Sequential(L.ReLU(), L.Conv1d(skip_channels, skip_channels, 1), L.ReLU(),
                                        L.Conv1d(skip_channels, num_classes, 1))

    @property
    def receptive_field(self):
        return 1 + sum(b.dilated.left_pad for b in self.blocks) + self.input.left_pad

    def forward(self, x):
        x = self.input(x)
        skips = 0
        for block in self.blocks:
            x, s = block(x)
            skips = skips + s
        return self.head(skips)
