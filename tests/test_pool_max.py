"""max_pool1d / max_pool2d against torch: values, indices, gradients, layouts, ties/NaN, errors; the values-only op
that inference takes."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn.functional as FF
from test_pool_helpers import make_input

LAYOUTS = ["contiguous", "channels_last", "noncontig"]


def _compare_max2d(x, **kw):
    xt = x.detach().clone().requires_grad_(True)
    xf = x.detach().clone().requires_grad_(True)
    yt, it = TF.max_pool2d(xt, return_indices=True, **kw)
    yf, i_f = FF.max_pool2d(xf, return_indices=True, **kw)
    assert yf.shape == yt.shape, kw
    assert torch.equal(yf, yt), kw
    assert torch.equal(i_f, it), kw
    g = torch.randn_like(yt)
    yt.backward(g)
    yf.backward(g)
    torch.testing.assert_close(xf.grad, xt.grad, msg=str(kw))
    return yf


@pytest.mark.parametrize("kernel,dilation", [(1, 1), (2, 1), (3, 1), ((2, 3), 1), (5, 1), (2, 2), ((3, 2), (1, 3))])
@pytest.mark.parametrize("stride", [None, 1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool2d_grid(kernel, dilation, stride, ceil_mode):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    for ph, pw in sorted({(0, 0), (kh // 2, kw // 2), (kh // 2, 0), (0, kw // 2)}):
        for h, w in [(7, 8), (8, 5), (9, 10)]:  # sizes on both sides of the ceil_mode boundaries
            x = make_input((2, 3, h, w), "contiguous", torch.float64, seed=h * w)
            _compare_max2d(x, kernel_size=kernel, stride=stride, padding=(ph, pw), dilation=dilation,
                           ceil_mode=ceil_mode)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool2d_layouts(layout, dtype):
    for kw in [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1),
               dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1), ceil_mode=True)]:
        x = make_input((2, 20, 9, 11), layout, dtype)
        y = _compare_max2d(x, **kw)
        if layout == "channels_last":
            assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("stride", [None, 1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool1d_grid(kernel, stride, dilation, ceil_mode):
    for pad in range(kernel // 2 + 1):
        for length in (9, 10, 11):
            x = make_input((2, 3, length), "contiguous", seed=length).requires_grad_(True)
            kw = dict(kernel_size=kernel, stride=stride, padding=pad, dilation=dilation, ceil_mode=ceil_mode)
            yt, it = TF.max_pool1d(x, return_indices=True, **kw)
            yf, i_f = FF.max_pool1d(x, return_indices=True, **kw)
            assert torch.equal(yf, yt) and torch.equal(i_f, it), kw
            g = torch.randn_like(yt)
            (gt,) = torch.autograd.grad(yt, x, g)
            (gf,) = torch.autograd.grad(yf, x, g)
            torch.testing.assert_close(gf, gt)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("width", [9, 40])
def test_ties_nan_and_inf_match_torch(layout, dtype, width):
    # small integers: many ties inside each window; NaNs and -inf windows. 37 channels / width 40 reach
    # both the vector blocks and the scalar tails of each layout.
    x = torch.randint(0, 3, (2, 37, 9, width)).to(dtype)
    x[0, 0, 1, 1] = float("nan")
    x[0, 0, 2, 2] = float("nan")  # two NaNs in one window: torch keeps the last
    x[1, 3, :4, :4] = float("-inf")
    x[1, 4, 5, :] = float("nan")
    x[1, 36, 3, :] = float("nan")
    x[0, 20, :, 1::3] = float("nan")
    x = x.contiguous(memory_format=torch.channels_last) if layout == "channels_last" else x
    for kw in [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2), dict(kernel_size=3, stride=2, dilation=2)]:
        yt, it = TF.max_pool2d(x, return_indices=True, **kw)
        yf, i_f = FF.max_pool2d(x, return_indices=True, **kw)
        assert torch.equal(i_f, it), kw
        torch.testing.assert_close(yf, yt, equal_nan=True, rtol=0, atol=0)


def test_batch0_and_unbatched():
    x = torch.randn(0, 3, 8, 8)
    y, i = FF.max_pool2d(x, 2, return_indices=True)
    assert y.shape == (0, 3, 4, 4) and i.shape == (0, 3, 4, 4) and i.dtype == torch.int64
    xu = torch.randn(3, 7, 9, requires_grad=True)
    yt = TF.max_pool2d(xu, 3, 2, 1)
    yf = FF.max_pool2d(xu, 3, 2, 1)
    assert torch.equal(yf, yt)
    x1 = torch.randn(4, 10)
    assert torch.equal(FF.max_pool1d(x1, 3, return_indices=True)[1], TF.max_pool1d(x1, 3, return_indices=True)[1])


def test_gradcheck_and_gradgradcheck():
    x = make_input((1, 2, 5, 6), "contiguous", distinct=True).requires_grad_(True)
    for kw in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
               dict(kernel_size=(2, 3), stride=1, dilation=(2, 1))]:
        f = lambda t: FF.max_pool2d(t, **kw)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))
    xc = make_input((1, 3, 5, 6), "channels_last", distinct=True).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: FF.max_pool2d(t, 3, 2, 1), (xc,))
    x1 = make_input((2, 2, 9), "contiguous", distinct=True).requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda t: FF.max_pool1d(t, 3, 2, 1), (x1,))


def test_module_matches_torch():
    import fastconv.nn as fnn

    for ours, theirs in [(fnn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
                         (fnn.MaxPool2d(2, return_indices=True), torch.nn.MaxPool2d(2, return_indices=True)),
                         (fnn.MaxPool1d(3, 2, dilation=2), torch.nn.MaxPool1d(3, 2, dilation=2))]:
        assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
        x = torch.randn(2, 4, 9) if isinstance(ours, torch.nn.MaxPool1d) else torch.randn(2, 4, 9, 10)
        yo, yt = ours(x), theirs(x)
        if isinstance(yo, tuple):
            assert all(torch.equal(a, b) for a, b in zip(yo, yt))
        else:
            assert torch.equal(yo, yt)


@pytest.mark.parametrize("call,exc,match", [
    (lambda x: FF.max_pool2d(x, 3, padding=2), ValueError, "padding.*pad should be at most half"),
    (lambda x: FF.max_pool2d(x, 2, padding=2, dilation=3), ValueError, "padding.*smaller than or equal to half"),
    (lambda x: FF.max_pool2d(x, 0), ValueError, "kernel_size"),
    (lambda x: FF.max_pool2d(x, 2, stride=0), ValueError, "stride"),
    (lambda x: FF.max_pool2d(x, 2, stride=-1), ValueError, "stride"),
    (lambda x: FF.max_pool2d(x, 2, dilation=0), ValueError, "dilation"),
    (lambda x: FF.max_pool2d(x, 2, padding=-1), ValueError, "padding"),
    (lambda x: FF.max_pool2d(x, (2, 2, 2)), ValueError, "kernel_size"),
    (lambda x: FF.max_pool2d(x[0, 0, 0], 2), ValueError, "input with 3 or 4 dimensions"),
    (lambda x: FF.max_pool2d(x.long(), 2), TypeError, "input must have a floating dtype"),
    (lambda x: FF.max_pool2d(x, 9), ValueError, "output size"),
    (lambda x: FF.max_pool1d(x, 2), ValueError, "input with 2 or 3 dimensions"),
    (lambda x: FF.max_pool2d(x[:, :0], 2), ValueError, "non-zero channels"),
])
def test_bad_arguments_raise(call, exc, match):
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(exc, match=match):
        call(x)


def test_op_level_validation():
    ops = torch.ops.fastconv
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match="padding"):
        ops.max_pool2d_with_indices(x, [3, 3], [1, 1], [2, 2], [1, 1], False)
    y, i = ops.max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1], False)
    with pytest.raises(RuntimeError, match="indices: found an invalid index 25"):
        ops.max_pool2d_backward(y, torch.full_like(i, 25), [5, 5])
    with pytest.raises(RuntimeError, match="invalid index -2"):
        ops.max_pool2d_gather(x, torch.full_like(i, -2))
    with pytest.raises(RuntimeError, match="invalid index -2"):
        ops.max_pool2d_backward(y, torch.full_like(i, -2), [5, 5])
    # -1 marks a window with no tap inside the input: the max-pool backward and gather skip it
    assert torch.equal(ops.max_pool2d_backward(y, torch.full_like(i, -1), [5, 5]), torch.zeros_like(x))
    assert torch.equal(ops.max_pool2d_gather(x, torch.full_like(i, -1)), torch.zeros_like(y))
    with pytest.raises(ValueError, match="indices of shape"):
        ops.max_pool2d_backward(y, i[:, :, :1], [5, 5])
    with pytest.raises(TypeError, match="indices must be int64"):
        ops.max_pool2d_backward(y, i.int(), [5, 5])
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.max_pool2d_with_indices(x.half(), [2, 2], [2, 2], [0, 0], [1, 1], False)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,kw", [
    # torch allows padding <= kernel // 2, so a window can miss the input only by straddling an input
    # shorter than its dilation, which leaves one output along that axis: every window is empty.
    # H = 1, 2-row window dilated by 2, padded by 1: taps at rows -1 and 1; torch's index is past the plane
    ((2, 3, 1, 8), dict(kernel_size=(2, 5), stride=(1, 3), padding=(1, 2), dilation=(2, 1))),
    # W = 2, dilation 3 along W: taps at columns -1 and 2; torch's index names the next row's first pixel
    ((2, 3, 4, 2), dict(kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 3))),
])
def test_window_wholly_in_padding(layout, dtype, shape, kw):
    """A window with no tap inside the input: value -inf as torch's, index kEmptyWindowIndex (-1), and no
    gradient from it (torch's backward sends it to the element its out-of-window index names)."""
    x = make_input(shape, layout, dtype, seed=5)
    yt, it = TF.max_pool2d(x, return_indices=True, **kw)
    xf = x.detach().clone().requires_grad_(True)
    yf, i_f = FF.max_pool2d(xf, return_indices=True, **kw)
    empty = torch.isneginf(yt)
    assert empty.all()
    assert torch.equal(yf, yt)
    assert torch.equal(i_f[~empty], it[~empty]) and (i_f[empty] == -1).all()
    g = torch.randn_like(yt)
    yf.backward(g)
    n, c, h, w = shape
    ref = torch.zeros(n, c, h * w, dtype=dtype)
    ref.scatter_add_(2, it.masked_fill(empty, 0).reshape(n, c, -1), g.masked_fill(empty, 0).reshape(n, c, -1))
    torch.testing.assert_close(xf.grad, ref.view(n, c, h, w), rtol=0, atol=0)
    # double backward (the gather) reads 0 for those outputs
    gg = torch.randn_like(x)
    expect = gg.reshape(n, c, -1).gather(2, it.masked_fill(empty, 0).reshape(n, c, -1)).view_as(yt)
    got = torch.ops.fastconv.max_pool2d_gather(gg, i_f)
    torch.testing.assert_close(got, expect.masked_fill(empty, 0), rtol=0, atol=0)
    # max_unpool rejects the index like any negative one
    with pytest.raises(RuntimeError, match="invalid index -1"):
        torch.ops.fastconv.max_unpool2d(yf.detach(), i_f, [h, w])


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [16, 37, 64])
def test_values_only_op(layout, dtype, channels):
    """Without a gradient or indices to return, F.max_pool2d runs fastconv::max_pool2d (no index tensor): the
    same values as torch and as the with-indices op, NaN and empty windows included; with a gradient wanted, the
    with-indices op."""
    x = make_input((2, channels, 11, 12), layout, dtype, seed=channels)
    x[0, 1, 2, 2] = float("nan")
    x[1, 3, :5, :5] = float("-inf")
    for kw in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1, dilation=2),
               dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), ceil_mode=True)]:
        yt = TF.max_pool2d(x, **kw)
        with torch.profiler.profile() as prof:
            yf = FF.max_pool2d(x, **kw)
        names = {e.name for e in prof.events()}
        assert "fastconv::max_pool2d" in names and "fastconv::max_pool2d_with_indices" not in names, names
        torch.testing.assert_close(yf, yt, equal_nan=True, rtol=0, atol=0)
        assert yf.stride() == yt.stride()
    xw = make_input((1, 3, 1, 8), layout, dtype, seed=3)  # every window in the padding: -inf
    kw = dict(kernel_size=(2, 5), stride=(1, 3), padding=(1, 2), dilation=(2, 1))
    assert torch.equal(FF.max_pool2d(xw, **kw), TF.max_pool2d(xw, **kw))
    xg = x.detach().clone().requires_grad_(True)
    with torch.profiler.profile() as prof:
        y = FF.max_pool2d(xg, 3, 2, 1)
    assert "fastconv::max_pool2d_with_indices" in {e.name for e in prof.events()}
    y.sum().backward()
    assert xg.grad is not None
    with torch.no_grad():  # no gradient wanted: the values op, whatever requires_grad says
        assert not FF.max_pool2d(xg, 3, 2, 1).requires_grad
    # the op itself: an input that requires grad gets a graph (through the with-indices op)
    yo = torch.ops.fastconv.max_pool2d(xg, [3, 3], [2, 2], [1, 1], [1, 1], False)
    assert yo.requires_grad
    (gx,) = torch.autograd.grad(yo.nansum(), xg)
    (gt,) = torch.autograd.grad(TF.max_pool2d(xg, 3, 2, 1).nansum(), xg)
    torch.testing.assert_close(gx, gt)


# NCHW rows of fewer than 16 outputs, planes of at most 256x256: 16 float32 / 8 float64 planes at a time, the block
# transposed into one channels_last image (csrc/cpu/pool/pool_max.cpp, max_plane_block): whole blocks and a partial
# last one, every window rule, NaN and -inf, values and indices as torch's, with and without indices, 1 and 2 threads.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 19, 7, 8), (1, 16, 14, 14), (3, 11, 27, 27), (1, 9, 40, 5)])
def test_max_pool2d_plane_blocks(shape, dtype, threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = make_input(shape, "contiguous", dtype, seed=sum(shape))
        x[0, 1, 2, 2] = float("nan")
        x[-1, -1, :3, :3] = float("-inf")
        for kw in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                   dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
                   dict(kernel_size=3, stride=2)]:
            yt, it = TF.max_pool2d(x, return_indices=True, **kw)
            yf, i_f = FF.max_pool2d(x, return_indices=True, **kw)
            assert torch.equal(i_f, it), kw
            torch.testing.assert_close(yf, yt, equal_nan=True, rtol=0, atol=0)
            torch.testing.assert_close(FF.max_pool2d(x, **kw), yt, equal_nan=True, rtol=0, atol=0)
    finally:
        torch.set_num_threads(old)
