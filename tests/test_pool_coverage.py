"""Coverage gaps of the pooling tests: lp_pool1d/2d over dtypes, layouts, norm types, empty and unbatched inputs;
batch-0 backward of every pooling op; max_unpool argument errors; conv_transpose with a channels_last weight;
error messages of the ops composed from others (lp_pool, max_unpool1d, 1-d pools) naming the op called."""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn.functional as FF
from conftest import assert_close_scaled, as_layout, randn
from test_pool_helpers import make_input

DTYPES = [torch.float32, torch.float64]
NORMS = [1, 2, 3, 1.5]


def _lp_input(shape, layout, dtype, norm_type):
    """Random input; strictly positive for odd and non-integer norms (torch's lp_pool gives NaN where a
    window's sum of x**p is negative or x**p is taken of a negative x), signed otherwise."""
    x = make_input(shape, layout, dtype, seed=sum(shape))
    if norm_type != 2:
        x.abs_().add_(0.25)  # in place: keeps the layout
    return x


def _values_and_grads(fn_f, fn_t, x, what):
    """fastconv on x as it is (layout kept) and torch on a copy: outputs and input gradients agree."""
    xf = x.detach().requires_grad_(True)
    xt = x.detach().clone().requires_grad_(True)
    yf, yt = fn_f(xf), fn_t(xt)
    assert_close_scaled(yf, yt, what=f"{what} output")
    g = randn(yt.shape, dtype=yt.dtype)
    gf, = torch.autograd.grad(yf, xf, g)
    gt, = torch.autograd.grad(yt, xt, g)
    assert_close_scaled(gf, gt, what=f"{what} grad_input")
    assert gf.shape == x.shape
    return yf


# ---- lp_pool ----

@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel,stride,ceil_mode", [(2, None, False), ((2, 3), (1, 2), False), (3, 2, True)])
def test_lp_pool2d_matches_torch(norm_type, layout, dtype, kernel, stride, ceil_mode):
    x = _lp_input((2, 3, 7, 9), layout, dtype, norm_type)
    if layout == "noncontig":
        assert not x.is_contiguous()
    if layout == "channels_last":
        assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    _values_and_grads(lambda t: FF.lp_pool2d(t, norm_type, kernel, stride, ceil_mode),
                      lambda t: TF.lp_pool2d(t, norm_type, kernel, stride, ceil_mode), x, "lp_pool2d")


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("layout", ["contiguous", "noncontig", "channel_minor"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel,stride,ceil_mode", [(2, None, False), (3, 2, False), (3, 2, True)])
def test_lp_pool1d_matches_torch(norm_type, layout, dtype, kernel, stride, ceil_mode):
    if layout == "channel_minor":  # an (N, L, C) tensor seen as (N, C, L)
        x = _lp_input((2, 10, 4), "contiguous", dtype, norm_type).transpose(1, 2)
    else:
        x = _lp_input((2, 4, 10), layout, dtype, norm_type)
    if layout != "contiguous":
        assert not x.is_contiguous()
    _values_and_grads(lambda t: FF.lp_pool1d(t, norm_type, kernel, stride, ceil_mode),
                      lambda t: TF.lp_pool1d(t, norm_type, kernel, stride, ceil_mode), x, "lp_pool1d")


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lp_pool_unbatched(norm_type, dtype):
    x2 = _lp_input((3, 8, 7), "contiguous", dtype, norm_type)
    y = _values_and_grads(lambda t: FF.lp_pool2d(t, norm_type, 2, 2), lambda t: TF.lp_pool2d(t, norm_type, 2, 2),
                          x2, "lp_pool2d unbatched")
    assert y.shape == (3, 4, 3)
    x1 = _lp_input((3, 9), "contiguous", dtype, norm_type)
    y = _values_and_grads(lambda t: FF.lp_pool1d(t, norm_type, 3, 2), lambda t: TF.lp_pool1d(t, norm_type, 3, 2),
                          x1, "lp_pool1d unbatched")
    assert y.shape == (3, 4)


@pytest.mark.parametrize("norm_type", NORMS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lp_pool_batch0_forward_backward(norm_type, layout, dtype):
    for spatial, shape, kernel in ((2, (0, 3, 6, 5), (2, 2)), (1, (0, 3, 7), 3)):
        fn_f = FF.lp_pool2d if spatial == 2 else FF.lp_pool1d
        fn_t = TF.lp_pool2d if spatial == 2 else TF.lp_pool1d
        x = as_layout(torch.empty(shape, dtype=dtype), layout)
        y = _values_and_grads(lambda t: fn_f(t, norm_type, kernel), lambda t: fn_t(t, norm_type, kernel), x,
                              f"lp_pool{spatial}d batch 0")
        assert y.numel() == 0 and y.shape[0] == 0


# ---- batch-0 backward of the other pooling ops ----

BATCH0_CASES = [
    ("max_pool2d", (0, 3, 6, 5), lambda F, t: F.max_pool2d(t, 2, 2, 1)),
    ("max_pool2d indices", (0, 3, 6, 5), lambda F, t: F.max_pool2d(t, 3, 2, 1, return_indices=True)[0]),
    ("max_pool1d", (0, 3, 9), lambda F, t: F.max_pool1d(t, 3, 2, 1)),
    ("max_pool1d indices", (0, 3, 9), lambda F, t: F.max_pool1d(t, 2, return_indices=True)[0]),
    ("avg_pool2d", (0, 3, 6, 5), lambda F, t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=False)),
    ("avg_pool1d", (0, 3, 9), lambda F, t: F.avg_pool1d(t, 3, 2, 1, ceil_mode=True)),
    ("adaptive_avg_pool2d", (0, 3, 6, 5), lambda F, t: F.adaptive_avg_pool2d(t, (4, 3))),
    ("adaptive_avg_pool1d", (0, 3, 9), lambda F, t: F.adaptive_avg_pool1d(t, 4)),
    ("adaptive_max_pool2d", (0, 3, 6, 5), lambda F, t: F.adaptive_max_pool2d(t, (4, 3))),
    ("adaptive_max_pool2d indices", (0, 3, 6, 5), lambda F, t: F.adaptive_max_pool2d(t, 2, return_indices=True)[0]),
    ("adaptive_max_pool1d", (0, 3, 9), lambda F, t: F.adaptive_max_pool1d(t, 4)),
    ("max_unpool2d", (0, 3, 3, 2), lambda F, t: F.max_unpool2d(t, torch.zeros(t.shape, dtype=torch.long), 2)),
    ("max_unpool2d output_size", (0, 3, 3, 2),
     lambda F, t: F.max_unpool2d(t, torch.zeros(t.shape, dtype=torch.long), 3, 2, 1, output_size=(5, 3))),
    ("max_unpool1d", (0, 3, 4), lambda F, t: F.max_unpool1d(t, torch.zeros(t.shape, dtype=torch.long), 2)),
    ("max_unpool1d output_size", (0, 3, 4),
     lambda F, t: F.max_unpool1d(t, torch.zeros(t.shape, dtype=torch.long), 3, 2, output_size=(10,))),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape,call", BATCH0_CASES, ids=[c[0] for c in BATCH0_CASES])
def test_batch0_backward(name, shape, call, dtype):
    x = torch.empty(shape, dtype=dtype)
    y = _values_and_grads(lambda t: call(FF, t), lambda t: call(TF, t), x, name)
    assert y.shape[0] == 0
    # grad of an empty result through .sum(): an empty gradient of the input's shape
    xf = x.clone().requires_grad_(True)
    call(FF, xf).sum().backward()
    assert xf.grad is not None and xf.grad.shape == x.shape and xf.grad.dtype == dtype


@pytest.mark.parametrize("layout", ["channels_last", "noncontig"])
def test_batch0_backward_layouts(layout):
    x = as_layout(torch.empty(0, 3, 6, 5, dtype=torch.float64), layout)
    for call in (lambda F, t: F.max_pool2d(t, 2), lambda F, t: F.avg_pool2d(t, 2),
                 lambda F, t: F.adaptive_avg_pool2d(t, 3), lambda F, t: F.adaptive_max_pool2d(t, 3)):
        _values_and_grads(lambda t: call(FF, t), lambda t: call(TF, t), x, "batch 0 " + layout)


# ---- max_unpool window arguments: torch only computes the default output size from them ----

@pytest.mark.parametrize("spatial", [1, 2])
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=0),  # an empty output plane: an empty result, indices unchecked
    dict(kernel_size=-2),  # a negative output size: ValueError
    dict(kernel_size=2, stride=0),  # a too small plane: the indices are out of range
    dict(kernel_size=2, stride=-1),
    dict(kernel_size=(2, 0)),
    dict(kernel_size=2, stride=(0, 2)),
    dict(kernel_size=2, stride=(2, -3)),
], ids=str)
def test_max_unpool_window_arguments_as_torch(spatial, kwargs):
    """F.max_unpool checks nothing about kernel_size / stride / padding themselves: they give the default output
    size, (in - 1) * stride + kernel - 2 * padding, and that size decides (a negative one is a ValueError)."""
    if spatial == 1 and any(isinstance(v, tuple) for v in kwargs.values()):
        kwargs = {k: (min(v),) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    shape = (1, 2, 8, 8) if spatial == 2 else (1, 2, 8)
    pool = TF.max_pool2d if spatial == 2 else TF.max_pool1d
    unpool = {FF: FF.max_unpool2d if spatial == 2 else FF.max_unpool1d,
              TF: TF.max_unpool2d if spatial == 2 else TF.max_unpool1d}
    y, ind = pool(make_input(shape, "contiguous", distinct=True), 2, return_indices=True)
    for args in ((y, ind), (y[0], ind[0])):  # batched, unbatched
        try:
            want = unpool[TF](*args, **kwargs)
        except Exception as e:  # noqa: BLE001 -- whatever torch raises, fastconv raises an instance of it
            with pytest.raises(type(e)):
                unpool[FF](*args, **kwargs)
            continue
        got = unpool[FF](*args, **kwargs)
        assert got.shape == want.shape and torch.equal(got, want)


# ---- conv_transpose with a channels_last weight ----

def _check_conv_transpose(fn_f, fn_t, x, w, b, kwargs, dtype, what):
    leaves_f = [t.detach().clone(memory_format=torch.preserve_format).requires_grad_(True) for t in (x, w, b)]
    for t, src in zip(leaves_f, (x, w, b)):
        assert t.stride() == src.stride()
    leaves_t = [t.detach().clone().requires_grad_(True) for t in (x, w, b)]
    yf, yt = fn_f(*leaves_f, **kwargs), fn_t(*leaves_t, **kwargs)
    assert_close_scaled(yf, yt, dtype, what=f"{what} output")
    g = randn(yt.shape, dtype=dtype)
    for name, a, r in zip(("grad_input", "grad_weight", "grad_bias"), torch.autograd.grad(yf, leaves_f, g),
                          torch.autograd.grad(yt, leaves_t, g)):
        assert_close_scaled(a, r, dtype, what=f"{what} {name}")


CT2_CASES = [  # (N, Cin, Cout, H, W, kernel, kwargs)
    (2, 4, 6, 5, 6, (3, 3), dict(stride=2, padding=1, output_padding=1)),
    (3, 4, 6, 4, 5, (2, 3), dict(stride=(1, 2), padding=(1, 0), groups=2)),
    (1, 6, 6, 5, 5, (3, 3), dict(stride=1, padding=2, dilation=2, groups=6)),
    (2, 8, 4, 4, 4, (4, 4), dict(stride=2, padding=1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case", CT2_CASES, ids=[f"case{i}" for i in range(len(CT2_CASES))])
def test_conv_transpose2d_channels_last_weight(case, input_layout, dtype):
    n, cin, cout, h, w_, k, kwargs = case
    g = kwargs.get("groups", 1)
    x = as_layout(randn(n, cin, h, w_, dtype=dtype), input_layout)
    w = randn(cin, cout // g, *k, dtype=dtype).contiguous(memory_format=torch.channels_last)
    if w.shape[1] > 1:
        assert not w.is_contiguous()
    b = randn(cout, dtype=dtype)
    _check_conv_transpose(FF.conv_transpose2d, TF.conv_transpose2d, x, w, b, kwargs, dtype,
                          f"conv_transpose2d {input_layout} input, channels_last weight")


CT1_CASES = [  # (N, Cin, Cout, L, kernel, kwargs)
    (2, 4, 6, 7, 3, dict(stride=2, padding=1, output_padding=1)),
    (3, 4, 6, 5, 4, dict(stride=3, padding=2, groups=2)),
    (1, 3, 5, 6, 3, dict(dilation=2, padding=1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("input_layout", ["contiguous", "channel_minor"])
@pytest.mark.parametrize("case", CT1_CASES, ids=[f"case{i}" for i in range(len(CT1_CASES))])
def test_conv_transpose1d_channel_minor_weight(case, input_layout, dtype):
    """The 1-d counterpart of channels_last: (N, L, C) input and (Cin, K, Cout/g) weight seen as torch's shapes."""
    n, cin, cout, length, k, kwargs = case
    g = kwargs.get("groups", 1)
    x = randn(n, cin, length, dtype=dtype)
    if input_layout == "channel_minor":
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
        assert not x.is_contiguous()
    w = randn(cin, cout // g, k, dtype=dtype).transpose(1, 2).contiguous().transpose(1, 2)
    assert not w.is_contiguous()
    b = randn(cout, dtype=dtype)
    _check_conv_transpose(FF.conv_transpose1d, TF.conv_transpose1d, x, w, b, kwargs, dtype,
                          f"conv_transpose1d {input_layout} input, channel-minor weight")


# ---- error messages name the op that was called ----

def _lp_errors():
    x1, x2 = randn(2, 3, 8), randn(2, 3, 8, 8)
    cases = []
    for norm in (2, 1.5, float("inf"), -float("inf")):
        cases += [
            (f"lp_pool1d stride norm={norm}", lambda n=norm: FF.lp_pool1d(x1, n, 2, stride=0), ValueError,
             r"fastconv\.lp_pool1d: stride must be positive"),
            (f"lp_pool2d stride norm={norm}", lambda n=norm: FF.lp_pool2d(x2, n, 2, stride=(1, 0)), ValueError,
             r"fastconv\.lp_pool2d: stride must be positive"),
            (f"lp_pool1d kernel norm={norm}", lambda n=norm: FF.lp_pool1d(x1, n, 0), ValueError,
             r"fastconv\.lp_pool1d: kernel_size must be positive"),
            (f"lp_pool2d kernel norm={norm}", lambda n=norm: FF.lp_pool2d(x2, n, (2, -1)), ValueError,
             r"fastconv\.lp_pool2d: kernel_size must be positive"),
            (f"lp_pool2d too small norm={norm}", lambda n=norm: FF.lp_pool2d(x2, n, 9), ValueError,
             r"fastconv\.lp_pool2d: .*output size"),
            (f"lp_pool1d rank norm={norm}", lambda n=norm: FF.lp_pool1d(x2, n, 2), ValueError,
             r"fastconv\.lp_pool1d: expected input with 2 or 3 dimensions"),
            (f"lp_pool2d not a tensor norm={norm}", lambda n=norm: FF.lp_pool2d([1.0], n, 2), TypeError,
             r"fastconv\.lp_pool2d: input must be a Tensor"),
        ]
    cases += [
        ("lp_pool2d dtype", lambda: FF.lp_pool2d(x2.long(), 2, 2), TypeError,
         r"fastconv\.lp_pool2d: input must have a floating dtype"),
        ("lp_pool1d dtype", lambda: FF.lp_pool1d(x1.long(), 2, 2), TypeError,
         r"fastconv\.lp_pool1d: input must have a floating dtype"),
        ("lp_pool2d dtype inf", lambda: FF.lp_pool2d(x2.long(), float("inf"), 2), TypeError,
         r"fastconv\.lp_pool2d: input must have a floating dtype"),
        ("lp_pool1d empty length", lambda: FF.lp_pool1d(randn(2, 3, 0), 2, 2), ValueError,
         r"fastconv\.lp_pool1d: .*shape \(2, 3, 0\)"),
    ]
    return cases


LP_ERRORS = _lp_errors()


@pytest.mark.parametrize("what,call,exc,match", LP_ERRORS, ids=[c[0] for c in LP_ERRORS])
def test_lp_pool_errors_name_lp_pool(what, call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "avg_pool" not in str(info.value) and "max_pool" not in str(info.value)


@pytest.mark.parametrize("bad", [8, 9, 100, -1])
@pytest.mark.parametrize("unbatched", [False, True])
def test_max_unpool1d_index_error_names_max_unpool1d(bad, unbatched):
    y = randn(1, 2, 4)
    ind = torch.tensor([[[0, 2, 4, 6], [1, 3, 5, 7]]])
    ind[0, 1, 2] = bad
    if unbatched:
        y, ind = y[0], ind[0]
    with pytest.raises(RuntimeError, match=rf"fastconv\.max_unpool1d: indices: found an invalid index {bad} "
                                         r"outside the output of length 8") as info:
        FF.max_unpool1d(y, ind, 2)
    msg = str(info.value)
    assert "max_unpool2d" not in msg and "1x8" not in msg


def test_max_unpool2d_index_error_unchanged():
    y = randn(1, 1, 2, 2)
    ind = torch.tensor([[[[0, 1], [2, 16]]]])
    with pytest.raises(RuntimeError, match=r"fastconv\.max_unpool2d: indices: found an invalid index 16 outside "
                                         r"the plane of size 4x4"):
        FF.max_unpool2d(y, ind, 2)


@pytest.mark.parametrize("call,match", [
    (lambda: FF.max_pool1d(randn(2, 3, 0), 2), r"fastconv\.max_pool1d: .*got shape \(2, 3, 0\)"),
    (lambda: FF.avg_pool1d(randn(2, 0, 5), 2), r"fastconv\.avg_pool1d: .*got shape \(2, 0, 5\)"),
    (lambda: FF.max_pool1d(randn(3, 0), 2), r"fastconv\.max_pool1d: .*got shape \(3, 0\)"),
    (lambda: FF.avg_pool2d(randn(3, 0, 5), 2), r"fastconv\.avg_pool2d: .*got shape \(3, 0, 5\)"),
    (lambda: FF.max_pool1d(randn(2, 3, 8), 20), r"fastconv\.max_pool1d: given input size \(8,\)"),
    (lambda: FF.avg_pool1d(randn(2, 3, 8), 2, padding=2), r"fastconv\.avg_pool1d: padding"),
    (lambda: FF.max_pool1d(randn(2, 3, 8), 2, dilation=0), r"fastconv\.max_pool1d: dilation must be positive"),
    (lambda: FF.adaptive_avg_pool1d(randn(2, 3, 8), -1), r"fastconv\.adaptive_avg_pool1d: output_size"),
    (lambda: FF.adaptive_max_pool1d(randn(2, 3, 0), 2), r"fastconv\.adaptive_max_pool1d: .*shape \(2, 3, 0\)"),
    (lambda: FF.adaptive_max_pool1d(randn(2, 3, 8), (2, 2)), r"fastconv\.adaptive_max_pool1d: output_size"),
])
def test_1d_pool_errors_describe_the_1d_call(call, match):
    """Errors of the 1-d ops name the 1-d op and the caller's shapes, not the lifted (N, C, 1, L) view."""
    with pytest.raises(ValueError, match=match):
        call()
