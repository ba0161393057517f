"""torch.autocast on the CPU with fastconv (policy in fastconv/_autocast.py): fastconv ops cast float16 /
bfloat16 / float32 arguments to float32 and compute in float32 on fastconv's own kernels; the casts are
differentiable, so gradients come back in each tensor's own dtype.

A converted model under autocast is compared with its torch-layer twin under the same autocast. torch runs
its CPU convolutions in bfloat16 there while fastconv runs them in float32, and both run the Linear layers in
bfloat16, so the tolerance is a bfloat16 one (a few 1e-3 relative per layer). Gradients are compared with a
float32 run of the same model. That the work really ran on
fastconv's kernels is checked with the profiler: fastconv::* events present, aten convolution / pooling absent.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import profile

import fastconv
import fastconv.nn.functional as FF
from fastconv import models
from fastconv.nn import _args
from conftest import assert_close_scaled

BF16_TOL = 3e-2  # relative to max|ref|: bfloat16 has an 8-bit mantissa (~4e-3 per rounding), several layers

WARNING = "under torch.autocast, fastconv ops compute in float32"


@pytest.fixture
def fresh_warning(monkeypatch):
    """The autocast warning is once per process; make this test see it as the first time."""
    monkeypatch.setattr(_args, "_autocast_warned", False)


def _models():
    """(converted, torch twin): conv + max pool stages, then Linear layers; identical weights."""
    ref = models.MnistCNN(input_size=16, width=0.25, hidden=32, dropout=0.0, layers=torch.nn)
    model, report = fastconv.convert(models.MnistCNN(input_size=16, width=0.25, hidden=32, dropout=0.0,
                                                     layers=torch.nn), strict=True)
    assert len(report.swapped) == 4
    model.load_state_dict(ref.state_dict())
    return model, ref


def _event_names(fn):
    with profile() as prof:
        fn()
    return {e.name for e in prof.events()}


def _assert_close_loose(got, ref, what):
    assert torch.isfinite(got).all(), f"{what}: not finite"
    scale = ref.abs().max().item()
    err = (got.double() - ref.double()).abs().max().item()
    assert err <= BF16_TOL * scale, f"{what}: max abs error {err:.3g} > {BF16_TOL} * {scale:.3g}"


def _run(net, x, autocast):
    """Forward (under bfloat16 autocast or in float32), float32 loss, backward; returns output, input grad,
    parameter grads and the names of the profiled events."""
    xi = x.clone().requires_grad_(True)
    out = {}

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out["y"] = net(xi if autocast else xi.float())
        out["y"].float().square().sum().backward()  # loss in float32, outside the autocast region

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning has its own test below
        names = _event_names(step)
    return out["y"], xi.grad, [p.grad for p in net.parameters()], names


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_converted_model_under_bf16_autocast(input_dtype):
    model, ref = _models()
    x = torch.randn(4, 1, 16, 16).to(input_dtype)
    y, x_grad, p_grads, names = _run(model, x, autocast=True)
    y_ref, _, _, names_ref = _run(ref, x, autocast=True)

    # the work ran on fastconv's kernels, forward and backward, and not on torch's
    for op in ("fastconv::conv2d", "fastconv::max_pool2d_with_indices", "fastconv::conv2d_backward_input",
               "fastconv::conv2d_backward_weight", "fastconv::max_pool2d_backward_window"):
        assert op in names, f"{op} not called; fastconv events: {sorted(n for n in names if 'fastconv' in n)}"
    torch_ops = {n for n in names if n.startswith("aten::") and ("conv" in n or "pool" in n)}
    assert not torch_ops, torch_ops
    assert "aten::convolution" in names_ref  # the profiler does see torch's convolution when it runs

    assert y.dtype == y_ref.dtype == torch.bfloat16  # the last layer is an autocast Linear
    _assert_close_loose(y, y_ref, "output vs the torch-layer build under autocast")

    # Gradients are compared with the float32 run (no autocast): torch's own autocast build is no reference
    # for them, its bfloat16 convolutions round pooled values into ties that route max-pool gradients
    # elsewhere (measured: up to ~25% of max|grad| off float32, while fastconv's stay within ~1%).
    model.zero_grad()
    y32, x_grad32, p_grads32, _ = _run(model, x, autocast=False)
    _assert_close_loose(y, y32, "output vs float32")
    assert x_grad.dtype == input_dtype
    _assert_close_loose(x_grad, x_grad32, "input gradient vs float32")
    for (pname, p), g, g32 in zip(model.named_parameters(), p_grads, p_grads32):
        assert g is not None, f"no gradient for {pname}"
        assert g.dtype == p.dtype == torch.float32, pname
        _assert_close_loose(g, g32, f"gradient of {pname} vs float32")


def test_converted_model_autocast_warns_once(fresh_warning):
    model, _ = _models()
    x = torch.randn(2, 1, 16, 16, dtype=torch.bfloat16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
            model(x)
    hits = [w for w in caught if WARNING in str(w.message)]
    assert len(hits) == 1, [str(w.message) for w in caught]
    assert "torch.bfloat16" in str(hits[0].message)


def test_float32_input_under_autocast_does_not_warn(fresh_warning):
    model, _ = _models()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(torch.randn(2, 1, 16, 16))  # the convs see float32 activations: nothing is cast


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_functional_under_autocast_computes_in_float32(low, fresh_warning):
    """A low-precision input and a float32 weight: fastconv casts the input to float32 (exactly) and
    computes in float32, so the result equals torch's float32 conv of the upcast input to float32 accuracy."""
    x = torch.randn(2, 3, 9, 8).to(low).requires_grad_(True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    with pytest.warns(UserWarning, match=WARNING):
        with torch.autocast("cpu", dtype=low):
            with profile() as prof:
                y = FF.conv2d(x, w, b, stride=(1, 2), padding=1)
                p = FF.max_pool2d(y, 2)
    names = {e.name for e in prof.events()}
    assert {"fastconv::conv2d", "fastconv::max_pool2d_with_indices"} <= names, names
    assert y.dtype == p.dtype == torch.float32

    xr = x.detach().float().requires_grad_(True)
    wr, br = w.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
    y_ref = F.conv2d(xr, wr, br, stride=(1, 2), padding=1)
    p_ref = F.max_pool2d(y_ref, 2)
    assert_close_scaled(y, y_ref, what="conv2d")
    assert_close_scaled(p, p_ref, what="max_pool2d")

    g = torch.randn_like(p_ref)
    (p * g).sum().backward()
    (p_ref * g).sum().backward()
    assert x.grad.dtype == low and w.grad.dtype == b.grad.dtype == torch.float32
    # the input gradient is computed in float32 and rounded once to the input's dtype
    torch.testing.assert_close(x.grad, xr.grad.to(low))
    assert_close_scaled(w.grad, wr.grad, what="weight gradient")
    assert_close_scaled(b.grad, br.grad, what="bias gradient")


def test_functional_float64_left_alone_under_autocast():
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = FF.conv2d(x, w)
    assert y.dtype == torch.float64
    assert_close_scaled(y, F.conv2d(x, w), what="float64 conv2d")


def test_low_precision_outside_autocast_is_rejected():
    x = torch.randn(1, 3, 5, 5, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="fastconv.conv2d: input must have a floating dtype"):
        FF.conv2d(x, torch.randn(2, 3, 3, 3, dtype=torch.bfloat16))


def test_cuda_policy_is_torch_s():
    """CUDA autocast follows torch's lists: the convolutions run in the region's low-precision dtype, pooling has no
    rule (its input dtype). Checked here as registrations; tests/test_cuda.py runs them on a GPU."""
    from fastconv import _autocast
    convs = {"conv2d", "conv2d_backward_input", "conv2d_backward_weight", "conv_backward_bias", "conv_transpose2d"}
    names = _autocast._fastconv_op_names()
    assert convs <= {q.split("::")[1] for q in names}
    for qualname in names:
        conv = qualname.split("::")[1] in convs
        assert _autocast.cuda_casts_to_low_precision(qualname) == conv, qualname
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "AutocastCUDA") == conv, qualname
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "AutocastCPU"), qualname


def test_cuda_rule_casts_like_torch():
    """float16/bfloat16/float32 tensors (also inside lists) to the region's dtype; float64, integer tensors and
    non-tensors unchanged; tensors of another device unchanged."""
    from fastconv._autocast import cast_floating
    x32, x64, idx = torch.randn(2), torch.randn(2, dtype=torch.float64), torch.arange(2)
    out = cast_floating((x32, x64, idx, [x32.bfloat16(), 3], 1.5, None), torch.float16, "cpu")
    assert out[0].dtype == torch.float16 and out[1].dtype == torch.float64 and out[2].dtype == torch.int64
    assert out[3][0].dtype == torch.float16 and out[3][1] == 3 and out[4] == 1.5 and out[5] is None
    assert cast_floating((x32,), torch.float16, "cuda")[0] is x32
