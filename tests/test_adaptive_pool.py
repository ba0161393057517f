"""fastconv adaptive avg/max pooling against torch: values, indices, gradients, layouts, shapes, errors."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv
import fastconv.nn.functional as F

DTYPES = [torch.float32, torch.float64]
LAYOUTS = ["contiguous", "channels_last", "noncontiguous"]
# (input H, W) -> output sizes: dividing, not dividing (overlapping windows), larger than input, global, None.
CASES_2D = [
    ((8, 8), (4, 2)),
    ((7, 9), (3, 4)),
    ((5, 6), (7, 11)),
    ((7, 7), 1),
    ((6, 5), (None, 3)),
    ((4, 9), 5),
]
CASES_1D = [(8, 4), (9, 4), (5, 7), (7, 1), (6, None)]


def _make(shape, dtype, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    if layout == "noncontiguous":  # a strided slice of a larger tensor
        big = torch.randn(*shape[:-1], 2 * shape[-1] + 1, generator=g, dtype=dtype)
        x = big[..., 1::2]
        assert not x.is_contiguous()
        return x
    x = torch.randn(shape, generator=g, dtype=dtype)
    if layout == "channels_last":
        x = x.to(memory_format=torch.channels_last)
    return x


def _check_all(ours, theirs, x, return_indices):
    """Compares outputs (and indices) and gradients of fastconv's function with torch's."""
    xo = x.detach().clone().requires_grad_()
    xt = x.detach().clone().requires_grad_()
    yo, yt = ours(xo), theirs(xt)
    if return_indices:
        (yo, io), (yt, it) = yo, yt
        assert io.dtype == torch.int64
        torch.testing.assert_close(io, it, rtol=0, atol=0)
    assert yo.shape == yt.shape
    torch.testing.assert_close(yo, yt)
    g = torch.randn_like(yt)
    (go,) = torch.autograd.grad(yo, xo, g)
    (gt,) = torch.autograd.grad(yt, xt, g)
    torch.testing.assert_close(go, gt)
    return yo, go


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("in_hw,out", CASES_2D)
def test_avg_pool2d_matches_torch(in_hw, out, layout, dtype):
    x = _make((2, 5) + in_hw, dtype, layout)
    y, gx = _check_all(lambda t: F.adaptive_avg_pool2d(t, out), lambda t: TF.adaptive_avg_pool2d(t, out), x, False)
    if layout == "channels_last" and y.shape[2] * y.shape[3] > 1:
        assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    if layout == "channels_last":  # grad_input keeps the input's layout, also for global pooling
        assert gx.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("in_hw,out", CASES_2D)
def test_max_pool2d_matches_torch(in_hw, out, layout, dtype):
    x = _make((2, 5) + in_hw, dtype, layout, seed=1)
    y, gx = _check_all(lambda t: F.adaptive_max_pool2d(t, out, return_indices=True),
                       lambda t: TF.adaptive_max_pool2d(t, out, return_indices=True), x, True)
    if layout == "channels_last":
        assert gx.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("layout", ["contiguous", "noncontiguous", "transposed"])
@pytest.mark.parametrize("length,out", CASES_1D)
def test_pool1d_matches_torch(length, out, layout):
    if layout == "transposed":  # (N, C, L) view of an (N, L, C) tensor: channel-minor memory
        x = torch.randn(3, length, 6, dtype=torch.float64).transpose(1, 2)
    else:
        x = _make((3, 6, length), torch.float64, layout)
    if out is None:  # torch's 1-d functions take an int or a 1-tuple of ints, no None (the 2-d ones do)
        for f, tf in ((F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d), (F.adaptive_max_pool1d, TF.adaptive_max_pool1d)):
            with pytest.raises(TypeError):
                tf(x, (None,))
            with pytest.raises(TypeError, match="output_size"):
                f(x, (None,))
        return
    _check_all(lambda t: F.adaptive_avg_pool1d(t, out), lambda t: TF.adaptive_avg_pool1d(t, out), x, False)
    _check_all(lambda t: F.adaptive_max_pool1d(t, out, True), lambda t: TF.adaptive_max_pool1d(t, out, True), x, True)
    assert F.adaptive_max_pool1d(x, out).shape == TF.adaptive_max_pool1d(x, out).shape


@pytest.mark.parametrize("spatial", [1, 2])
def test_unbatched_and_empty_batch(spatial):
    shape = (4, 7) if spatial == 1 else (4, 7, 6)
    fo = {1: (F.adaptive_avg_pool1d, F.adaptive_max_pool1d), 2: (F.adaptive_avg_pool2d, F.adaptive_max_pool2d)}
    ft = {1: (TF.adaptive_avg_pool1d, TF.adaptive_max_pool1d), 2: (TF.adaptive_avg_pool2d, TF.adaptive_max_pool2d)}
    out = 3
    x = torch.randn(shape, dtype=torch.float64)
    _check_all(lambda t: fo[spatial][0](t, out), lambda t: ft[spatial][0](t, out), x, False)
    _check_all(lambda t: fo[spatial][1](t, out, True), lambda t: ft[spatial][1](t, out, True), x, True)
    empty = torch.randn((0,) + shape, requires_grad=True)
    for f, t in zip(fo[spatial], ft[spatial]):
        y = f(empty, out)
        assert y.shape == t(empty, out).shape
        y.sum().backward()
        assert empty.grad.shape == empty.shape


def test_max_nan_propagation_ties_and_neg_inf():
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 3, (2, 4, 9, 10), generator=g).double()  # many ties
    x[0, 0, 1, 1] = float("nan")
    x[0, 0, 2, 3] = float("nan")  # two NaNs in one window: torch reports the later one
    x[1, 2] = float("-inf")  # a whole plane of -inf: index of each window's first element
    x[1, 3, :, 4] = float("inf")
    for layout in ("contiguous", "channels_last"):
        xl = x.to(memory_format=torch.channels_last) if layout == "channels_last" else x
        for out in [(1, 1), (3, 4), (4, 3), (12, 13)]:
            y, i = F.adaptive_max_pool2d(xl, out, return_indices=True)
            yt, it = TF.adaptive_max_pool2d(x, out, return_indices=True)
            torch.testing.assert_close(y, yt, equal_nan=True, rtol=0, atol=0)
            assert torch.equal(i, it), (layout, out)


# NCHW adaptive max pooling (not global) runs 16 float32 / 8 float64 planes at a time through the channels_last
# kernel (csrc/cpu/pool/adaptive_pool_max.cpp): several blocks and a partial one, ties, NaN, -inf, 1 and 2 threads.
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_nchw_plane_blocks(dtype, threads):
    g = torch.Generator().manual_seed(5)
    x = torch.randint(0, 4, (2, 19, 13, 11), generator=g).to(dtype)
    x[0, 1, 2, 2] = float("nan")
    x[1, 18] = float("-inf")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for out in [(4, 4), (3, 5), (13, 11), (2, 1)]:
            y, i = F.adaptive_max_pool2d(x, out, return_indices=True)
            yt, it = TF.adaptive_max_pool2d(x, out, return_indices=True)
            torch.testing.assert_close(y, yt, equal_nan=True, rtol=0, atol=0)
            assert torch.equal(i, it), out
    finally:
        torch.set_num_threads(old)


def test_large_channel_count_nhwc_blocks():
    # More channels than one NHWC channel block, odd count: the block remainder path.
    x = torch.randn(2, 300, 5, 6).to(memory_format=torch.channels_last)
    _check_all(lambda t: F.adaptive_avg_pool2d(t, (2, 4)), lambda t: TF.adaptive_avg_pool2d(t, (2, 4)), x, False)
    _check_all(lambda t: F.adaptive_max_pool2d(t, (2, 4), True), lambda t: TF.adaptive_max_pool2d(t, (2, 4), True),
               x, True)


def test_global_pool_big_enough_for_threads():
    # Above the threading threshold, both layouts, float32 against torch.
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(3, 130, 14, 14).to(memory_format=fmt)
        for out in (1, (5, 3)):
            _check_all(lambda t: F.adaptive_avg_pool2d(t, out), lambda t: TF.adaptive_avg_pool2d(t, out), x, False)
            _check_all(lambda t: F.adaptive_max_pool2d(t, out, True), lambda t: TF.adaptive_max_pool2d(t, out, True),
                       x, True)


def test_modules_match_torch_classes():
    pairs = [
        (fastconv.nn.AdaptiveAvgPool1d(3), torch.nn.AdaptiveAvgPool1d(3), (2, 4, 8)),
        (fastconv.nn.AdaptiveAvgPool2d((None, 2)), torch.nn.AdaptiveAvgPool2d((None, 2)), (2, 4, 5, 7)),
        (fastconv.nn.AdaptiveMaxPool1d(3), torch.nn.AdaptiveMaxPool1d(3), (2, 4, 8)),
        (fastconv.nn.AdaptiveMaxPool2d(3, return_indices=True), torch.nn.AdaptiveMaxPool2d(3, return_indices=True),
         (2, 4, 5, 7)),
    ]
    for ours, theirs, shape in pairs:
        assert isinstance(ours, type(theirs))
        assert repr(ours) == repr(theirs)
        assert ours.output_size == theirs.output_size
        x = torch.randn(shape)
        yo, yt = ours(x), theirs(x)
        torch.testing.assert_close(yo, yt)


@pytest.mark.parametrize("kind", ["avg", "max"])
@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_gradcheck_and_gradgradcheck(kind, fmt):
    # Distinct, well separated values so the max's argmax cannot flip under gradcheck's perturbation.
    x = (torch.randperm(2 * 3 * 5 * 7, dtype=torch.float64) / 10).reshape(2, 3, 5, 7)
    x = x.to(memory_format=fmt).requires_grad_()
    for out in [(2, 3), (1, 1), (6, 8)]:
        if kind == "avg":
            def f(t):
                return F.adaptive_avg_pool2d(t, out)
        else:
            def f(t):
                return F.adaptive_max_pool2d(t, out)
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))


def test_gradcheck_1d():
    x = (torch.randperm(2 * 3 * 7, dtype=torch.float64) / 10).reshape(2, 3, 7).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: F.adaptive_avg_pool1d(t, 3), (x,))
    assert torch.autograd.gradgradcheck(lambda t: F.adaptive_max_pool1d(t, 3), (x,))


def test_gather_is_adjoint_of_scatter():
    # <backward(gy, idx), v> == <gy, gather(v, idx)> and gather's own gradients (third-order path).
    ops = torch.ops.fastconv
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    _, idx = ops.adaptive_max_pool2d(x, [3, 4])
    gy = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    lhs = (ops.adaptive_max_pool2d_backward(gy, idx, [2, 3, 5, 7], False) * v).sum()
    rhs = (gy * ops.adaptive_max_pool2d_gather(v, idx)).sum()
    torch.testing.assert_close(lhs, rhs)
    assert torch.autograd.gradcheck(lambda t: ops.adaptive_max_pool2d_gather(t, idx), (v,))
    assert torch.autograd.gradgradcheck(lambda t: ops.adaptive_max_pool2d_gather(t, idx), (v,))


def _opcheck_samples():
    ops = torch.ops.fastconv
    samples = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        for out in ([3, 2], [1, 1], [6, 9]):
            x = torch.randn(2, 3, 5, 7, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
            _, idx = ops.adaptive_max_pool2d(x.detach(), out)
            gy = torch.randn(2, 3, *out, dtype=torch.float64).to(memory_format=fmt).requires_grad_()
            cl = fmt == torch.channels_last
            samples += [
                (ops.adaptive_avg_pool2d, (x, out)),
                (ops.adaptive_max_pool2d, (x, out)),
                (ops.adaptive_avg_pool2d_backward, (gy, [2, 3, 5, 7], cl)),
                (ops.adaptive_max_pool2d_backward, (gy, idx, [2, 3, 5, 7], cl)),
                (ops.adaptive_max_pool2d_gather, (x, idx)),
            ]
    return samples


def test_opcheck():
    for op, args in _opcheck_samples():
        torch.library.opcheck(op, args)


def test_compile_fullgraph_global_average_head():
    torch._dynamo.reset()
    model = torch.nn.Sequential(
        fastconv.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), fastconv.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 4)).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64).to(memory_format=torch.channels_last)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    torch.testing.assert_close(y, model(x))
    y.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for a, p in zip(grads, model.parameters()):
        torch.testing.assert_close(a, p.grad)


def test_compile_fullgraph_adaptive_max():
    torch._dynamo.reset()

    def f(t):
        y, i = F.adaptive_max_pool2d(t, (3, None), return_indices=True)
        return y * 2, i

    x = torch.randn(2, 3, 7, 5)
    y, i = torch.compile(f, fullgraph=True, backend="aot_eager")(x)
    yt, it = TF.adaptive_max_pool2d(x, (3, None), return_indices=True)
    torch.testing.assert_close(y, yt * 2)
    assert torch.equal(i, it)


# ---- bad input ----

@pytest.mark.parametrize("fn", [F.adaptive_avg_pool2d, F.adaptive_max_pool2d])
def test_errors_2d(fn):
    x = torch.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match="input with 3 or 4 dimensions"):
        fn(torch.randn(5, 5), 2)
    assert fn(x, (0, 2))[0].shape[-2:] == (0, 2)  # an empty result, as torch
    with pytest.raises(ValueError, match="output_size must be non-negative"):
        fn(x, -1)
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of 2"):
        fn(x, (2, 2, 2))
    with pytest.raises(TypeError, match="output_size"):
        fn(x, "2")
    with pytest.raises(ValueError, match="input must have non-zero size in its (non-batch|spatial) dimensions"):
        fn(torch.randn(2, 3, 0, 5), 2)
    if "max" in fn.__name__:  # torch: max pooling rejects C == 0, average pooling returns an empty result
        with pytest.raises(ValueError, match="non-zero size"):
            fn(torch.randn(2, 0, 5, 5), 2)
    else:
        assert fn(torch.randn(2, 0, 5, 5), 2).shape == (2, 0, 2, 2)
    with pytest.raises(TypeError, match="input must have a floating dtype"):
        fn(torch.ones(2, 3, 5, 5, dtype=torch.int64), 2)
    with pytest.raises(TypeError, match="input must be a Tensor"):
        fn([1.0, 2.0], 2)


@pytest.mark.parametrize("fn", [F.adaptive_avg_pool1d, F.adaptive_max_pool1d])
def test_errors_1d(fn):
    with pytest.raises(ValueError, match="input with 2 or 3 dimensions"):
        fn(torch.randn(2, 3, 4, 5), 2)
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of 1"):
        fn(torch.randn(2, 3, 8), (2, 2))
    with pytest.raises(ValueError, match="output_size must be non-negative"):
        fn(torch.randn(2, 3, 8), -1)
    with pytest.raises(TypeError, match="floating dtype"):
        fn(torch.ones(2, 3, 8, dtype=torch.int32), 2)


def test_op_level_errors():
    ops = torch.ops.fastconv
    x = torch.randn(2, 3, 5, 5)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: expected input with 4 dimensions"):
        ops.adaptive_avg_pool2d(torch.randn(3, 5, 5), [2, 2])
    with pytest.raises(ValueError, match="output_size must be non-negative"):
        ops.adaptive_max_pool2d(x, [2, -1])
    assert ops.adaptive_max_pool2d(x, [2, 0])[0].shape == (2, 3, 2, 0)  # torch's empty result
    with pytest.raises(ValueError, match="output_size must have 2 values"):
        ops.adaptive_avg_pool2d(x, [2, 2, 2])
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        ops.adaptive_avg_pool2d(x.int(), [2, 2])
    _, idx = ops.adaptive_max_pool2d(x, [2, 2])
    gy = torch.randn(2, 3, 2, 2)
    with pytest.raises(ValueError, match="does not match input_size"):
        ops.adaptive_max_pool2d_backward(gy, idx, [2, 4, 5, 5], False)
    with pytest.raises(TypeError, match="indices must be int64"):
        ops.adaptive_max_pool2d_backward(gy, idx.int(), [2, 3, 5, 5], False)
    bad = idx.clone()
    bad[0, 0, 0, 0] = 25
    with pytest.raises(IndexError, match="indices must lie in"):
        ops.adaptive_max_pool2d_backward(gy, bad, [2, 3, 5, 5], False)
    with pytest.raises(IndexError, match="indices must lie in"):
        ops.adaptive_max_pool2d_gather(x, bad)
    with pytest.raises(ValueError, match="input_size must have 4 values"):
        ops.adaptive_avg_pool2d_backward(gy, [2, 3, 5], False)
