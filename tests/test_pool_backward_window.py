"""max_pool2d_backward_window: max pooling's own backward, which knows the window. In NHWC it computes the
gradient from the window side (csrc/cpu/pool/pool_max_backward.cpp); it must equal the scatter-add
(max_pool2d_backward) bit for bit, and fall back to it for indices that are not taps of their window."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv  # noqa: F401
from fastconv import _C

ops = torch.ops.fastconv

WINDOWS = [  # kernel, stride, padding, dilation
    ((2, 2), (2, 2), (0, 0), (1, 1)),
    ((3, 3), (2, 2), (1, 1), (1, 1)),
    ((3, 2), (1, 2), (1, 0), (1, 1)),
    ((1, 1), (2, 3), (0, 0), (1, 1)),
    ((2, 3), (3, 1), (1, 1), (2, 2)),
    ((5, 5), (2, 2), (2, 2), (1, 1)),
]


@pytest.fixture(params=[False, True], ids=["serial", "threaded"])
def threads(request):
    if not request.param:
        yield
        return
    old = _C.set_min_parallel_work(1)
    try:
        yield
    finally:
        _C.set_min_parallel_work(old)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("channels", [1, 3, 16, 17, 64, 70])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_equals_the_scatter_bit_for_bit(window, channels, dtype, layout, threads):
    k, s, p, d = window
    g = torch.Generator().manual_seed(channels)
    x = torch.randn(2, channels, 11, 9, dtype=dtype, generator=g)
    x[:, :, 1::3, ::2] = x[:, :, :1, :1]  # ties: the first maximum in scan order wins
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    for ceil_mode in (False, True):
        y, ind = TF.max_pool2d(x, k, s, p, d, ceil_mode=ceil_mode, return_indices=True)
        gy = torch.randn(y.shape, dtype=dtype, generator=g).contiguous(memory_format=torch.channels_last
                                                                        if layout == "channels_last" else
                                                                        torch.contiguous_format)
        ref = ops.max_pool2d_backward(gy, ind, [11, 9])
        got = ops.max_pool2d_backward_window(gy, ind, [11, 9], list(k), list(s), list(p), list(d))
        assert got.stride() == ref.stride()
        assert torch.equal(got, ref), (window, ceil_mode)
        # and torch's gradient (summed in the same order)
        xt = x.clone().requires_grad_(True)
        TF.max_pool2d(xt, k, s, p, d, ceil_mode=ceil_mode).backward(gy)
        torch.testing.assert_close(got, xt.grad, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_indices_from_elsewhere_fall_back_to_the_scatter(dtype):
    """Indices that are valid plane positions but not taps of their window (as max_unpool's, or made up)
    give the scatter's result; out-of-range ones raise like the scatter."""
    g = torch.Generator().manual_seed(0)
    gy = torch.randn(2, 32, 4, 5, dtype=dtype, generator=g).contiguous(memory_format=torch.channels_last)
    ind = torch.randint(0, 8 * 10, gy.shape, generator=g).contiguous(memory_format=torch.channels_last)
    got = ops.max_pool2d_backward_window(gy, ind, [8, 10], [2, 2], [2, 2], [0, 0], [1, 1])
    assert torch.equal(got, ops.max_pool2d_backward(gy, ind, [8, 10]))
    bad = ind.clone()
    bad[1, 3, 2, 1] = 80
    with pytest.raises(RuntimeError, match="invalid index 80"):
        ops.max_pool2d_backward_window(gy, bad, [8, 10], [2, 2], [2, 2], [0, 0], [1, 1])


def test_bad_window_arguments_raise():
    gy = torch.randn(1, 2, 3, 3).contiguous(memory_format=torch.channels_last)
    ind = torch.zeros(gy.shape, dtype=torch.int64).contiguous(memory_format=torch.channels_last)
    for args, match in [(([0, 2], [2, 2], [0, 0], [1, 1]), "kernel_size must be positive"),
                        (([2, 2], [2, 0], [0, 0], [1, 1]), "stride must be positive"),
                        (([2, 2], [2, 2], [-1, 0], [1, 1]), "padding must be non-negative"),
                        (([2, 2], [2, 2], [0, 0], [1, 0]), "dilation must be positive"),
                        (([2], [2, 2], [0, 0], [1, 1]), "kernel_size")]:
        with pytest.raises((ValueError, RuntimeError), match=match):
            ops.max_pool2d_backward_window(gy, ind, [6, 6], *args)
