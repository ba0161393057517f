"""The functional API's common calls reach the ops through fastconv._C.direct (typed dispatcher calls,
fastconv/nn/_direct_calls.py): the same results, gradients and errors as torch.ops.fastconv; torch.ops itself
under a TorchFunctionMode (which must see the op) and for tensor subclasses (which must keep their type)."""
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

import fastconv
import fastconv.nn.functional as FF
from conftest import randn

direct = fastconv._C.direct
ops = torch.ops.fastconv


def _args(name, x, dtype):
    if name in ("conv2d", "conv_transpose2d"):
        w, b = randn(4, 4, 3, 3, dtype=dtype), randn(4, dtype=dtype)
        if name == "conv2d":
            return (x, w, b, [2, 1], [1, 0, 2, 1], [1, 2], 1, "zeros")
        return (x, w, b, [2, 1], [1, 0], [1, 0], 1, [1, 1])
    if name == "avg_pool2d":
        return (x, [3, 2], [2, 1], [1, 0], True, False, None)
    if name in ("max_pool2d", "max_pool2d_with_indices"):
        return (x, [3, 2], [2, 1], [1, 0], [1, 2], True)
    return (x, [3, 2])  # adaptive_avg_pool2d


NAMES = ["conv2d", "conv_transpose2d", "avg_pool2d", "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d"]


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_direct_call_is_the_op(name, dtype, channels_last):
    x = randn(2, 4, 9, 10, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    args = _args(name, x.requires_grad_(), dtype)
    got, want = getattr(direct, name)(*args), getattr(ops, name)(*args)
    got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
    for a, e in zip(got, want):
        assert torch.equal(a, e) and a.stride() == e.stride()
    g = torch.randn_like(want[0])
    assert torch.equal(torch.autograd.grad(got[0], x, g)[0], torch.autograd.grad(want[0], x, g)[0])


def test_direct_call_gradcheck():
    x = randn(1, 2, 6, 5, dtype=torch.float64).requires_grad_()
    w = randn(3, 2, 3, 3, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w: direct.conv2d(x, w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1, "zeros"),
                                    (x, w))
    assert torch.autograd.gradcheck(lambda x: direct.avg_pool2d(x, [2, 2], [1, 1], [1, 1], False, True, None), (x,))
    assert torch.autograd.gradcheck(lambda x: direct.adaptive_avg_pool2d(x, [2, 3]), (x,))


def test_direct_call_raises_the_ops_errors():
    x = randn(1, 4, 4, 4)
    for args in (([2, 2], [0, 2], [0, 0], False, True, None), ([9, 9], [2, 2], [0, 0], False, True, None)):
        with pytest.raises(ValueError) as d:
            direct.avg_pool2d(x, *args)
        with pytest.raises(ValueError) as o:
            ops.avg_pool2d(x, *args)
        assert str(d.value) == str(o.value)


class Recorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


# name -> the functional call on module M (fastconv.nn.functional or torch.nn.functional)
CALLS = {
    "conv2d": lambda M, x: M.conv2d(x, torch.ones(2, 4, 3, 3), None, padding=1),
    "conv_transpose2d": lambda M, x: M.conv_transpose2d(x, torch.ones(4, 2, 3, 3), None, stride=2),
    "avg_pool2d": lambda M, x: M.avg_pool2d(x, 2),
    "max_pool2d": lambda M, x: M.max_pool2d(x, 3, 2, 1),
    "max_pool2d_with_indices": lambda M, x: M.max_pool2d(x, 3, 2, 1, return_indices=True)[0],
    "adaptive_avg_pool2d": lambda M, x: M.adaptive_avg_pool2d(x, (1, 1)),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_torch_function_mode_sees_the_op(name):
    x = randn(2, 4, 8, 8)
    CALLS[name](FF, x)  # (a pooling window is checked and remembered by its first call)
    with Recorder() as mode:
        y = CALLS[name](FF, x)
    assert {f"fastconv.{name}", f"fastconv.{name}.default"} & set(mode.seen)
    torch.testing.assert_close(y, CALLS[name](F, x), rtol=1e-5, atol=1e-5)


class Tagged(torch.Tensor):
    pass


@pytest.mark.parametrize("name", list(CALLS))
def test_subclass_keeps_its_type(name):
    x = randn(2, 4, 8, 8)
    CALLS[name](FF, x)
    y = CALLS[name](FF, x.as_subclass(Tagged))
    assert type(y) is Tagged
    torch.testing.assert_close(y.as_subclass(torch.Tensor), CALLS[name](F, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CALLS))
def test_common_call_takes_the_direct_entry(name, monkeypatch):
    """With torch.ops.fastconv's ops made to fail, the common call still runs (through fastconv._C.direct)."""
    x = randn(2, 4, 8, 8)
    want = CALLS[name](FF, x)
    calls = []

    def counted(fn):
        def run(*args):
            calls.append(1)
            return fn(*args)
        return run

    import fastconv.nn._direct_calls as dc
    monkeypatch.setattr(dc, "_direct", type("D", (), {n: staticmethod(counted(getattr(direct, n))) for n in NAMES}))
    got = CALLS[name](FF, x)
    assert calls and torch.equal(got, want)


def test_adaptive_avg_pool1d_common_call(monkeypatch):
    """The 1-d adaptive average's common call (plain 3-d input, int size) takes the direct entry, with torch's
    values and channel-minor strides; under a TorchFunctionMode, torch.ops."""
    x = randn(4, 30, 16).transpose(1, 2)
    want = F.adaptive_avg_pool1d(x, 3)
    with Recorder() as mode:
        y = FF.adaptive_avg_pool1d(x, 3)
    assert "fastconv.adaptive_avg_pool2d" in mode.seen or "fastconv.adaptive_avg_pool2d.default" in mode.seen
    calls = []

    def counted(*args):
        calls.append(1)
        return direct.adaptive_avg_pool2d(*args)

    import fastconv.nn._direct_calls as dc
    monkeypatch.setattr(dc, "_direct", type("D", (), {"adaptive_avg_pool2d": staticmethod(counted)}))
    got = FF.adaptive_avg_pool1d(x, (3,))
    assert calls and torch.equal(got, y) and got.stride() == want.stride()
    torch.testing.assert_close(got, want)
