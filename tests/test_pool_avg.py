"""avg_pool1d/2d and lp_pool1d/2d against torch: values, gradients, layouts, double backward, errors."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn as fnn
import fastconv.nn.functional as FF
from test_pool_helpers import make_input

LAYOUTS = ["contiguous", "channels_last", "noncontig"]


def _compare(fn_t, fn_f, x, tol=None):
    xt = x.detach().clone().requires_grad_(True)
    xf = x.detach().clone().requires_grad_(True)
    yt, yf = fn_t(xt), fn_f(xf)
    assert yf.shape == yt.shape
    tol = tol or {}
    torch.testing.assert_close(yf, yt, **tol)
    g = torch.randn_like(yt)
    yt.backward(g)
    yf.backward(g)
    torch.testing.assert_close(xf.grad, xt.grad, **tol)
    return yf


@pytest.mark.parametrize("kernel", [1, 2, 3, (2, 3), 5])
@pytest.mark.parametrize("stride", [None, 1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool2d_grid(kernel, stride, ceil_mode, count_include_pad):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    for pad in sorted({(0, 0), (kh // 2, kw // 2), (kh // 2, 0)}):
        for divisor in (None, 3):
            for h, w in [(7, 8), (9, 10)]:
                x = make_input((2, 3, h, w), "contiguous", seed=h + w)
                kw_ = dict(kernel_size=kernel, stride=stride, padding=pad, ceil_mode=ceil_mode,
                           count_include_pad=count_include_pad, divisor_override=divisor)
                _compare(lambda t: TF.avg_pool2d(t, **kw_), lambda t: FF.avg_pool2d(t, **kw_), x)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("stride", [None, 1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_avg_pool1d_grid(kernel, stride, ceil_mode):
    for pad in range(kernel // 2 + 1):
        for cip in (False, True):
            for length in (9, 10, 11):
                x = make_input((2, 3, length), "contiguous", seed=length)
                kw_ = dict(kernel_size=kernel, stride=stride, padding=pad, ceil_mode=ceil_mode, count_include_pad=cip)
                _compare(lambda t: TF.avg_pool1d(t, **kw_), lambda t: FF.avg_pool1d(t, **kw_), x)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_avg_pool2d_layouts(layout, dtype):
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else None
    for kw_ in [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1),
                dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), ceil_mode=True, count_include_pad=False),
                dict(kernel_size=3, stride=3, ceil_mode=True, divisor_override=-2)]:
        x = make_input((2, 20, 9, 11), layout, dtype)
        y = _compare(lambda t: TF.avg_pool2d(t, **kw_), lambda t: FF.avg_pool2d(t, **kw_), x, tol)
        if layout == "channels_last":
            assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("norm_type", [1, 2, 3.5, float("inf")])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_lp_pool(norm_type, ceil_mode):
    # positive inputs keep fractional powers real (as torch's users must)
    for layout in ("contiguous", "channels_last"):
        x = make_input((2, 4, 7, 9), layout).abs() + 0.1
        for kernel, stride in [(2, None), ((3, 2), 2), (3, 1)]:
            _compare(lambda t: TF.lp_pool2d(t, norm_type, kernel, stride, ceil_mode),
                     lambda t: FF.lp_pool2d(t, norm_type, kernel, stride, ceil_mode), x)
    x1 = make_input((2, 4, 10), "contiguous").abs() + 0.1
    for kernel, stride in [(2, None), (3, 2)]:
        _compare(lambda t: TF.lp_pool1d(t, norm_type, kernel, stride, ceil_mode),
                 lambda t: FF.lp_pool1d(t, norm_type, kernel, stride, ceil_mode), x1)


def test_batch0_and_unbatched():
    assert FF.avg_pool2d(torch.randn(0, 3, 8, 8), 2).shape == (0, 3, 4, 4)
    xu = torch.randn(3, 7, 9)
    torch.testing.assert_close(FF.avg_pool2d(xu, 3, 2, 1), TF.avg_pool2d(xu, 3, 2, 1))
    x1 = torch.randn(4, 10)
    torch.testing.assert_close(FF.avg_pool1d(x1, 3), TF.avg_pool1d(x1, 3))
    torch.testing.assert_close(FF.lp_pool1d(x1.abs(), 2, 3), TF.lp_pool1d(x1.abs(), 2, 3))


def test_gradcheck_and_gradgradcheck():
    x = make_input((1, 2, 5, 6), "contiguous").requires_grad_(True)
    for kw_ in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                dict(kernel_size=(2, 3), stride=1, divisor_override=5)]:
        f = lambda t: FF.avg_pool2d(t, **kw_)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))
    xc = make_input((1, 3, 5, 6), "channels_last").requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: FF.avg_pool2d(t, 3, 2, 1), (xc,))
    xp = (make_input((1, 2, 6, 6), "contiguous").abs() + 0.5).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: FF.lp_pool2d(t, 2, 2), (xp,))
    x1 = make_input((2, 2, 9), "contiguous").requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: FF.avg_pool1d(t, 3, 2, 1), (x1,))


def test_modules_match_torch():
    pairs = [(fnn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False, divisor_override=4),
              torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False, divisor_override=4)),
             (fnn.AvgPool1d(3, 2, 1), torch.nn.AvgPool1d(3, 2, 1)),
             (fnn.LPPool2d(2, (2, 3), 1), torch.nn.LPPool2d(2, (2, 3), 1)),
             (fnn.LPPool1d(3, 2), torch.nn.LPPool1d(3, 2))]
    for ours, theirs in pairs:
        assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
        x = torch.rand(2, 4, 9) if isinstance(ours, (torch.nn.AvgPool1d, torch.nn.LPPool1d)) else torch.rand(2, 4, 9, 10)
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("call,exc,match", [
    (lambda x: FF.avg_pool2d(x, 3, padding=2), ValueError, "padding.*half of kernel size"),
    (lambda x: FF.avg_pool2d(x, 0), ValueError, "kernel_size"),
    (lambda x: FF.avg_pool2d(x, 2, stride=0), ValueError, "stride"),
    (lambda x: FF.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda x: FF.avg_pool2d(x, 2, divisor_override=1.5), TypeError, "divisor_override"),
    (lambda x: FF.avg_pool2d(x.int(), 2), TypeError, "input must have a floating dtype"),
    (lambda x: FF.avg_pool2d(x[0, 0, 0], 2), ValueError, "input with 3 or 4 dimensions"),
    (lambda x: FF.avg_pool2d(x, 6), ValueError, "output size"),
    (lambda x: FF.avg_pool1d(x, 2), ValueError, "input with 2 or 3 dimensions"),
    (lambda x: FF.lp_pool2d(x, 2, 0), ValueError, "kernel_size"),
    (lambda x: FF.lp_pool2d(x, "2", 2), TypeError, "norm_type"),
])
def test_bad_arguments_raise(call, exc, match):
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(exc, match=match):
        call(x)


def test_op_level_validation():
    ops = torch.ops.fastconv
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="padding"):
        ops.avg_pool2d(x, [2, 2], [1, 1], [2, 2], False, True, None)
    with pytest.raises(ValueError, match="divisor_override"):
        ops.avg_pool2d(x, [2, 2], [1, 1], [0, 0], False, True, 0)
    with pytest.raises(ValueError, match="grad_output of shape"):
        ops.avg_pool2d_backward(torch.randn(1, 2, 3, 3), [5, 5], [2, 2], [2, 2], [0, 0], False, True, None)


# NCHW planes of at most 256x256 elements run 16 float32 / 8 float64 planes at a time, transposed into pixels of
# one vector (csrc/cpu/pool/pool_avg.cpp, avg_plane_block): whole blocks and a partial last one, narrow and wide
# rows, every window rule. Each plane must come out bit for bit as it does alone (batch-invariant results), forward
# and backward, and the forward as torch's.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 19, 7, 8), (1, 16, 10, 10), (3, 11, 5, 9), (1, 24, 32, 7), (1, 17, 30, 31)])
def test_avg_pool2d_plane_blocks(shape, dtype, threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for kw_ in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                                                count_include_pad=False),
                    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), divisor_override=5),
                    dict(kernel_size=shape[2:], stride=1), dict(kernel_size=3, stride=1, padding=1)):
            x = make_input(shape, "contiguous", seed=sum(shape)).to(dtype).requires_grad_(True)
            y = FF.avg_pool2d(x, **kw_)
            assert torch.equal(y, TF.avg_pool2d(x, **kw_))
            g = torch.randn_like(y)
            gx = torch.autograd.grad(y, x, g)[0]
            planes = x.detach().reshape(-1, 1, *shape[2:])
            for i in range(planes.shape[0]):
                xi = planes[i:i + 1].clone().requires_grad_(True)
                yi = FF.avg_pool2d(xi, **kw_)
                assert torch.equal(yi.reshape(-1), y.reshape(-1, yi.numel())[i])
                gi = torch.autograd.grad(yi, xi, g.reshape(-1, 1, *y.shape[2:])[i:i + 1])[0]
                assert torch.equal(gi.reshape(-1), gx.reshape(-1, gi.numel())[i])
    finally:
        torch.set_num_threads(old)
