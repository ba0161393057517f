"""Winograd convolution, F(4x4, 3x3) and F(2x2, 5x5), forward and both gradients (csrc/cpu/winograd/): accuracy
against a float64 reference on shapes that hit every edge case of the tiling, the switch
fastconv.backends.cpu.allow_winograd, and that it is the path that runs."""
import itertools

import pytest
import torch
import torch.nn.functional as TF

import fastconv
import fastconv.nn.functional as FF
from fastconv import _kernels

# The small-group Winograd kernels (winograd_small_group.cpp) are AVX-512 code; the portable kernel libraries (avx2,
# default) run the exact paths for those groups.
SMALL_GROUP_WINOGRAD = _kernels.loaded_capability() == "avx512"

# The accuracy contract (issue 12): relative error ||y - y64|| / ||y64|| of the default path within 1e-5.
BOUND = 1e-5


@pytest.fixture(autouse=True)
def every_size_takes_winograd():
    """The dispatch sends only layers with enough channels and tiles to Winograd; here every 3x3 and 5x5
    stride-1 float32 convolution goes there, so small shapes reach the kernel's edge cases."""
    old = fastconv._C.set_winograd_size_rule(False)
    yield
    fastconv._C.set_winograd_size_rule(old)


def _rel_err(y, ref):
    return ((y.double() - ref).norm() / ref.norm()).item()


def _case(n, c, k, h, w, seed, r=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g)
    wt = torch.randn(k, c, r, r, generator=g) / (r * c ** 0.5)
    b = torch.randn(k, generator=g)
    return x, wt, b


# output sizes 1, 2, 3, 5, 7 and not multiples of the tile (4x4 for 3x3 kernels, 2x2 for 5x5); channels not
# multiples of 16 lanes. (A weight gradient of at most 16 input channels whose output channels fill whole vectors
# runs the exact few-channel kernel before Winograd, conv_few_channel_weight.cpp: the 16-channel shapes have 24 or
# 130 outputs.)
SHAPES = [
    # r, n, c, k, h, w, padding
    (3, 1, 16, 24, 3, 3, 0),     # one 1x1 output tile
    (3, 2, 16, 24, 4, 5, 0),     # 2x3 outputs
    (3, 1, 17, 20, 5, 7, 1),     # 5x7, odd channels
    (3, 3, 33, 40, 7, 9, 2),     # 9x11, padding 2
    (3, 1, 64, 64, 14, 14, 1),   # VGG-like
    (3, 2, 48, 96, 9, 6, 0),
    (3, 1, 16, 130, 12, 11, 1),  # K past a multiple of the GEMM's 32 columns
    (3, 2, 20, 24, 50, 47, 1),   # a plane NCHW activations are read and written in place (>= 2048 outputs)
    (3, 1, 40, 64, 6, 6, 1),     # full 32-kernel weight panels, 16-channel transpose blocks and a remainder
    (5, 1, 16, 24, 5, 5, 0),     # 5x5: one 1x1 output
    (5, 2, 16, 24, 6, 7, 0),     # 2x3 outputs
    (5, 1, 17, 20, 5, 7, 2),     # 5x7, odd channels
    (5, 3, 33, 40, 7, 9, 3),     # 9x11, padding 3
    (5, 2, 24, 40, 3, 4, 4),     # padding 4 (the input gradient's own padding 0), a 3x4 input: 7x8
    (5, 2, 48, 96, 9, 6, 1),     # 7x4
    (5, 1, 16, 130, 12, 11, 2),  # K past a multiple of 32
    (5, 2, 20, 24, 50, 47, 2),   # NCHW planes in place
    (5, 1, 40, 64, 6, 6, 2),     # full weight panels, 16-channel transpose blocks (25 taps) and a remainder
]


@pytest.mark.parametrize("r,n,c,k,h,w,padding", SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "channels_last_weight", "noncontiguous"])
def test_forward_accuracy_and_values(r, n, c, k, h, w, padding, layout):
    x, wt, b = _case(n, c, k, h, w, seed=n * 1000 + c * 10 + k + h + w, r=r)
    if layout.startswith("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    if layout == "channels_last_weight":  # read in place by the weight transform (ConvParams::weight_rsc)
        wt = wt.contiguous(memory_format=torch.channels_last)
    elif layout == "noncontiguous":
        x = torch.cat([x, x], dim=3)[..., ::2]
    ref = TF.conv2d(x.double(), wt.double(), b.double(), padding=padding)
    y = FF.conv2d(x, wt, b, padding=padding)
    assert y.shape == ref.shape
    assert _rel_err(y, ref) < BOUND
    # the layout follows torch's
    assert y.is_contiguous(memory_format=torch.channels_last) == TF.conv2d(x, wt, b, padding=padding) \
        .is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("r,n,c,k,h,w,padding", SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "channels_last_weight"])
def test_input_gradient_accuracy(r, n, c, k, h, w, padding, layout):
    x, wt, _ = _case(n, c, k, h, w, seed=n + c + k + h + w, r=r)
    if layout.startswith("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    if layout == "channels_last_weight":
        wt = wt.contiguous(memory_format=torch.channels_last)
    xs, xd = x.clone().requires_grad_(), x.double().requires_grad_()
    ys, yd = FF.conv2d(xs, wt, padding=padding), TF.conv2d(xd, wt.double(), padding=padding)
    g = torch.randn(ys.shape, generator=torch.Generator().manual_seed(1))
    (gx,) = torch.autograd.grad(ys, xs, g)
    (gx_ref,) = torch.autograd.grad(yd, xd, g.double())
    assert _rel_err(gx, gx_ref) < BOUND


@pytest.mark.parametrize("r,n,c,k,h,w,padding", SHAPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontiguous"])
def test_weight_gradient_accuracy(r, n, c, k, h, w, padding, layout):
    x, wt, _ = _case(n, c, k, h, w, seed=3 * n + c + k + h + w, r=r)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "noncontiguous":
        x = torch.cat([x, x], dim=3)[..., ::2]
    ws, wd = wt.clone().requires_grad_(), wt.double().requires_grad_()
    ys, yd = FF.conv2d(x, ws, padding=padding), TF.conv2d(x.double(), wd, padding=padding)
    g = torch.randn(ys.shape, generator=torch.Generator().manual_seed(2))
    (gw,) = torch.autograd.grad(ys, ws, g)
    (gw_ref,) = torch.autograd.grad(yd, wd, g.double())
    assert gw.shape == wt.shape and gw.is_contiguous()
    assert _rel_err(gw, gw_ref) < BOUND
    with fastconv.backends.cpu.flags(allow_winograd=False):
        (gw_exact,) = torch.autograd.grad(FF.conv2d(x, ws, padding=padding), ws, g)
    assert not torch.equal(gw, gw_exact)  # the switch reaches the weight gradient too


@pytest.mark.parametrize("r,padding", [(3, 1), (5, 2), (5, 3)])
def test_transposed_convolution_takes_it(r, padding):
    """conv_transpose2d 3x3 / 5x5 stride 1 is the input gradient of a convolution: Winograd, within the bound."""
    x, wt, b = _case(2, 24, 16, 9, 10, seed=21, r=r)
    wt = wt.transpose(0, 1).contiguous()  # (in_channels 24, out_channels 16, r, r): a transposed conv weight
    x = x[:, :24]
    ref = TF.conv_transpose2d(x.double(), wt.double(), padding=padding)
    assert _rel_err(FF.conv_transpose2d(x, wt, padding=padding), ref) < BOUND
    with fastconv.backends.cpu.flags(allow_winograd=False):
        exact = FF.conv_transpose2d(x, wt, padding=padding)
    assert not torch.equal(FF.conv_transpose2d(x, wt, padding=padding), exact)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "zeros"])
@pytest.mark.parametrize("padding", [1, 2, (1, 2)])
@pytest.mark.parametrize("r", [3, 5])
def test_padding_modes(mode, padding, r):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(24, 32, r, padding=padding, padding_mode=mode)
    fc = fastconv.nn.Conv2d(24, 32, r, padding=padding, padding_mode=mode)
    fc.load_state_dict(conv.state_dict())
    x = torch.randn(2, 24, 9, 10)
    ref = conv.double()(x.double())
    y = fc(x)
    assert _rel_err(y, ref) < BOUND
    g = torch.randn(y.shape)
    (gw,) = torch.autograd.grad(y, fc.weight, g)
    (gw_ref,) = torch.autograd.grad(ref, conv.weight, g.double())
    assert _rel_err(gw, gw_ref) < BOUND


@pytest.mark.parametrize("r", [3, 5])
def test_circular_padding_of_a_one_row_input(r):
    """An edge tile's 6x6 patch reaches 3 rows past the padded input; remapped circularly, those rows left a
    1-row input (NaN or a crash): they are zeros now."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(64, 64, r, padding=r // 2, padding_mode="circular")
    fc = fastconv.nn.Conv2d(64, 64, r, padding=r // 2, padding_mode="circular")
    fc.load_state_dict(conv.state_dict())
    # (circular padding may not exceed the input: 2-row inputs for the 5x5 kernel's padding of 2)
    for h, w in [(1, 8), (2, 9), (1, 1), (8, 1)] if r == 3 else [(2, 8), (2, 9), (2, 2), (9, 2)]:
        x = torch.randn(2, 64, h, w)
        assert _rel_err(fc(x), conv.double()(x.double())) < BOUND


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_and_batches(threads):
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for n in (1, 2, 5):
            x, wt, b = _case(n, 32, 32, 11, 13, seed=n)
            ref = TF.conv2d(x.double(), wt.double(), b.double(), padding=1)
            assert _rel_err(FF.conv2d(x, wt, b, padding=1), ref) < BOUND
    finally:
        torch.set_num_threads(old)


def test_empty_batch_and_no_bias():
    x, wt, _ = _case(1, 16, 16, 8, 8, seed=3)
    assert FF.conv2d(x[:0], wt, padding=1).shape == (0, 16, 8, 8)
    ref = TF.conv2d(x.double(), wt.double(), padding=1)
    assert _rel_err(FF.conv2d(x, wt, padding=1), ref) < BOUND


def test_gradients_still_match():
    """All three passes take Winograd; through the squared loss the forward's error reaches both gradients."""
    x, wt, b = _case(2, 16, 24, 9, 9, seed=7)
    xs, ws, bs = (t.clone().requires_grad_() for t in (x, wt, b))
    xt, wtt, bt = (t.double().requires_grad_() for t in (x, wt, b))
    FF.conv2d(xs, ws, bs, padding=1).square().sum().backward()
    TF.conv2d(xt, wtt, bt, padding=1).square().sum().backward()
    for got, ref in ((xs.grad, xt.grad), (ws.grad, wtt.grad), (bs.grad, bt.grad)):
        assert _rel_err(got, ref) < 1e-4  # through the squared loss: the forward's error, doubled


@pytest.mark.parametrize("size_rule", [True, False])
def test_switch_chooses_the_path(size_rule):
    """With the switch on, a Winograd-eligible layer runs Winograd (its rounding differs from the exact
    path's); off, the exact path runs. The layer (64 -> 64 channels, 32 tiles) passes the size rule."""
    fastconv._C.set_winograd_size_rule(size_rule)
    x, wt, b = _case(2, 64, 64, 16, 16, seed=11)
    assert fastconv.backends.cpu.allow_winograd is True
    y_wino = FF.conv2d(x, wt, b, padding=1)
    with fastconv.backends.cpu.flags(allow_winograd=False):
        assert fastconv.backends.cpu.allow_winograd is False
        y_exact = FF.conv2d(x, wt, b, padding=1)
    assert fastconv.backends.cpu.allow_winograd is True
    ref = TF.conv2d(x.double(), wt.double(), b.double(), padding=1)
    assert not torch.equal(y_wino, y_exact)
    assert _rel_err(y_exact, ref) < 1e-6 and _rel_err(y_wino, ref) < BOUND


@pytest.mark.parametrize("r,c,k,winograd", [(3, 8, 16, False), (5, 16, 32, False), (5, 32, 16, False),
                                             (5, 32, 24, True), (3, 16, 8, True)])
def test_size_rule_keeps_small_layers_exact(r, c, k, winograd):
    """Below the size rule's channel counts (3x3: 16 in, 8 out; 5x5: 32 in, 24 out) the exact path runs, bitwise as
    with the switch off; at them, Winograd."""
    fastconv._C.set_winograd_size_rule(True)
    x, wt, b = _case(2, c, k, 16, 16, seed=5, r=r)
    y = FF.conv2d(x, wt, b, padding=r // 2)
    with fastconv.backends.cpu.flags(allow_winograd=False):
        assert torch.equal(y, FF.conv2d(x, wt, b, padding=r // 2)) != winograd


def test_switch_takes_only_bools():
    with pytest.raises(TypeError, match="allow_winograd must be a bool"):
        fastconv.backends.cpu.allow_winograd = 1
    assert "allow_winograd=True" in repr(fastconv.backends.cpu)


@pytest.mark.parametrize("allow", [True, False])
def test_both_settings_match_torch(allow):
    with fastconv.backends.cpu.flags(allow_winograd=allow):
        for (c, k, h), padding, r in itertools.product([(16, 16, 6), (32, 48, 10)], [0, 1], [3, 5]):
            x, wt, b = _case(2, c, k, h, h + 1, seed=c + k + h, r=r)
            torch.testing.assert_close(FF.conv2d(x, wt, b, padding=padding), TF.conv2d(x, wt, b, padding=padding),
                                       rtol=1e-4, atol=1e-4)


def _check_all_passes(x, wt, b, generator, **conv_args):
    """fastconv's output and its three gradients within BOUND of torch's in float64; returns the output."""
    xs, ws, bs = (t.clone().requires_grad_() for t in (x, wt, b))
    y = FF.conv2d(xs, ws, bs, **conv_args)
    xd, wd, bd = (t.double().requires_grad_() for t in (x, wt, b))
    yd = TF.conv2d(xd, wd, bd, **conv_args)
    assert y.shape == yd.shape
    gy = torch.randn(y.shape, generator=generator)
    grads = torch.autograd.grad(y, (xs, ws, bs), gy)
    refs = torch.autograd.grad(yd, (xd, wd, bd), gy.double())
    assert _rel_err(y, yd) < BOUND
    for got, ref in zip(grads, refs):
        assert _rel_err(got, ref) < BOUND
    return y


# Dilated 3x3 convolutions run as undilated ones on subgrids (csrc/cpu/conv/conv_subgrid.cpp) when the padding is a
# multiple of the dilation and the planes divide by it; else the exact paths.
DILATED = [
    # n, c, k, h, w, dilation, padding
    (2, 16, 24, 12, 10, 2, 2),            # 'same', 2x2 subgrids of 6x5
    (1, 20, 16, 16, 16, 4, 4),
    (3, 16, 20, 12, 18, (2, 3), (2, 3)),  # different dilations per axis
    (2, 24, 16, 14, 12, 2, (4, 2)),       # padding twice the dilation on one axis
    (1, 16, 16, 16, 16, 8, 8),            # 2x2-pixel subgrids
    (2, 16, 16, 11, 12, 2, 2),            # 11 rows do not divide by 2: exact path
]


@pytest.mark.parametrize("n,c,k,h,w,dilation,padding", DILATED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_dilated_all_passes(n, c, k, h, w, dilation, padding, layout):
    x, wt, b = _case(n, c, k, h, w, seed=n * 100 + h + c)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    y = _check_all_passes(x, wt, b, None, padding=padding, dilation=dilation)
    if layout == "channels_last":
        assert y.is_contiguous(memory_format=torch.channels_last)
    divides = all(s % d == 0 for s, d in zip((h, w), (dilation,) * 2 if isinstance(dilation, int) else dilation))
    with fastconv.backends.cpu.flags(allow_winograd=False):
        exact = FF.conv2d(x, wt, b, padding=padding, dilation=dilation)
    # the subgrid path is Winograd (not bit-equal to the exact path); a shape it cannot take stays exact
    assert torch.equal(FF.conv2d(x, wt, b, padding=padding, dilation=dilation), exact) != divides


# Grouped 3x3 convolutions take Winograd when the output channels per group come in whole 16-channel vectors, at
# least 32 of them (the forward and the weight gradient; the input gradient when the input channels per group do):
# each group's columns of the transformed weight are rounded up to the GEMM's 32-column panels. The size rule is off
# here; with it, the weight gradient also wants 24 input and 16 output channels per group.
GROUPED = [
    # n, c, k, h, w, groups, padding
    (2, 64, 64, 7, 9, 2, 1),      # 2 groups of 32 -> 32: all three passes' forward kernels grouped
    (1, 96, 128, 6, 6, 2, 1),     # 48 -> 64: the input gradient's groups of 48 columns padded to 64
    (1, 51, 96, 5, 5, 3, 0),      # 17 -> 32: partial vectors of input channels in the weight gradient
    (2, 64, 96, 14, 13, 2, 2),    # 32 -> 48: the forward's groups padded to 64 columns
    (2, 48, 48, 9, 9, 3, 1),      # 16 -> 16: the small-group Winograd kernels (below)
    (1, 120, 120, 6, 7, 3, 1),    # 40 -> 40: no Winograd (40 is not a multiple of 16)
    (4, 384, 384, 13, 13, 2, 1),  # AlexNet's conv4: 64 tiles, a 10 MB transformed weight (the panel regime)
]


@pytest.mark.parametrize("n,c,k,h,w,groups,padding", GROUPED)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "channels_last_weight"])
def test_grouped_all_passes(n, c, k, h, w, groups, padding, layout):
    g = torch.Generator().manual_seed(n + c + k + groups)
    x = torch.randn(n, c, h, w, generator=g)
    wt = torch.randn(k, c // groups, 3, 3, generator=g) / (3 * (c // groups) ** 0.5)
    b = torch.randn(k, generator=g)
    if layout.startswith("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    if layout == "channels_last_weight":
        wt = wt.contiguous(memory_format=torch.channels_last)
    _check_all_passes(x, wt, b, g, padding=padding, groups=groups)
    with fastconv.backends.cpu.flags(allow_winograd=False):
        exact = FF.conv2d(x, wt, b, padding=padding, groups=groups)
    winograd_forward = ((k // groups) % 16 == 0 and k // groups >= 32
                        or c // groups == k // groups == 16 and SMALL_GROUP_WINOGRAD)
    assert torch.equal(FF.conv2d(x, wt, b, padding=padding, groups=groups), exact) != winograd_forward
    # the weight gradient: Winograd (not bit-equal to the exact path) exactly where the forward is
    ws = wt.clone().requires_grad_()
    gy = torch.randn(n, k, h + 2 * padding - 2, w + 2 * padding - 2, generator=g)
    grad_w = torch.autograd.grad(FF.conv2d(x, ws, b, padding=padding, groups=groups), ws, gy)[0]
    with fastconv.backends.cpu.flags(allow_winograd=False):
        exact_w = torch.autograd.grad(FF.conv2d(x, ws, b, padding=padding, groups=groups), ws, gy)[0]
    assert torch.equal(grad_w, exact_w) != winograd_forward


# Grouped 5x5 convolutions: AlexNet's conv2 (2 groups of 48 -> 128) and a smaller one, every pass within the bound;
# the forward takes Winograd (output channels per group in whole 32-column panels).
@pytest.mark.parametrize("n,c,k,h,w,groups,padding", [(2, 96, 256, 11, 11, 2, 2), (1, 64, 64, 9, 7, 2, 1)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_grouped_5x5_all_passes(n, c, k, h, w, groups, padding, layout):
    g = torch.Generator().manual_seed(n + c + k)
    x = torch.randn(n, c, h, w, generator=g)
    wt = torch.randn(k, c // groups, 5, 5, generator=g) / (5 * (c // groups) ** 0.5)
    b = torch.randn(k, generator=g)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    y = _check_all_passes(x, wt, b, g, padding=padding, groups=groups)
    with fastconv.backends.cpu.flags(allow_winograd=False):
        assert not torch.equal(y, FF.conv2d(x, wt, b, padding=padding, groups=groups))


# Groups of 8, 16 or 32 channels in and out (ResNeXt-50 32x4d's layer2, layer3 and layer4) run F(4x4, 3x3) per group
# (csrc/cpu/winograd/winograd_small_group.cpp): the forward, the input gradient for padding <= 2, the weight gradient
# for 16 per group. Output sizes 1-7 and not multiples of the tile, padding 0-3 and asymmetric, bands and blocks of
# tiles, every layout, without bias. With the switch off, the exact small-group kernels.
SMALL_GROUPS = [
    # n, groups, channels per group, h, w, padding
    (2, 2, 16, 3, 3, 0),          # one 1x1 output
    (1, 3, 16, 5, 7, 0),          # 3x5 outputs
    (4, 32, 16, 14, 14, 1),       # ResNeXt-50's layer3 at batch 4
    (2, 2, 16, 9, 11, 2),         # padding 2
    (1, 2, 16, 6, 5, 3),          # padding 3: the input gradient stays exact
    (2, 4, 16, 13, 10, (0, 2)),   # asymmetric
    (3, 2, 16, 30, 29, 1),        # several bands of tile rows
    (1, 2, 16, 1, 1, 1),          # a 1x1 image
    (2, 2, 8, 5, 6, 0),           # 8 per group: two groups per vector
    (2, 32, 8, 28, 28, 1),        # ResNeXt-50's layer2
    (1, 6, 8, 9, 7, (2, 1)),      # three vectors, padding 2 and 1
    (1, 4, 8, 6, 6, 3),           # padding 3
    (2, 2, 32, 3, 4, 0),          # 32 per group: two vectors per group
    (4, 32, 32, 7, 7, 1),         # ResNeXt-50's layer4
    (1, 3, 32, 10, 9, (1, 2)),
]


@pytest.mark.parametrize("n,groups,cg,h,w,padding", SMALL_GROUPS)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "channels_last_weight", "strided"])
def test_small_group_all_passes(n, groups, cg, h, w, padding, layout):
    g = torch.Generator().manual_seed(n + groups + h + w)
    c = cg * groups
    x = torch.randn(n, c, h, w, generator=g)
    wt = torch.randn(c, cg, 3, 3, generator=g) / (3 * cg ** 0.5)
    b = torch.randn(c, generator=g) if layout != "strided" else None
    if layout.startswith("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    if layout == "channels_last_weight":
        wt = wt.contiguous(memory_format=torch.channels_last)
    if layout == "strided":  # every other row of a taller input
        x = torch.randn(n, c, 2 * h, w, generator=g)[:, :, ::2]
    xs, ws = x.clone().requires_grad_(), wt.clone().requires_grad_()
    y = FF.conv2d(xs, ws, b, padding=padding, groups=groups)
    xd, wd = x.double().requires_grad_(), wt.double().requires_grad_()
    yd = TF.conv2d(xd, wd, None if b is None else b.double(), padding=padding, groups=groups)
    gy = torch.randn(y.shape, generator=g)
    gx, gw = torch.autograd.grad(y, (xs, ws), gy)
    gxd, gwd = torch.autograd.grad(yd, (xd, wd), gy.double())
    for got, ref in ((y, yd), (gx, gxd), (gw, gwd)):
        assert _rel_err(got, ref) < BOUND
    if not SMALL_GROUP_WINOGRAD:  # (the portable libraries: the accuracy above only)
        return
    with fastconv.backends.cpu.flags(allow_winograd=False):  # the exact kernels: another result
        exact = FF.conv2d(x, wt, b, padding=padding, groups=groups)
        exact_gx, exact_gw = torch.autograd.grad(FF.conv2d(xs, ws, b, padding=padding, groups=groups), (xs, ws), gy)
    assert _rel_err(exact, yd) < 1e-6
    # the weight gradient: exact for 8 per group; 32 per group takes the general Winograd kernel only with the size
    # rule off (as here), and is exact with it
    assert not torch.equal(y, exact) and torch.equal(gw, exact_gw) == (cg == 8)
    if cg == 32:
        old = fastconv._C.set_winograd_size_rule(True)
        try:
            ruled_gw = torch.autograd.grad(FF.conv2d(xs, ws, b, padding=padding, groups=groups), ws, gy)[0]
        finally:
            fastconv._C.set_winograd_size_rule(old)
        assert torch.equal(ruled_gw, exact_gw)
    assert torch.equal(gx, exact_gx) == (max(padding if isinstance(padding, tuple) else (padding,)) > 2)
