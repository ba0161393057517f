"""LeNet-5 (LeCun et al. 1998) and the small MNIST CNN of the TensorFlow tutorials."""
from __future__ import annotations

import torch

from .._typing import LayerSource
from ._layers import resolve, scaled


class LeNet5(torch.nn.Module):
    """C1 5x5 conv -> S2 2x2 average pool -> C3 5x5 conv -> S4 pool -> C5 5x5 conv -> F6 (84) -> output.

    tanh activations and average-pool subsampling as in the paper (without its trainable subsampling
    coefficients and the partial C3 connection table: C3 is fully connected, as in most reimplementations).
    input_size=32 is the paper's; other sizes >= 16 work (C5 then sees a map larger or smaller than 5x5).
    `features` is the convolutional base, `classifier` the head (F6 + output), used by the transfer demo.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 32, width: float = 1.0,
                 layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        c1, c3, c5, f6 = scaled(6, width), scaled(16, width), scaled(120, width), scaled(84, width)
        s = ((input_size - 4) // 2 - 4) // 2  # spatial size entering C5
        k5 = min(5, s)
        self.features = torch.nn.Sequential(
            L.Conv2d(in_channels, c1, 5), L.Tanh(), L.AvgPool2d(2),
            L.Conv2d(c1, c3, 5), L.Tanh(), L.AvgPool2d(2),
            L.Conv2d(c3, c5, k5), L.Tanh(),
        )
        out = s - k5 + 1
        self.classifier = torch.nn.Sequential(
            L.Flatten(), L.Linear(c5 * out * out, f6), L.Tanh(), L.Linear(f6, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class MnistCNN(torch.nn.Module):
    """Two stages of 5x5 conv ('same' padding) + ReLU + 2x2 max pool (32 and 64 channels), then a
    1024-unit hidden layer with dropout and a linear output (the classic TensorFlow MNIST tutorial net)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28, width: float = 1.0,
                 hidden: int = 1024, dropout: float = 0.5, layers: LayerSource = None) -> None:
        super().__init__()
        L = resolve(layers)
        c1, c2, h = scaled(32, width), scaled(64, width), scaled(hidden, width)
        self.features = torch.nn.Sequential(
            L.Conv2d(in_channels, c1, 5, padding=2), L.ReLU(), L.MaxPool2d(2),
            L.Conv2d(c1, c2, 5, padding=2), L.ReLU(), L.MaxPool2d(2),
        )
        s = input_size // 4
        self.classifier = torch.nn.Sequential(
            L.Flatten(), L.Linear(c2 * s * s, h), L.ReLU(), L.Dropout(dropout), L.Linear(h, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))
