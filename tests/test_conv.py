"""fastconv.nn.functional.conv1d / conv2d and the modules' padding modes against torch.

Each case compares the output and all three gradients (input, weight, bias; torch.autograd.grad with a
random grad_output) with torch's convolution computed in float64 from the same values. The main grid is
a seeded random sample (fixed count) over kernel sizes, strides, paddings, dilations, groups, batch,
layouts and dtypes; targeted tests cover the edge cases by name.
"""
import random
import warnings

import pytest
import torch
import torch.nn.functional as F

import fastconv
from conftest import as_layout, assert_close_scaled, grads, randn

FC = fastconv.nn.functional


def reference_conv(spatial, x, w, b, stride, padding, dilation, groups):
    """torch's conv in float64; 'causal' as explicit left padding."""
    x, w = x.double(), w.double()
    b = b.double() if b is not None else None
    conv = F.conv1d if spatial == 1 else F.conv2d
    if padding == "causal":
        d = dilation if isinstance(dilation, int) else dilation[0]
        x = F.pad(x, (d * (w.shape[-1] - 1), 0))
        padding = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about 'same' with even kernels
        return conv(x, w, b, stride, padding, dilation, groups)


def as_4d(t, spatial):
    """The (N, C, H, W) view the functional API runs on (unbatched: N == 1; 1-d: H == 1)."""
    if t.dim() == spatial + 1:
        t = t.unsqueeze(0)
    return t.unsqueeze(2) if spatial == 1 else t


def is_channels_last(t4):
    return t4.is_contiguous(memory_format=torch.channels_last) and not t4.is_contiguous()


def check_conv(spatial, x, w, b, stride, padding, dilation, groups, grad_layout="same"):
    """Output, output memory format and d(input, weight, bias) of fastconv vs torch (float64 reference)."""
    dtype = x.dtype
    fc_fn = FC.conv1d if spatial == 1 else FC.conv2d
    xs, ws = x.detach().requires_grad_(), w.detach().requires_grad_()  # detach keeps x's strides
    bs = b.detach().requires_grad_() if b is not None else None
    out = fc_fn(xs, ws, bs, stride, padding, dilation, groups)

    xr, wr = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    br = b.detach().double().requires_grad_() if b is not None else None
    ref = reference_conv(spatial, xr, wr, br, stride, padding, dilation, groups)
    assert_close_scaled(out, ref.to(dtype), dtype, "output")

    # channels_last in -> channels_last out (input or weight channels_last, as in torch); a 4-d tensor dense
    # in both orders counts as contiguous. torch has memory formats only for 4-d tensors: its 1-d and
    # unbatched results are contiguous whatever the input's strides (an (N, L, C).transpose(1, 2) input,
    # say), and so are fastconv's.
    x_cl = out.dim() == 4 and (is_channels_last(x) or is_channels_last(w))
    if out.numel() > 0:
        if x_cl:
            assert out.is_contiguous(memory_format=torch.channels_last), \
                f"output strides {out.stride()} for channels_last input strides {x.stride()}"
        else:
            assert out.is_contiguous(), f"output strides {out.stride()} for input strides {x.stride()}"

    g = randn(out.shape, dtype=dtype)
    if grad_layout == "same":
        g = torch.empty_strided(out.shape, out.stride(), dtype=dtype).copy_(g)  # the output's layout
    got = grads(out, [xs, ws, bs], g)
    want = grads(ref, [xr, wr, br], g.double())
    for name, gg, ww in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        if ww is not None:
            assert_close_scaled(gg, ww.to(dtype), dtype, name)
    # grad_input follows grad_output's layout (it cannot see the input's strides); with a grad_output in
    # the output's layout that is channels_last again, unless the output is dense in both orders.
    if x_cl and grad_layout == "same" and x.numel() > 0 and is_channels_last(as_4d(out, spatial)):
        assert as_4d(got[0], spatial).is_contiguous(memory_format=torch.channels_last), \
            f"grad_input strides {got[0].stride()}"
    return out


# ---------------------------------------------------------------- seeded random sample of the grid

def _sample_case(rng):
    spatial = rng.choice((1, 2, 2))
    dtype = rng.choice((torch.float32, torch.float32, torch.float64))
    gkind = rng.choice(("1", "1", "2", "3", "depthwise", "depthwise_x2"))
    if gkind.startswith("depthwise"):
        groups = rng.choice((2, 3, 4, 5))
        cin, cout = groups, groups * (2 if gkind == "depthwise_x2" else 1)
    else:
        groups = int(gkind)
        cin, cout = groups * rng.randint(1, 3), groups * rng.randint(1, 3)
    kernel = tuple(rng.choice((1, 2, 3, 5, 7)) for _ in range(spatial))
    dilation = tuple(rng.choice((1, 1, 2, 3)) for _ in range(spatial))
    pad_kind = rng.choice(("int", "int", "tuple", "same", "valid") + (("causal",) if spatial == 1 else ()))
    stride = tuple(rng.choice((1, 2, 3)) for _ in range(spatial))
    if pad_kind in ("same",):
        stride = (1,) * spatial
    if pad_kind == "int":
        padding = rng.randint(0, min(kernel))
    elif pad_kind == "tuple":
        padding = tuple(rng.randint(0, k) for k in kernel)
    else:
        padding = pad_kind
    pads = [padding] * spatial if isinstance(padding, int) else (
        list(padding) if isinstance(padding, tuple) else [None] * spatial)
    sizes = []
    for k, d, p in zip(kernel, dilation, pads):
        lo = 1
        if p is not None:  # explicit padding: the padded input must hold the dilated kernel
            lo = max(1, d * (k - 1) + 1 - 2 * p)
        if padding == "valid":
            lo = d * (k - 1) + 1
        sizes.append(rng.randint(lo, max(lo, 12)) if lo <= 12 else None)
    if None in sizes:
        return None
    return dict(
        spatial=spatial, dtype=dtype, N=rng.choice((0, 1, 2, 3)), cin=cin, cout=cout, groups=groups,
        kernel=kernel, stride=stride, padding=padding, dilation=dilation, sizes=tuple(sizes),
        bias=rng.random() < 0.6, layout=rng.choice(("contiguous", "channels_last", "noncontig", "transposed")),
        unbatched=rng.random() < 0.15)


def _sample_cases(count, seed):
    rng = random.Random(seed)
    cases = []
    while len(cases) < count:
        c = _sample_case(rng)
        if c is not None:
            cases.append(c)
    return cases


def _case_id(c):
    dt = "f32" if c["dtype"] == torch.float32 else "f64"
    return (f"{c['spatial']}d-{dt}-N{'u' if c['unbatched'] else c['N']}-C{c['cin']}K{c['cout']}g{c['groups']}"
            f"-k{'x'.join(map(str, c['kernel']))}-s{'x'.join(map(str, c['stride']))}-p{c['padding']}"
            f"-d{'x'.join(map(str, c['dilation']))}-{c['sizes']}-{'b' if c['bias'] else 'nb'}-{c['layout']}")


GRID = _sample_cases(240, seed=20261122)


@pytest.mark.parametrize("case", GRID, ids=[_case_id(c) for c in GRID])
def test_conv_grid(case):
    c = case
    shape = ((c["cin"],) if c["unbatched"] else (c["N"], c["cin"])) + c["sizes"]
    x = as_layout(randn(shape, dtype=c["dtype"]), c["layout"])
    w = randn((c["cout"], c["cin"] // c["groups"]) + c["kernel"], dtype=c["dtype"])
    b = randn(c["cout"], dtype=c["dtype"]) if c["bias"] else None
    check_conv(c["spatial"], x, w, b, c["stride"], c["padding"], c["dilation"], c["groups"])


def test_grid_covers_the_parameters():
    """The random sample really contains every value the grid is meant to cover."""
    seen = {k: set() for k in ("kernel", "stride", "dilation", "pad_kind", "N", "layout", "groups_kind")}
    for c in GRID:
        seen["kernel"].update(c["kernel"])
        seen["stride"].update(c["stride"])
        seen["dilation"].update(c["dilation"])
        seen["pad_kind"].add(c["padding"] if isinstance(c["padding"], str) else type(c["padding"]).__name__)
        seen["N"].add("u" if c["unbatched"] else c["N"])
        seen["layout"].add(c["layout"])
        seen["groups_kind"].add("depthwise" if c["groups"] == c["cin"] and c["groups"] > 1 else c["groups"] > 1)
    assert seen["kernel"] == {1, 2, 3, 5, 7}
    assert seen["stride"] == {1, 2, 3} and seen["dilation"] == {1, 2, 3}
    assert seen["pad_kind"] == {"int", "tuple", "same", "valid", "causal"}
    assert seen["N"] == {0, 1, 2, 3, "u"}
    assert seen["layout"] == {"contiguous", "channels_last", "noncontig", "transposed"}
    assert seen["groups_kind"] == {False, True, "depthwise"}
    assert any(c["groups"] > 1 and c["cout"] == 2 * c["cin"] == 2 * c["groups"] for c in GRID)  # multiplier
    assert any(c["dtype"] == torch.float64 for c in GRID)


# ---------------------------------------------------------------- targeted cases

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel,dilation", [((2, 2), (1, 1)), ((2, 4), (1, 1)), ((4, 3), (2, 1)), ((2, 2), (3, 3))])
def test_same_padding_even_kernel_is_asymmetric(dtype, kernel, dilation):
    x = randn(2, 3, 7, 8, dtype=dtype)
    w = randn((4, 3) + kernel, dtype=dtype)
    out = check_conv(2, x, w, randn(4, dtype=dtype), 1, "same", dilation, 1)
    assert out.shape[2:] == x.shape[2:]


@pytest.mark.parametrize("kernel,dilation,stride", [(3, 1, 1), (2, 1, 1), (4, 2, 1), (5, 3, 2), (1, 1, 1)])
def test_conv1d_causal(kernel, dilation, stride):
    x = randn(2, 3, 11, dtype=torch.float64)
    w = randn(4, 3, kernel, dtype=torch.float64)
    out = check_conv(1, x, w, randn(4, dtype=torch.float64), (stride,), "causal", (dilation,), 1)
    ref = F.conv1d(F.pad(x, (dilation * (kernel - 1), 0)), w, None, stride, 0, dilation)
    assert out.shape == ref.shape
    if stride == 1:
        assert out.shape[-1] == x.shape[-1]
        # Causality: output t depends on inputs <= t only.
        x2 = x.clone()
        x2[..., 6:] += 1.0
        out2 = FC.conv1d(x2, w, None, 1, "causal", dilation)
        out1 = FC.conv1d(x, w, None, 1, "causal", dilation)
        torch.testing.assert_close(out2[..., :6], out1[..., :6])


@pytest.mark.parametrize("spatial", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_empty_batch(spatial, bias):
    x = randn((0, 4) + (6,) * spatial)
    w = randn((6, 2) + (3,) * spatial)
    b = randn(6) if bias else None
    out = check_conv(spatial, x, w, b, 1, 1, 1, 2)
    assert out.shape == (0, 6) + (6,) * spatial


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_smaller_than_kernel_with_padding(dtype):
    check_conv(2, randn(2, 3, 2, 3, dtype=dtype), randn(4, 3, 3, 5, dtype=dtype), randn(4, dtype=dtype), 1,
               (1, 2), 1, 1)
    check_conv(2, randn(1, 2, 1, 1, dtype=dtype), randn(3, 2, 3, 3, dtype=dtype), None, 1, "same", 1, 1)
    check_conv(1, randn(2, 2, 2, dtype=dtype), randn(3, 2, 5, dtype=dtype), None, 1, "causal", 1, 1)


@pytest.mark.parametrize("spatial", [1, 2])
def test_unbatched_input(spatial):
    x = randn((3,) + (7,) * spatial)
    out = check_conv(spatial, x, randn((4, 3) + (3,) * spatial), randn(4), 1, 1, 1, 1)
    assert out.shape == (4,) + (7,) * spatial


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("groups,cin,cout", [(1, 4, 6), (2, 4, 6), (4, 4, 4), (4, 4, 8)])
def test_channels_last_in_channels_last_out(dtype, groups, cin, cout):
    x = randn(2, cin, 7, 6, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = randn(cout, cin // groups, 3, 3, dtype=dtype)
    out = check_conv(2, x, w, randn(cout, dtype=dtype), (2, 1), 1, 1, groups)
    assert out.is_contiguous(memory_format=torch.channels_last)
    # A contiguous grad_output for a channels_last output still gives the right values.
    check_conv(2, x, w, None, 1, 1, 1, groups, grad_layout="contiguous")


def test_channels_last_weight_only():
    """A channels_last weight with a contiguous input gives a channels_last output, as in torch."""
    x = randn(2, 4, 6, 6)
    w = randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    out = check_conv(2, x, w, randn(8), 1, 1, 1, 1)
    assert out.stride() == F.conv2d(x, w, None, 1, 1).stride()


@pytest.mark.parametrize("layout", ["noncontig", "transposed"])
@pytest.mark.parametrize("spatial", [1, 2])
def test_noncontiguous_views(layout, spatial):
    x = as_layout(randn((2, 4) + (9,) * spatial), layout)
    w = as_layout(randn((6, 2) + (3,) * spatial), layout)
    check_conv(spatial, x, w, randn(6), 2, 1, 1, 2)


def test_input_slice_of_batch_and_channels():
    big = randn(5, 8, 10, 10)
    x = big[1:4, 2:6, 1:9, ::2]  # offset, strided
    check_conv(2, x, randn(3, 4, 3, 3), randn(3), 1, 1, 1, 1)


def test_float64_is_tight():
    x = randn(2, 3, 9, 9, dtype=torch.float64)
    w = randn(4, 3, 3, 3, dtype=torch.float64)
    out = FC.conv2d(x, w, None, 1, 1)
    ref = F.conv2d(x, w, None, 1, 1)
    assert (out - ref).abs().max().item() < 1e-12


# ---------------------------------------------------------------- padding modes (modules)

def _module_pair(spatial, cin, cout, kernel, padding, mode, stride=1, dilation=1, groups=1, bias=True,
                 dtype=torch.float32):
    fc_cls = fastconv.nn.Conv1d if spatial == 1 else fastconv.nn.Conv2d
    t_cls = torch.nn.Conv1d if spatial == 1 else torch.nn.Conv2d
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, padding_mode=mode,
              dtype=dtype)
    fc = fc_cls(cin, cout, kernel, **kw)
    tm = t_cls(cin, cout, kernel, **kw)
    with torch.no_grad():  # random, non-default values in both
        for p in fc.parameters():
            p.normal_()
    tm.load_state_dict(fc.state_dict())
    return fc, tm


def check_modules(fc, tm, x):
    """Output and gradients (input, weight, bias) of a fastconv module vs the torch module (float64 copy)."""
    dtype = x.dtype
    tm = tm.double()
    xs = x.detach().requires_grad_()
    xr = x.detach().double().requires_grad_()
    out = fc(xs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tm(xr)
    assert_close_scaled(out, ref.to(dtype), dtype, "output")
    g = randn(out.shape, dtype=dtype)
    got = grads(out, [xs, fc.weight, fc.bias], g)
    want = grads(ref, [xr, tm.weight, tm.bias], g.double())
    for name, gg, ww in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        if ww is not None:
            assert_close_scaled(gg, ww.to(dtype), dtype, name)


MODES = ["zeros", "reflect", "replicate", "circular"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", [1, 2, (1, 2), "same", "valid"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padding_modes_conv2d(mode, padding, dtype):
    fc, tm = _module_pair(2, 4, 6, (3, 4) if padding == "same" else 3, padding, mode, dtype=dtype)
    check_modules(fc, tm, randn(2, 4, 5, 7, dtype=dtype))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("config", [
    dict(kernel=3, padding=1, stride=2, groups=2),
    dict(kernel=3, padding=2, dilation=2, groups=4),           # depthwise, dilated
    dict(kernel=(2, 3), padding=(1, 1), stride=(1, 3), bias=False),
    dict(kernel=5, padding=3, groups=1),                       # padding close to the input size
])
def test_padding_modes_conv2d_configs(mode, config):
    cfg = dict(config)
    fc, tm = _module_pair(2, 4, 8, cfg.pop("kernel"), cfg.pop("padding"), mode, **cfg)
    check_modules(fc, tm, randn(3, 4, 5, 4).contiguous(memory_format=torch.channels_last))
    check_modules(fc, tm, randn(4, 6, 7))  # unbatched


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding,kernel,dilation", [(1, 3, 1), (2, 3, 2), ("same", 4, 1), ("same", 3, 3), (0, 2, 1)])
def test_padding_modes_conv1d(mode, padding, kernel, dilation):
    fc, tm = _module_pair(1, 2, 4, kernel, padding, mode, dilation=dilation)
    check_modules(fc, tm, randn(3, 2, 9))


def test_circular_padding_equal_to_input_size():
    fc, tm = _module_pair(2, 2, 3, 3, 3, "circular")
    check_modules(fc, tm, randn(1, 2, 3, 3))


# ---------------------------------------------------------------- medium shapes (where fast paths kick in)

@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("shape,kernel,kw", [
    ((2, 32, 14, 14), (32, 32, 3, 3), dict(padding=1)),
    ((1, 64, 8, 8), (48, 64, 1, 1), dict()),
    ((2, 24, 15, 13), (40, 24, 3, 3), dict(stride=2, padding=1)),
    ((2, 32, 14, 14), (64, 1, 3, 3), dict(padding=1, groups=32)),
    ((1, 3, 32, 32), (16, 3, 7, 7), dict(stride=2, padding=3)),
    ((1, 16, 20, 20), (16, 16, 5, 5), dict(padding="same")),
], ids=["3x3", "1x1", "3x3-s2", "depthwise-x2", "stem-7x7", "5x5-same"])
def test_medium_shapes(shape, kernel, kw, layout):
    x = as_layout(randn(shape), layout)
    check_conv(2, x, randn(kernel), randn(kernel[0]), kw.get("stride", 1), kw.get("padding", 0), 1,
               kw.get("groups", 1))
