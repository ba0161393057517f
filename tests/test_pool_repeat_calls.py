"""A pooling layer's repeat calls: the remembered window arguments (fastconv/nn/_checked_windows.py) must not
let through anything the first call's checks would reject, and must give the first call's results; the C++
autograd kernels (csrc/bindings/pool_autograd.cpp) under grad modes, inference mode and hooks."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn as fnn
import fastconv.nn.functional as FF
from fastconv.nn import _checked_windows
from conftest import assert_close_scaled, randn


@pytest.fixture(autouse=True)
def _fresh_cache():
    _checked_windows._WINDOWS.clear()
    yield
    _checked_windows._WINDOWS.clear()


def _x(*shape, dtype=torch.float32, cl=False):
    x = randn(shape, dtype=dtype)
    return x.contiguous(memory_format=torch.channels_last) if cl else x


POOLS = [  # (fastconv call, torch call)
    (lambda x: FF.max_pool2d(x, 3, 2, 1), lambda x: TF.max_pool2d(x, 3, 2, 1)),
    (lambda x: FF.max_pool2d(x, (2, 3), (1, 2), (1, 1), (2, 1), ceil_mode=True),
     lambda x: TF.max_pool2d(x, (2, 3), (1, 2), (1, 1), (2, 1), ceil_mode=True)),
    (lambda x: FF.max_pool2d(x, 2, return_indices=True)[1], lambda x: TF.max_pool2d(x, 2, return_indices=True)[1]),
    (lambda x: FF.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
     lambda x: TF.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    (lambda x: FF.avg_pool2d(x, 2, ceil_mode=True, divisor_override=3),
     lambda x: TF.avg_pool2d(x, 2, ceil_mode=True, divisor_override=3)),
]


@pytest.mark.parametrize("case", range(len(POOLS)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_repeat_calls_match_torch_over_inputs(case, dtype):
    """The first call fills the cache; later calls with other shapes, layouts and batch sizes (incl. 0) take
    the remembered arguments and still equal torch, values and gradients."""
    f, t = POOLS[case]
    shapes = [(2, 3, 9, 11), (1, 4, 7, 7), (0, 3, 8, 8), (3, 2, 12, 5)]
    for i, shape in enumerate(shapes):
        x = _x(*shape, dtype=dtype, cl=i % 2 == 1).requires_grad_(True)
        xt = x.detach().clone().requires_grad_(True)
        yf, yt = f(x), t(xt)
        assert yf.stride() == yt.stride() or yf.numel() == 0, f"shape {shape}: strides differ"
        if yf.is_floating_point():
            assert_close_scaled(yf, yt, what=f"{shape} output")
            g = randn(yt.shape, dtype=dtype)
            gf, = torch.autograd.grad(yf, x, g)
            gt, = torch.autograd.grad(yt, xt, g)
            assert_close_scaled(gf, gt, what=f"{shape} grad_input")
        else:
            assert torch.equal(yf, yt)
    assert _checked_windows._WINDOWS, "the repeat calls did not use the cache"


def test_cache_is_used_and_bounded():
    x = _x(1, 2, 6, 6)
    FF.avg_pool2d(x, 2)
    assert len(_checked_windows._WINDOWS) == 1
    FF.avg_pool2d(x, 2)
    assert len(_checked_windows._WINDOWS) == 1
    for k in range(1, 300):
        FF.max_pool2d(_x(1, 1, 2, 2 + k), (1, k))
    assert len(_checked_windows._WINDOWS) <= _checked_windows._MAX_WINDOWS


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_repeat_call_still_rejects_small_inputs(pool):
    """An input too small for the window fails on the second call as on the first (the cache holds the
    smallest input size it covers)."""
    f = (lambda x: FF.max_pool2d(x, 3, 1, 1, 2)) if pool == "max" else (lambda x: FF.avg_pool2d(x, 4, 1, 1))
    f(_x(1, 2, 8, 8))
    for shape in [(1, 2, 1, 1), (1, 2, 8, 1), (1, 2, 1, 8)]:
        # on meta tensors only the Python checks stand between the call and a wrong-size output
        for device in ("cpu", "meta"):
            with pytest.raises(ValueError, match="output size"):
                f(_x(*shape).to(device))
    with pytest.raises(ValueError, match="non-zero"):
        f(_x(1, 0, 8, 8))


def test_repeat_call_still_checks_type_rank_and_dtype():
    FF.avg_pool2d(_x(1, 2, 4, 4), 2)
    with pytest.raises(TypeError, match="input must be a Tensor"):
        FF.avg_pool2d([[1.0]], 2)
    with pytest.raises(TypeError, match="dtype"):
        FF.avg_pool2d(torch.ones(1, 2, 4, 4, dtype=torch.int32), 2)
    with pytest.raises(ValueError, match="input"):
        FF.avg_pool2d(_x(1, 1, 2, 4, 4), 2)
    # unbatched input after batched: the lifted path, torch's result
    x = _x(2, 4, 4)
    assert_close_scaled(FF.avg_pool2d(x, 2), TF.avg_pool2d(x, 2))


def test_repeat_call_equal_but_not_int_arguments_are_checked():
    """2.0 == 2 and True == 1 hash alike: a float kernel or a bool divisor after an int one must still
    raise, not hit the int's cache entry."""
    x = _x(1, 2, 4, 4)
    FF.avg_pool2d(x, 2, divisor_override=1)
    FF.max_pool2d(x, 2)
    with pytest.raises(TypeError, match="divisor_override"):
        FF.avg_pool2d(x, 2, divisor_override=True)
    with pytest.raises((TypeError, ValueError), match="kernel_size"):
        FF.max_pool2d(x, 2.0)
    with pytest.raises((TypeError, ValueError), match="kernel_size"):
        FF.max_pool2d(x, (2.0, 2))


def test_module_attribute_change_takes_effect():
    """The cache is keyed on the arguments, not the module: changing a layer's window after a call is seen."""
    m = fnn.MaxPool2d(2)
    x = _x(1, 3, 8, 8)
    assert m(x).shape == (1, 3, 4, 4)
    m.kernel_size, m.stride, m.padding = 3, 1, 1
    assert torch.equal(m(x), TF.max_pool2d(x, 3, 1, 1))
    m.padding = 2
    with pytest.raises(ValueError, match="padding"):
        m(x)


# ---- the C++ autograd kernels ----

def test_inference_mode_and_no_grad():
    x = _x(2, 3, 8, 8).requires_grad_(True)
    with torch.inference_mode():
        y = FF.max_pool2d(x, 2)
        z = FF.avg_pool2d(x, 2)
    assert not y.requires_grad and not z.requires_grad
    with torch.no_grad():
        assert not FF.avg_pool2d(x, 2).requires_grad
    assert FF.avg_pool2d(x, 2).requires_grad


def test_indices_not_differentiable_and_values_only_backward():
    x = _x(2, 3, 8, 8, dtype=torch.float64).requires_grad_(True)
    y, ind = FF.max_pool2d(x, 2, return_indices=True)
    assert y.requires_grad and not ind.requires_grad
    y.sum().backward()
    xt = x.detach().clone().requires_grad_(True)
    TF.max_pool2d(xt, 2).sum().backward()
    assert torch.equal(x.grad, xt.grad)


def test_grad_of_grad_through_every_pool_op():
    """create_graph=True: the backward ops record a graph of their own (second derivatives)."""
    x = _x(1, 2, 6, 6, dtype=torch.float64).requires_grad_(True)
    for f in (lambda t: FF.max_pool2d(t, 2), lambda t: FF.avg_pool2d(t, 3, 1, 1),
              lambda t: FF.max_unpool2d(*FF.max_pool2d(t, 2, return_indices=True), 2)):
        y = f(x)
        g = randn(y.shape, dtype=torch.float64).requires_grad_(True)
        gx, = torch.autograd.grad(y, x, g, create_graph=True)
        assert gx.requires_grad
        ggx = randn(gx.shape, dtype=torch.float64)
        gg, = torch.autograd.grad(gx, g, ggx)
        assert gg.shape == g.shape
    assert torch.autograd.gradgradcheck(lambda t: FF.avg_pool2d(t, 3, 2, 1), (x,))


def test_retain_graph_and_hooks():
    x = _x(2, 3, 8, 8).requires_grad_(True)
    y = FF.avg_pool2d(x, 2)
    seen = []
    y.register_hook(lambda g: seen.append(g.shape))
    y.sum().backward(retain_graph=True)
    first = x.grad.clone()
    y.sum().backward()
    assert torch.equal(x.grad, 2 * first)
    assert seen == [y.shape, y.shape]


def test_compile_dynamic_shapes_backward():
    """The C++ autograd kernels save symbolic sizes under torch.compile(dynamic=True): two input sizes, one
    graph, gradients equal to eager torch's."""
    def net(x, pool):
        y = pool.max_pool2d(x, 3, 2, 1)
        y = pool.avg_pool2d(y, 2, ceil_mode=True)
        return pool.adaptive_avg_pool2d(y, 1).sum() + pool.adaptive_max_pool2d(y, (2, 3)).sum()

    compiled = torch.compile(lambda x: net(x, FF), fullgraph=True, dynamic=True, backend="aot_eager")
    for shape in [(2, 3, 17, 19), (1, 3, 12, 26)]:
        x = _x(*shape, dtype=torch.float64).requires_grad_(True)
        xt = x.detach().clone().requires_grad_(True)
        gx, = torch.autograd.grad(compiled(x), x)
        gt, = torch.autograd.grad(net(xt, TF), xt)
        assert_close_scaled(gx, gt, what=f"{shape} grad_input")
