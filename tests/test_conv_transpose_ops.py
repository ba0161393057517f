"""fastconv::conv_transpose2d as an op: gradcheck / gradgradcheck (float64), torch.library.opcheck,
torch.compile(fullgraph=True), and clear errors on bad arguments."""
import pytest
import torch

import fastconv
import fastconv.nn.functional as FF

_ops = torch.ops.fastconv


@pytest.fixture
def one_thread():
    """gradcheck runs thousands of tiny ops; an OpenMP team per tiny op costs milliseconds when the 2 cores are
    shared (measured ~20x slower), so the numerical checks run single-threaded. The multi-threaded paths are
    covered by the comparisons with torch in test_conv_transpose.py."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _args(x, w, b, s, p, op, g, d):
    return (x, w, b, [s, s] if isinstance(s, int) else list(s), [p, p] if isinstance(p, int) else list(p),
            [op, op] if isinstance(op, int) else list(op), g, [d, d] if isinstance(d, int) else list(d))


# (N, Cin, Cout, H, W, kernel, stride, padding, output_padding, dilation, groups)
GRAD_CASES = [
    (1, 2, 3, 2, 3, (2, 3), (2, 1), (1, 0), (1, 0), 1, 1),
    (1, 4, 2, 2, 2, 3, 1, 1, (1, 2), 3, 2),     # output_padding >= stride, < dilation
    (2, 2, 2, 2, 2, 2, 3, 0, 2, 1, 2),          # depthwise-like, stride 3
]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradcheck_gradgradcheck(case, one_thread):
    torch.manual_seed(0)
    n, cin, cout, h, w_, k, s, p, op, d, g = case
    k = k if isinstance(k, tuple) else (k, k)
    x = torch.randn(n, cin, h, w_, dtype=torch.float64, requires_grad=True)
    w = torch.randn(cin, cout // g, *k, dtype=torch.float64, requires_grad=True)
    b = torch.randn(cout, dtype=torch.float64, requires_grad=True)

    def fn(x, w, b):
        return FF.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op, groups=g, dilation=d)

    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def _third_order(fn, x0, w0, kw):
    x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
    (g1,) = torch.autograd.grad(fn(x, w, **kw).pow(2).sum(), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1.pow(2).sum(), w, create_graph=True)
    return torch.autograd.grad(g2.pow(2).sum(), (x, w))


def test_third_derivative_matches_torch(one_thread):
    """Derivatives of any order: a third-order mixed derivative equals torch's. (torch's own third
    derivative raises with output_padding != 0, so that case is checked numerically below.)"""
    torch.manual_seed(0)
    x0 = torch.randn(2, 4, 3, 4, dtype=torch.float64)
    w0 = torch.randn(4, 1, 3, 3, dtype=torch.float64)
    kw = dict(stride=2, padding=1, groups=2)
    ours = _third_order(FF.conv_transpose2d, x0, w0, kw)
    ref = _third_order(torch.nn.functional.conv_transpose2d, x0, w0, kw)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


def test_third_order_gradcheck_with_output_padding(one_thread):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 1, 2, 2, dtype=torch.float64, requires_grad=True)

    def grad_fn(x, w):  # first derivative as a function: gradgradcheck of it checks orders 2 and 3
        y = FF.conv_transpose2d(x, w, stride=1, output_padding=1, dilation=2)
        return torch.autograd.grad(y.pow(2).sum(), (x, w), create_graph=True)

    assert torch.autograd.gradgradcheck(grad_fn, (x, w))


def test_gradcheck_1d_channels_last(one_thread):
    torch.manual_seed(0)
    x = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn1(x, w):
        return FF.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1)

    assert torch.autograd.gradgradcheck(fn1, (x, w))
    x2 = torch.randn(1, 3, 2, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x2.requires_grad_()
    w2 = torch.randn(3, 2, 2, 2, dtype=torch.float64, requires_grad=True)

    def fn2(x, w):
        return FF.conv_transpose2d(x, w, stride=2)

    assert torch.autograd.gradgradcheck(fn2, (x2, w2))


def _samples():
    torch.manual_seed(0)
    out = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 4, 3, 5).contiguous(memory_format=fmt).requires_grad_()
        w = torch.randn(4, 3, 3, 2, requires_grad=True)
        b = torch.randn(6, requires_grad=True)
        out.append(_args(x, w, b, 2, 1, 1, 2, 1))
        out.append(_args(x, w, None, 1, 0, (1, 0), 1 * 2, (2, 1)))  # output_padding >= stride
    return out


@pytest.mark.parametrize("idx", range(4))
def test_opcheck(idx, one_thread):
    torch.library.opcheck(_ops.conv_transpose2d.default, _samples()[idx])


class _TinyDecoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up1 = fastconv.nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.up2 = fastconv.nn.ConvTranspose2d(4, 2, 2, stride=2)

    def forward(self, x):
        return self.up2(torch.relu(self.up1(x)))


def test_compile_fullgraph():
    torch.manual_seed(0)
    model = _TinyDecoder()
    x = torch.randn(2, 8, 3, 3, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True)
    y = compiled(x)
    y_eager = model(x)
    torch.testing.assert_close(y, y_eager)
    assert y.shape == (2, 2, 12, 12)
    (g_c,) = torch.autograd.grad(y.sum(), x)
    (g_e,) = torch.autograd.grad(y_eager.sum(), x)
    torch.testing.assert_close(g_c, g_e)


# ---- errors name the argument ----

def _x():
    return torch.randn(1, 4, 5, 5)


def _w():
    return torch.randn(4, 3, 3, 3)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(stride=2, output_padding=2), ValueError, "output_padding must be smaller than either stride or dilation"),
    (dict(stride=1, dilation=2, output_padding=(0, 2)), ValueError, "output_padding must be smaller"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(output_padding=-1), ValueError, "output_padding must be non-negative"),
    (dict(stride=0), ValueError, "stride must be positive"),
    (dict(dilation=0), ValueError, "dilation must be positive"),
    (dict(groups=3), ValueError, "groups=3 does not divide in_channels=4"),
    (dict(groups=0), ValueError, "groups must be a positive int"),
    (dict(padding=4), ValueError, "output size .* is not positive"),
    (dict(stride=(1, 2, 3)), ValueError, "stride must be an int or a tuple of 2 ints"),
    (dict(padding="same"), TypeError, "padding must be an int or a tuple of 2 ints"),  # torch: TypeError too
])
def test_bad_arguments_functional(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FF.conv_transpose2d(_x(), _w(), **kwargs)


def test_bad_tensors_functional():
    with pytest.raises(ValueError, match="expected input with 3 or 4 dimensions"):
        FF.conv_transpose2d(torch.randn(4, 5), _w())
    with pytest.raises(ValueError, match="expected weight with 4 dimensions"):
        FF.conv_transpose2d(_x(), torch.randn(4, 3, 3))
    with pytest.raises(ValueError, match="input has 5 channels but weight of shape"):
        FF.conv_transpose2d(torch.randn(1, 5, 5, 5), _w())
    with pytest.raises(TypeError, match="input and weight must have the same dtype"):
        FF.conv_transpose2d(_x(), _w().double())
    with pytest.raises(TypeError, match="input must have a floating dtype"):
        FF.conv_transpose2d(_x().long(), _w().long())
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        FF.conv_transpose2d(_x(), _w(), torch.randn(4))
    # torch adds a bias of another dtype (cast to the input's), unlike conv2d with int padding
    x, w, b64 = _x(), _w(), torch.randn(3, dtype=torch.float64)
    got, want = FF.conv_transpose2d(x, w, b64), torch.nn.functional.conv_transpose2d(x, w, b64)
    assert got.dtype == want.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="input spatial size must be positive"):
        FF.conv_transpose2d(torch.randn(1, 4, 0, 5), _w())
    with pytest.raises(ValueError, match="expected input with 2 or 3 dimensions"):
        FF.conv_transpose1d(_x(), torch.randn(4, 3, 3))
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        FF.conv_transpose1d(torch.randn(1, 4, 5), torch.randn(4, 3, 3), stride=2, output_padding=3)


def test_bad_arguments_op_directly():
    """The C++ op validates on its own (it can be called without the Python wrapper)."""
    x, w = _x(), _w()
    with pytest.raises(ValueError, match="conv_transpose2d: output_padding must be smaller"):
        _ops.conv_transpose2d(x, w, None, [2, 2], [0, 0], [2, 0], 1, [1, 1])
    with pytest.raises(ValueError, match="conv_transpose2d: padding must be non-negative"):
        _ops.conv_transpose2d(x, w, None, [1, 1], [-1, 0], [0, 0], 1, [1, 1])
    with pytest.raises(ValueError, match="groups=3 does not divide in_channels=4"):
        _ops.conv_transpose2d(x, w, None, [1, 1], [0, 0], [0, 0], 3, [1, 1])
    with pytest.raises(ValueError, match="input has 4 channels but weight of shape"):
        _ops.conv_transpose2d(x, torch.randn(2, 3, 3, 3), None, [1, 1], [0, 0], [0, 0], 1, [1, 1])
    with pytest.raises(ValueError, match="expected input with 4 dimensions"):
        _ops.conv_transpose2d(x[0], w, None, [1, 1], [0, 0], [0, 0], 1, [1, 1])
    with pytest.raises(TypeError, match="same dtype"):
        _ops.conv_transpose2d(x, w.double(), None, [1, 1], [0, 0], [0, 0], 1, [1, 1])
    with pytest.raises(ValueError, match="output size"):
        _ops.conv_transpose2d(x, w, None, [1, 1], [4, 4], [0, 0], 1, [1, 1])
    with pytest.raises(ValueError, match="stride must be positive"):
        _ops.conv_transpose2d(x, w, None, [0, 1], [0, 0], [0, 0], 1, [1, 1])
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        _ops.conv_transpose2d(x, w, torch.randn(5), [1, 1], [0, 0], [0, 0], 1, [1, 1])
