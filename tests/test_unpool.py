"""max_unpool1d/2d against torch: values, gradients, layouts, output_size, index validation."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn as fnn
import fastconv.nn.functional as FF
from test_pool_helpers import make_input


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0)), (3, 3, 0)])
def test_max_unpool2d_matches_torch(layout, dtype, kernel, stride, padding):
    x = make_input((2, 5, 9, 10), layout, dtype, distinct=True)
    y, ind = TF.max_pool2d(x, kernel, stride, padding, return_indices=True)
    if layout == "channels_last":
        y, ind = y.contiguous(memory_format=torch.channels_last), ind.contiguous(memory_format=torch.channels_last)
    k2, s2, p2 = [(v, v) if isinstance(v, int) else v for v in (kernel, stride or kernel, padding)]
    defaults = [(i - 1) * s + k - 2 * p for i, s, k, p in zip(y.shape[2:], s2, k2, p2)]
    outs = [x.shape[2:], x.shape]  # the pooled input's size: every index is in range
    if defaults[0] >= x.shape[2] and defaults[1] >= x.shape[3]:
        outs.append(None)
    for out in outs:
        yt = y.detach().clone().requires_grad_(True)
        yf = y.detach().clone().requires_grad_(True)
        ot = TF.max_unpool2d(yt, ind, kernel, stride, padding, out)
        of = FF.max_unpool2d(yf, ind, kernel, stride, padding, out)
        assert torch.equal(of, ot)
        if layout == "channels_last":
            assert of.is_contiguous(memory_format=torch.channels_last)
        g = torch.randn_like(ot)
        ot.backward(g)
        of.backward(g)
        assert torch.equal(yf.grad, yt.grad)


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), (4, 3, 2)])
def test_max_unpool1d_matches_torch(kernel, stride, padding):
    x = make_input((2, 3, 11), "contiguous", distinct=True)
    y, ind = TF.max_pool1d(x, kernel, stride, padding, return_indices=True)
    default = (y.shape[2] - 1) * (stride or kernel) + kernel - 2 * padding
    for out in [(11,)] + ([None] if default >= 11 else []):
        torch.testing.assert_close(FF.max_unpool1d(y, ind, kernel, stride, padding, out),
                                   TF.max_unpool1d(y, ind, kernel, stride, padding, out), rtol=0, atol=0)
    # unbatched
    torch.testing.assert_close(FF.max_unpool1d(y[0], ind[0], kernel, stride, padding, (11,)),
                               TF.max_unpool1d(y[0], ind[0], kernel, stride, padding, (11,)), rtol=0, atol=0)


def test_batch0_unbatched_and_module():
    y = torch.randn(0, 3, 4, 4)
    assert FF.max_unpool2d(y, torch.zeros(0, 3, 4, 4, dtype=torch.long), 2).shape == (0, 3, 8, 8)
    x = make_input((3, 8, 8), "contiguous", distinct=True)
    p, i = TF.max_pool2d(x, 2, return_indices=True)
    assert torch.equal(FF.max_unpool2d(p, i, 2), TF.max_unpool2d(p, i, 2))
    ours, theirs = fnn.MaxUnpool2d(2), torch.nn.MaxUnpool2d(2)
    assert isinstance(ours, torch.nn.MaxUnpool2d) and repr(ours) == repr(theirs)
    assert torch.equal(ours(p, i, output_size=(9, 9)), theirs(p, i, output_size=(9, 9)))
    ours1, theirs1 = fnn.MaxUnpool1d(2), torch.nn.MaxUnpool1d(2)
    p1, i1 = TF.max_pool1d(x, 2, return_indices=True)
    assert repr(ours1) == repr(theirs1) and torch.equal(ours1(p1, i1), theirs1(p1, i1))


def test_gradcheck_and_gradgradcheck():
    x = make_input((1, 2, 6, 7), "contiguous", distinct=True)
    y, ind = TF.max_pool2d(x, 2, return_indices=True)
    y = y.detach().requires_grad_(True)
    f = lambda t: FF.max_unpool2d(t, ind, 2, output_size=(6, 7))  # noqa: E731
    assert torch.autograd.gradcheck(f, (y,))
    assert torch.autograd.gradgradcheck(f, (y,))


@pytest.mark.parametrize("call,exc,match", [
    (lambda y, i: FF.max_unpool2d(y, i[:, :, :1], 2), ValueError, "indices of shape"),
    (lambda y, i: FF.max_unpool2d(y, i.int(), 2), TypeError, "indices must be int64"),
    (lambda y, i: FF.max_unpool2d(y, i + 100, 2), RuntimeError, "invalid index"),
    (lambda y, i: FF.max_unpool2d(y, i - 100, 2), RuntimeError, "invalid index"),
    (lambda y, i: FF.max_unpool2d(y, i, 2, output_size=(12, 8)), ValueError, "output_size"),
    (lambda y, i: FF.max_unpool2d(y, i, 2, output_size=(6, 8)), ValueError, "output_size"),
    (lambda y, i: FF.max_unpool2d(y, i, 2, output_size=(8,)), ValueError, "output_size"),
    (lambda y, i: FF.max_unpool2d(y.long(), i, 2), TypeError, "input must have a floating dtype"),
    # torch: IndexError from its default-size arithmetic (a 1-d input has no H)
    (lambda y, i: FF.max_unpool2d(y[0, 0, 0], i[0, 0, 0], 2), IndexError, "must have 2 values for input of shape"),
])
def test_bad_arguments_raise(call, exc, match):
    x = make_input((1, 2, 8, 8), "contiguous", torch.float32, distinct=True)
    y, i = TF.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(exc, match=match):
        call(y, i)


def test_op_level_index_validation_never_writes_out_of_bounds():
    ops = torch.ops.fastconv
    y = torch.randn(1, 2, 3, 3)
    bad = torch.zeros(1, 2, 3, 3, dtype=torch.long)
    bad[0, 1, 2, 2] = 36
    with pytest.raises(RuntimeError, match="invalid index 36"):
        ops.max_unpool2d(y, bad, [6, 6])
    with pytest.raises(RuntimeError, match="invalid index 36"):
        ops.max_unpool2d(y.contiguous(memory_format=torch.channels_last), bad, [6, 6])
    with pytest.raises(ValueError, match="output_size must be non-negative"):
        ops.max_unpool2d(y, bad, [-1, 6])


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("threads", [1, 2])
def test_scatter_indices_in_any_order_channels_last(batch, threads):
    """The NHWC scatter zeroes rows of the result lazily, just before the first index that reaches them
    (csrc/cpu/pool/pool_index.cpp): indices pointing backwards, repeated or far ahead must still give torch's
    result (unpool: assignment; max-pool backward: accumulation). batch 1 with 2 threads splits channels."""
    from fastconv import _C
    ops = torch.ops.fastconv
    old_threads, old_work = torch.get_num_threads(), _C.set_min_parallel_work(0)
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        n, c, oh, ow, h, w = batch, 48, 4, 5, 9, 11
        y = torch.randn(n, c, oh, ow, dtype=torch.float64)
        # unique per (n, c) plane, in random order: unpool assigns, so duplicates would be order-dependent
        ind = torch.stack([torch.randperm(h * w)[: oh * ow] for _ in range(n * c)]).view(n, c, oh, ow)
        ycl, icl = y.contiguous(memory_format=torch.channels_last), ind.contiguous(memory_format=torch.channels_last)
        out = ops.max_unpool2d(ycl, icl, [h, w])
        ref = torch.zeros(n, c, h * w, dtype=torch.float64).scatter_(2, ind.view(n, c, -1), y.view(n, c, -1))
        torch.testing.assert_close(out, ref.view(n, c, h, w), rtol=0, atol=0)
        # accumulation with repeated indices (several outputs of one plane sending to one input)
        rep = torch.randint(0, h * w, (n, c, oh, ow))
        rcl = rep.contiguous(memory_format=torch.channels_last)
        got = ops.max_pool2d_backward(ycl, rcl, [h, w])
        want = torch.zeros(n, c, h * w, dtype=torch.float64).scatter_add_(2, rep.view(n, c, -1), y.view(n, c, -1))
        torch.testing.assert_close(got, want.view(n, c, h, w), rtol=1e-12, atol=1e-12)
    finally:
        torch.set_num_threads(old_threads)
        _C.set_min_parallel_work(old_work)
