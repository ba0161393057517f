"""conv_transpose1d/2d and ConvTranspose1d/2d against torch: outputs and every gradient, float32/float64,
contiguous / channels_last / non-contiguous activations, batch 0/1/odd, unbatched inputs."""
import pytest
import torch
import torch.nn.functional as F

import fastconv
import fastconv.nn.functional as FF

torch.manual_seed(0)


def _tol(ref, dtype):
    scale = max(1.0, ref.abs().max().item()) if ref.numel() else 1.0
    return (1e-4 * scale, 1e-4) if dtype == torch.float32 else (1e-10 * scale, 1e-10)


def _close(ours, ref, dtype, what):
    atol, rtol = _tol(ref, dtype)
    assert ours.shape == ref.shape, f"{what}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
    torch.testing.assert_close(ours, ref, atol=atol, rtol=rtol, msg=lambda m: f"{what}: {m}")


def _layout(t, layout):
    if layout == "channels_last" and t.dim() == 4:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "noncontig":  # every other element of a wider tensor (last-dim stride 2)
        return torch.stack([t, torch.randn_like(t)], dim=-1)[..., 0]
    return t


def _check(ours_fn, ref_fn, x, w, b, kwargs, dtype, layout="contiguous"):
    x = x.to(dtype)
    w, b = w.to(dtype), (b.to(dtype) if b is not None else None)
    leaves = [_layout(x.detach().clone(), layout).requires_grad_()]
    leaves += [t.detach().clone().requires_grad_() for t in (w,) + ((b,) if b is not None else ())]
    if layout == "noncontig" and x.numel():
        assert not leaves[0].is_contiguous()
    refs = [t.detach().clone().requires_grad_() for t in leaves]
    y = ours_fn(leaves[0], leaves[1], leaves[2] if b is not None else None, **kwargs)
    y_ref = ref_fn(refs[0], refs[1], refs[2] if b is not None else None, **kwargs)
    _close(y, y_ref, dtype, "output")
    if layout == "channels_last" and x.dim() == 4 and y.dim() == 4 and x.shape[1] > 1 and y.shape[1] > 1 \
            and x.numel():
        assert y.is_contiguous(memory_format=torch.channels_last), "channels_last in -> channels_last out"
    gy = torch.randn_like(y_ref)
    y.backward(gy)
    y_ref.backward(gy)
    for name, a, r in zip(("grad_input", "grad_weight", "grad_bias"), leaves, refs):
        _close(a.grad, r.grad, dtype, name)


# (N, Cin, Cout, H, W, kernel, stride, padding, output_padding, dilation, groups, bias)
CASES_2D = [
    (2, 3, 4, 5, 6, 3, 1, 0, 0, 1, 1, True),
    (1, 4, 6, 5, 4, (2, 3), (2, 1), (1, 0), (1, 0), 1, 2, False),
    (3, 4, 4, 7, 5, 5, 3, 2, 2, 1, 1, True),
    (2, 6, 6, 4, 4, 3, 2, 1, 1, 1, 6, True),            # depthwise-like
    (2, 4, 2, 5, 5, 3, 1, 1, (1, 2), 3, 1, True),       # output_padding >= stride, < dilation
    (1, 2, 3, 4, 4, (3, 2), 2, 0, (2, 1), (3, 1), 1, True),  # output_padding == stride < dilation
    (4, 8, 4, 7, 7, 2, 2, 0, 0, 1, 1, True),            # U-Net up-conv
    (3, 8, 4, 4, 4, 4, 2, 1, 0, 1, 1, True),            # DCGAN
    (0, 3, 4, 5, 5, 3, 2, 1, 1, 1, 1, True),            # empty batch
    (1, 1, 1, 3, 3, 1, 1, 0, 0, 1, 1, True),            # 1x1 kernel, single channel
    (5, 4, 8, 3, 6, (1, 4), (1, 3), (0, 1), (0, 2), (1, 2), 4, True),
    (1, 3, 2, 6, 1, (2, 1), 2, 0, 1, 1, 1, True),        # W == 1
]


def _ids(cases):
    return [f"case{i}" for i in range(len(cases))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontig"])
@pytest.mark.parametrize("case", CASES_2D, ids=_ids(CASES_2D))
def test_conv_transpose2d_matches_torch(case, layout, dtype):
    n, cin, cout, h, w_, k, s, p, op, d, g, bias = case
    k = k if isinstance(k, tuple) else (k, k)
    x = torch.randn(n, cin, h, w_)
    w = torch.randn(cin, cout // g, *k)
    b = torch.randn(cout) if bias else None
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    _check(FF.conv_transpose2d, F.conv_transpose2d, x, w, b, kw, dtype, layout)


# (N, Cin, Cout, L, kernel, stride, padding, output_padding, dilation, groups, bias)
CASES_1D = [
    (2, 3, 4, 7, 3, 1, 0, 0, 1, 1, True),
    (3, 4, 6, 5, 4, 2, 1, 1, 1, 2, False),
    (1, 2, 2, 6, 5, 3, 2, 2, 1, 2, True),
    (2, 3, 2, 4, 3, 1, 1, 2, 3, 1, True),   # output_padding >= stride, < dilation
    (0, 2, 3, 4, 2, 2, 0, 0, 1, 1, True),
    (5, 4, 4, 9, 1, 1, 0, 0, 1, 4, True),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "noncontig"])
@pytest.mark.parametrize("case", CASES_1D, ids=_ids(CASES_1D))
def test_conv_transpose1d_matches_torch(case, layout, dtype):
    n, cin, cout, length, k, s, p, op, d, g, bias = case
    x = torch.randn(n, cin, length)
    w = torch.randn(cin, cout // g, k)
    b = torch.randn(cout) if bias else None
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    _check(FF.conv_transpose1d, F.conv_transpose1d, x, w, b, kw, dtype, layout)


@pytest.mark.parametrize("spatial", [1, 2])
def test_unbatched(spatial):
    x = torch.randn(3, *([5] * spatial))
    w = torch.randn(3, 2, *([3] * spatial))
    b = torch.randn(2)
    fn, ref = (FF.conv_transpose1d, F.conv_transpose1d) if spatial == 1 else (FF.conv_transpose2d,
                                                                               F.conv_transpose2d)
    _check(fn, ref, x, w, b, dict(stride=2, padding=1, output_padding=1, groups=1, dilation=1), torch.float64)
    y = fn(x, w, None, stride=2, groups=1)
    assert y.dim() == spatial + 1


def test_inputs_not_modified_and_weight_non_contiguous():
    x = torch.randn(2, 4, 5, 5)
    w = torch.randn(2, 4, 3, 3).transpose(0, 1)  # (4, 2, 3, 3), non-contiguous
    x0, w0 = x.clone(), w.clone()
    y = FF.conv_transpose2d(x, w, stride=2, padding=1)
    torch.testing.assert_close(y, F.conv_transpose2d(x, w, stride=2, padding=1), atol=1e-4, rtol=1e-4)
    assert torch.equal(x, x0) and torch.equal(w, w0)


# ---- modules ----

@pytest.mark.parametrize("cls,ref_cls,spatial", [(fastconv.nn.ConvTranspose1d, torch.nn.ConvTranspose1d, 1),
                                                 (fastconv.nn.ConvTranspose2d, torch.nn.ConvTranspose2d, 2)])
def test_module_matches_torch_and_state_dict(cls, ref_cls, spatial):
    kwargs = dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, output_padding=1, groups=2,
                  dilation=1, bias=True)
    ref = ref_cls(**kwargs)
    ours = cls(**kwargs)
    assert isinstance(ours, ref_cls)
    assert repr(ours) == repr(ref)
    assert ours.weight.shape == ref.weight.shape == (4, 3) + (3,) * spatial
    assert list(ours.state_dict().keys()) == list(ref.state_dict().keys())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 4, *([5] * spatial))
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
    ref2 = ref_cls(**kwargs)
    ref2.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ref2(x), ref(x))
    # unbatched through the module
    torch.testing.assert_close(ours(x[0]), ref(x[0]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stride", [2, 3])
def test_module_output_size(stride):
    ours = fastconv.nn.ConvTranspose2d(3, 2, 3, stride=stride, padding=1)
    ref = torch.nn.ConvTranspose2d(3, 2, 3, stride=stride, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 4, 5)
    lo_h, lo_w = (4 - 1) * stride - 2 + 3, (5 - 1) * stride - 2 + 3
    for dh in range(stride):
        for dw in range(stride):
            size = [lo_h + dh, lo_w + dw]
            y = ours(x, output_size=size)
            assert list(y.shape[2:]) == size
            torch.testing.assert_close(y, ref(x, output_size=size), atol=1e-5, rtol=1e-5)
    y = ours(x, output_size=[2, 2, lo_h, lo_w])  # full (N, C, H, W) form
    assert list(y.shape[2:]) == [lo_h, lo_w]
    with pytest.raises(ValueError, match="requested an output size"):
        ours(x, output_size=[lo_h + stride, lo_w])
    with pytest.raises(ValueError, match="requested an output size"):
        ours(x, output_size=[lo_h - 1, lo_w])
    # unbatched input: output_size of 2 (spatial) or 3 (C, H, W) values
    size = [lo_h + stride - 1, lo_w]
    torch.testing.assert_close(ours(x[1], output_size=size), ref(x[1], output_size=size), atol=1e-5, rtol=1e-5)
    assert ours(x[1], output_size=[2] + size).shape == (2, *size)


def test_module1d_output_size():
    ours = fastconv.nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1)
    ref = torch.nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 3, 6)
    for size in (12, 13):
        torch.testing.assert_close(ours(x, output_size=[size]), ref(x, output_size=[size]), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="requested an output size"):
        ours(x, output_size=[14])


def test_module_backward_matches_torch():
    torch.manual_seed(1)
    ours = fastconv.nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)
    ref = torch.nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(2, 4, 6, 6)
    ours(x).square().sum().backward()
    ref(x).square().sum().backward()
    for a, b in ((ours.weight, ref.weight), (ours.bias, ref.bias)):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-3, rtol=1e-4)


# ---- batch 0 with an empty input or output plane ----

# (spatial, input shape, weight shape, kwargs): output sizes from the formula that are 0 in some dimension,
# or come from an empty input plane
EMPTY_PLANE_CASES = [
    (2, (0, 3, 4, 1), (3, 4, 3, 2), dict(padding=(1, 1))),                # output (4, 0)
    (2, (0, 3, 1, 1), (3, 4, 2, 2), dict(padding=1)),                     # output (0, 0)
    (2, (0, 4, 1, 2), (4, 3, 2, 2), dict(padding=1, groups=2, stride=2)),  # output (0, 2), groups
    (2, (0, 3, 0, 4), (3, 4, 3, 2), dict()),                              # empty input plane -> (2, 5)
    (1, (0, 3, 1), (3, 4, 2), dict(padding=1)),                           # output (0,)
    (1, (0, 3, 0), (3, 4, 2), dict()),                                    # empty input -> (1,)
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case", EMPTY_PLANE_CASES, ids=_ids(EMPTY_PLANE_CASES))
def test_batch0_empty_plane_matches_torch(case, layout, dtype):
    """torch returns an empty (0, out_channels, *formula sizes) tensor for a batch of 0 whenever no size is
    negative; its gradients are an empty grad_input and zero grad_weight / grad_bias."""
    spatial, xs, ws, kw = case
    fn, ref = (FF.conv_transpose1d, F.conv_transpose1d) if spatial == 1 else (FF.conv_transpose2d,
                                                                               F.conv_transpose2d)
    x = _layout(torch.randn(xs, dtype=dtype), layout)
    w = _layout(torch.randn(ws, dtype=dtype), layout)
    b = torch.randn(ws[1] * kw.get("groups", 1), dtype=dtype)
    ours = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    refs = [t.detach().clone().requires_grad_() for t in (x, w, b)]
    y, y_ref = fn(*ours, **kw), ref(*refs, **kw)
    assert y.shape == y_ref.shape and y.stride() == y_ref.stride() and y.dtype == y_ref.dtype
    assert y.requires_grad
    gy = torch.randn_like(y_ref)
    for name, a, r in zip(("grad_input", "grad_weight", "grad_bias"), torch.autograd.grad(y, ours, gy),
                          torch.autograd.grad(y_ref, refs, gy)):
        assert a.shape == r.shape, name
        assert torch.equal(a, r), name
    # without bias, and without anything requiring grad
    y = fn(x, w, None, **kw)
    assert y.shape == y_ref.shape and not y.requires_grad


@pytest.mark.parametrize("spatial", [1, 2])
def test_negative_output_size_or_nonempty_batch_raise(spatial):
    """A negative output size is an error for every batch size (torch: 'invalid shape dimension'), and an
    empty output plane for a non-empty batch (torch's reference kernels: 'Output size is too small'; only
    its float32 oneDNN path for batches >= 2 returns an empty tensor there)."""
    fn, ref = (FF.conv_transpose1d, F.conv_transpose1d) if spatial == 1 else (FF.conv_transpose2d,
                                                                               F.conv_transpose2d)
    w = torch.randn(3, 4, *([2] * spatial), dtype=torch.float64)
    for n, padding, match in ((0, 2, "is negative"), (1, 2, "is not positive"), (1, 1, "is not positive"),
                              (3, 1, "is not positive")):
        x = torch.randn(n, 3, *([1] * spatial), dtype=torch.float64)
        with pytest.raises(RuntimeError):
            ref(x, w, padding=padding)
        with pytest.raises(ValueError, match=f"conv_transpose{spatial}d: output size .* {match}"):
            fn(x, w, padding=padding)
    with pytest.raises(ValueError, match="output size .* is not positive"):  # unbatched: a batch of 1
        fn(torch.randn(3, *([1] * spatial)), w.float(), padding=1)
    with pytest.raises(ValueError, match="input spatial size must be positive"):  # empty plane, batch 1
        fn(torch.randn(1, 3, *([0] * spatial)), w.float())
