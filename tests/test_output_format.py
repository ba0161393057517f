"""Output strides of the 1-d and unbatched forms, whose inputs the functional API lifts to 4-d.

A channel-minor input, (N, L, C) transposed to (N, C, L) as sequence models write it, lifts to a
channels_last 4-d view and fastconv's kernels work in NHWC. torch returns most of these results contiguous
(conv1d, conv_transpose1d, max_pool1d without indices, max_unpool1d, every unbatched op) but keeps the
channel-minor strides for avg / Lp / adaptive 1-d pooling and max_pool1d with indices; fastconv returns
torch's strides in every case (code that calls .view on a result must work as it does with torch's).
"""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn.functional as FF


def _channel_minor_1d(n=2, c=6, length=11):
    return torch.randn(n, length, c).transpose(1, 2)  # (N, C, L), strides (L*C, 1, C)


def _channel_minor_unbatched_2d(c=6, h=7, w=5):
    return torch.randn(h, w, c).permute(2, 0, 1)  # (C, H, W), strides (1, W*C, C)


def _channel_minor_unbatched_1d(c=6, length=11):
    return torch.randn(length, c).t()  # (C, L), strides (1, C)


CASES_1D = [
    ("conv1d", lambda F, x: F.conv1d(x, torch.ones(4, 6, 3) * 0.1, padding=1)),
    ("conv_transpose1d", lambda F, x: F.conv_transpose1d(x, torch.ones(6, 4, 3) * 0.1, stride=2)),
    ("max_pool1d", lambda F, x: F.max_pool1d(x, 3, 2)),
    ("max_pool1d values with indices", lambda F, x: F.max_pool1d(x, 3, 2, return_indices=True)[0]),
    ("max_pool1d indices", lambda F, x: F.max_pool1d(x, 3, 2, return_indices=True)[1]),
    ("avg_pool1d", lambda F, x: F.avg_pool1d(x, 3, 2, 1)),
    ("lp_pool1d", lambda F, x: F.lp_pool1d(x, 2, 3, 2)),
    ("adaptive_avg_pool1d", lambda F, x: F.adaptive_avg_pool1d(x, 4)),
    ("adaptive_max_pool1d", lambda F, x: F.adaptive_max_pool1d(x, 4)),
    ("adaptive_max_pool1d indices", lambda F, x: F.adaptive_max_pool1d(x, 4, return_indices=True)[1]),
    ("max_unpool1d", lambda F, x: F.max_unpool1d(*TF.max_pool1d(x, 2, return_indices=True), 2)),
]
CASES_UNBATCHED_2D = [
    ("conv2d", lambda F, x: F.conv2d(x, torch.ones(4, 6, 3, 3) * 0.1, padding=1)),
    ("conv_transpose2d", lambda F, x: F.conv_transpose2d(x, torch.ones(6, 4, 2, 2) * 0.1, stride=2)),
    ("max_pool2d", lambda F, x: F.max_pool2d(x, 2)),
    ("avg_pool2d", lambda F, x: F.avg_pool2d(x, 3, 2, 1)),
    ("adaptive_avg_pool2d", lambda F, x: F.adaptive_avg_pool2d(x, (3, 2))),
    ("adaptive_max_pool2d", lambda F, x: F.adaptive_max_pool2d(x, (3, 2))),
]


@pytest.mark.parametrize("unbatched", [False, True])
@pytest.mark.parametrize("name,fn", CASES_1D, ids=[c[0] for c in CASES_1D])
def test_channel_minor_1d_input_gives_torch_strides(name, fn, unbatched):
    _check(name, fn, _channel_minor_unbatched_1d() if unbatched else _channel_minor_1d())


@pytest.mark.parametrize("name,fn", CASES_UNBATCHED_2D, ids=[c[0] for c in CASES_UNBATCHED_2D])
def test_channel_minor_unbatched_2d_input_gives_torch_strides(name, fn):
    _check(name, fn, _channel_minor_unbatched_2d())


def _check(name, fn, x):
    assert not x.is_contiguous()
    got, ref = fn(FF, x), fn(TF, x)
    assert got.stride() == ref.stride(), (name, got.stride(), ref.stride())
    torch.testing.assert_close(got, ref)
    if ref.is_contiguous():
        got.view(-1)  # what code written against torch's contiguous result does


def test_channel_minor_1d_gradients_match_torch():
    x = _channel_minor_1d().requires_grad_(True)
    w = torch.randn(4, 6, 3, requires_grad=True)
    for F in (FF, TF):
        y = F.max_pool1d(F.conv1d(x, w, padding=1), 2)
        y.view(-1).square().sum().backward()
    # grads accumulated twice (fastconv then torch): equal halves means equal gradients
    gx_f, gw_f = x.grad.clone(), w.grad.clone()
    x.grad = None
    w.grad = None
    TF.max_pool1d(TF.conv1d(x, w, padding=1), 2).view(-1).square().sum().backward()
    torch.testing.assert_close(gx_f, 2 * x.grad)
    torch.testing.assert_close(gw_f, 2 * w.grad)
