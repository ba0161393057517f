"""torch.library.opcheck on samples of every pooling op, and torch.compile(fullgraph=True) of a model."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn as fnn
from test_pool_helpers import make_input

ops = torch.ops.fastconv


def _samples():
    x = make_input((2, 3, 7, 8), "contiguous", distinct=True)
    xc = make_input((2, 3, 7, 8), "channels_last", distinct=True)
    y, ind = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
    g = torch.randn_like(y)
    yc, indc = TF.max_pool2d(xc, 3, 2, 1, return_indices=True)
    gc = torch.randn_like(yc)
    req = lambda t: t.clone().requires_grad_(True)  # noqa: E731
    return [
        (ops.max_pool2d_with_indices, (req(x), [3, 3], [2, 2], [1, 1], [1, 1], False)),
        (ops.max_pool2d_with_indices, (req(xc), [2, 3], [1, 2], [1, 0], [2, 1], True)),
        (ops.max_pool2d, (x, [3, 3], [2, 2], [1, 1], [1, 1], False)),
        (ops.max_pool2d, (req(xc), [2, 3], [1, 2], [1, 0], [2, 1], True)),
        (ops.max_pool2d_backward, (req(g), ind, [7, 8])),
        (ops.max_pool2d_backward_window, (req(g), ind, [7, 8], [3, 3], [2, 2], [1, 1], [1, 1])),
        (ops.max_pool2d_backward_window, (req(gc), indc, [7, 8], [3, 3], [2, 2], [1, 1], [1, 1])),
        (ops.max_pool2d_gather, (req(x), ind)),
        (ops.max_unpool2d, (req(y), ind, [7, 8])),
        (ops.avg_pool2d, (req(x), [3, 3], [2, 2], [1, 1], True, False, None)),
        (ops.avg_pool2d, (req(xc), [2, 2], [2, 2], [0, 0], False, True, 3)),
        (ops.avg_pool2d_backward, (req(g), [7, 8], [3, 3], [2, 2], [1, 1], False, True, None)),
    ]


@pytest.mark.parametrize("index", range(12))
def test_opcheck(index):
    op, args = _samples()[index]
    torch.library.opcheck(op, args)


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.max = fnn.MaxPool2d(3, 2, 1, return_indices=True)
        self.unpool = fnn.MaxUnpool2d(3, 2, 1)
        self.avg = fnn.AvgPool2d(2, ceil_mode=True)
        self.lp = fnn.LPPool2d(2, 2)
        self.max1 = fnn.MaxPool1d(2)

    def forward(self, x):
        y, ind = self.max(x)
        u = self.unpool(y, ind, output_size=x.shape[2:])
        z = self.avg(u) + self.lp(x.abs() + 1)
        return z.sum() + self.max1(x.flatten(2)).sum()


def test_compile_fullgraph_forward_backward():
    net = _Net()
    x = torch.randn(2, 4, 8, 8)
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    eager = net(x1)
    eager.backward()
    compiled = torch.compile(net, fullgraph=True)(x2)
    compiled.backward()
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(x2.grad, x1.grad)
