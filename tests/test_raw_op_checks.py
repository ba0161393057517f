"""The raw ops' argument checks on every device (regressions from the strict differential fuzz, families raw and
raw_backward; see tests/fuzz_support.py _RawRefs):
  1. the fake (meta) implementations raise what the C++ CPU op raises (they used to return a shape);
  2. the backward ops reject a grad_output that is not the forward's output shape;
  3. max_unpool2d into an empty output plane returns torch's empty result without checking indices;
  4. an unsupported dtype is reported as such (naming float32 and float64), before any dtype comparison.
"""
import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import fastconv  # noqa: F401  (registers torch.ops.fastconv)

OPS = torch.ops.fastconv
F = torch.nn.functional


def _t(*shape, dtype=torch.float64):
    return torch.randn(*shape, dtype=torch.float64).to(dtype)


def _pool_indices(shape, k, s=None, p=0, d=1, ceil=False):
    return F.max_pool2d(_t(*shape), k, s, p, d, ceil, return_indices=True)


def _conv_args(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1, mode="zeros"):
    return [list(stride), list(padding), list(dilation), groups, mode]


X, W = _t(2, 4, 6, 6), _t(3, 4, 3, 3)  # conv2d(X, W, padding 1) -> (2, 3, 6, 6)
GY = _t(2, 3, 6, 6)
Y, IND = _pool_indices((2, 3, 6, 6), 2)  # (2, 3, 3, 3)
AY, AIND = F.adaptive_max_pool2d(_t(2, 3, 6, 6), (2, 2), return_indices=True)

# (id, op name, args, the exception the CPU op raises): the meta call must raise the same type
BAD_CALLS = [
    ("conv2d-padding-5-values", "conv2d", (X, W, None, [1, 1], [1] * 5, [1, 1], 1, "zeros"), ValueError),
    ("conv2d-stride-1-value", "conv2d", (X, W, None, [1], [1] * 4, [1, 1], 1, "zeros"), ValueError),
    ("conv2d-bogus-mode", "conv2d", (X, W, None, *_conv_args(mode="bogus")), ValueError),
    ("conv2d-bool-input", "conv2d", (X.bool(), W.bool(), None, *_conv_args()), TypeError),
    ("conv2d-uint8-weight", "conv2d", (X, W.to(torch.uint8), None, *_conv_args()), TypeError),
    ("conv2d-bias-size", "conv2d", (X, W, _t(4), *_conv_args()), ValueError),
    ("conv2d-channels", "conv2d", (X, _t(3, 2, 3, 3), None, *_conv_args()), ValueError),
    ("conv2d-kernel-too-big", "conv2d", (X, _t(3, 4, 9, 9), None, *_conv_args()), ValueError),
    ("conv2d-reflect-too-big", "conv2d", (X, W, None, *_conv_args(padding=(6, 6, 1, 1), mode="reflect")),
     ValueError),
    ("backward_input-grad_output-spatial", "conv2d_backward_input",
     (_t(2, 3, 5, 6), W, [2, 4, 6, 6], *_conv_args()), ValueError),
    ("backward_input-grad_output-batch", "conv2d_backward_input",
     (_t(1, 3, 6, 6), W, [2, 4, 6, 6], *_conv_args()), ValueError),
    ("backward_input-input_size-3-values", "conv2d_backward_input", (GY, W, [2, 4, 6], *_conv_args()), ValueError),
    ("backward_input-bogus-mode", "conv2d_backward_input", (GY, W, [2, 4, 6, 6], *_conv_args(mode="bogus")),
     ValueError),
    ("backward_input-bool", "conv2d_backward_input", (GY.bool(), W.bool(), [2, 4, 6, 6], *_conv_args()),
     TypeError),
    ("backward_weight-grad_output-spatial", "conv2d_backward_weight",
     (_t(2, 3, 7, 6), X, [3, 4, 3, 3], *_conv_args()), ValueError),
    ("backward_weight-weight_size-5-values", "conv2d_backward_weight", (GY, X, [3, 4, 3, 3, 1], *_conv_args()),
     ValueError),
    ("backward_bias-int", "conv_backward_bias", (GY.int(),), TypeError),
    ("conv_transpose2d-uint8-weight", "conv_transpose2d",
     (X, _t(4, 2, 3, 3).to(torch.uint8), None, [1, 1], [0, 0], [0, 0], 1, [1, 1]), TypeError),
    ("conv_transpose2d-output_padding", "conv_transpose2d",
     (X, _t(4, 2, 3, 3), None, [1, 1], [0, 0], [1, 1], 1, [1, 1]), ValueError),
    ("conv_transpose2d-3-values", "conv_transpose2d",
     (X, _t(4, 2, 3, 3), None, [1, 1, 1], [0, 0], [0, 0], 1, [1, 1]), ValueError),
    ("max_pool2d-padding", "max_pool2d_with_indices", (X, [2, 2], [2, 2], [2, 2], [1, 1], False), ValueError),
    ("max_pool2d-int", "max_pool2d_with_indices", (X.long(), [2, 2], [2, 2], [0, 0], [1, 1], False), TypeError),
    ("max_pool2d_backward-int32-indices", "max_pool2d_backward", (Y, IND.int(), [6, 6]), TypeError),
    ("max_pool2d_backward-indices-shape", "max_pool2d_backward", (Y, IND[:, :2], [6, 6]), ValueError),
    ("max_pool2d_backward-negative-size", "max_pool2d_backward", (Y, IND, [6, -1]), ValueError),
    ("backward_window-int64-grad", "max_pool2d_backward_window",
     (Y.long(), IND, [6, 6], [2, 2], [2, 2], [0, 0], [1, 1]), TypeError),
    ("backward_window-grad_output-shape", "max_pool2d_backward_window",
     (Y, IND, [9, 6], [2, 2], [2, 2], [0, 0], [1, 1]), ValueError),
    ("backward_window-kernel-3-values", "max_pool2d_backward_window",
     (Y, IND, [6, 6], [2, 2, 2], [2, 2], [0, 0], [1, 1]), ValueError),
    ("gather-uint8", "max_pool2d_gather", (X.to(torch.uint8), IND), TypeError),
    ("unpool-int32-indices", "max_unpool2d", (Y, IND.int(), [6, 6]), TypeError),
    ("unpool-output_size-3-values", "max_unpool2d", (Y, IND, [6, 6, 1]), ValueError),
    ("avg_pool2d-divisor-0", "avg_pool2d", (X, [2, 2], [2, 2], [0, 0], False, True, 0), ValueError),
    ("avg_pool2d_backward-grad_output", "avg_pool2d_backward",
     (_t(2, 3, 4, 3), [6, 6], [2, 2], [2, 2], [0, 0], False, True, None), ValueError),
    ("adaptive_avg-negative", "adaptive_avg_pool2d", (X, [2, -1]), ValueError),
    ("adaptive_max-no-channels", "adaptive_max_pool2d", (_t(2, 0, 6, 6), [2, 2]), ValueError),
    ("adaptive_avg_backward-batch", "adaptive_avg_pool2d_backward", (AY, [2**40, 3, 6, 6], False), ValueError),
    ("adaptive_max_backward-batch", "adaptive_max_pool2d_backward", (AY, AIND, [2**40, 3, 6, 6], False),
     ValueError),
    ("adaptive_max_backward-int32", "adaptive_max_pool2d_backward", (AY, AIND.int(), [2, 3, 6, 6], False),
     TypeError),
    ("adaptive_gather-uint8", "adaptive_max_pool2d_gather", (X[:, :3].to(torch.uint8), AIND), TypeError),
    ("adaptive_gather-channels", "adaptive_max_pool2d_gather", (X, AIND), ValueError),
]


def _on(device, args):
    return tuple(a.to(device) if isinstance(a, torch.Tensor) else a for a in args)


@pytest.mark.parametrize("name,args,exc", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_meta_raises_what_cpu_raises(name, args, exc):
    op = getattr(OPS, name)
    with pytest.raises(exc) as cpu:
        op(*args)
    with pytest.raises(exc) as meta:
        op(*_on("meta", args))
    assert str(cpu.value).split(":")[0] == str(meta.value).split(":")[0]  # both "fastconv.<op>"


GOOD_CALLS = [
    ("conv2d", (X, W, _t(3), *_conv_args(mode="reflect"))),
    ("conv2d_backward_input", (GY, W, [2, 4, 6, 6], *_conv_args())),
    ("conv2d_backward_weight", (GY, X, [3, 4, 3, 3], *_conv_args())),
    ("conv_transpose2d", (X, _t(4, 2, 3, 3), _t(2), [2, 1], [1, 0], [1, 0], 1, [1, 2])),
    ("max_pool2d_backward_window", (Y, IND, [6, 6], [2, 2], [2, 2], [0, 0], [1, 1])),
    ("max_pool2d_backward_window",  # ceil_mode's shape
     (*_pool_indices((2, 3, 5, 5), 2, ceil=True), [5, 5], [2, 2], [2, 2], [0, 0], [1, 1])),
    ("avg_pool2d_backward", (Y, [6, 6], [2, 2], [2, 2], [0, 0], False, True, None)),
    ("adaptive_max_pool2d_backward", (AY, AIND, [2, 3, 6, 6], True)),
    ("adaptive_max_pool2d_gather", (X[:, :3], AIND)),
    ("max_unpool2d", (Y, IND, [0, 8])),
]


@pytest.mark.parametrize("name,args", GOOD_CALLS, ids=[c[0] for c in GOOD_CALLS])
def test_meta_shapes_match_cpu(name, args):
    got, ref = getattr(OPS, name)(*_on("meta", args)), getattr(OPS, name)(*args)
    assert (got.shape, got.dtype, got.stride()) == (ref.shape, ref.dtype, ref.stride())


def test_meta_dtype_rule_names_the_supported_dtypes():
    """A meta tensor names no backend: any dtype some backend implements passes; others fail naming them."""
    assert OPS.conv_backward_bias(torch.empty(2, 3, 4, 4, device="meta", dtype=torch.float16)).shape == (3,)
    with pytest.raises(TypeError, match=r"grad_output must be float16, bfloat16, float32 or float64 on meta, "
                                        r"got int32"):
        OPS.conv_backward_bias(torch.empty(2, 3, 4, 4, device="meta", dtype=torch.int32))


def test_mixed_devices_raise_as_on_cpu():
    with pytest.raises(RuntimeError, match="input and weight must be on the same device, got cpu and meta"):
        OPS.conv2d(X, W.to("meta"), None, *_conv_args())


def test_backward_grad_output_shape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"conv2d_backward_input: grad_output of shape \[2, 3, 5, 6\] does not match "
                                         r"the convolution's output shape \[2, 3, 6, 6\]"):
        OPS.conv2d_backward_input(_t(2, 3, 5, 6), W, [2, 4, 6, 6], *_conv_args())
    with pytest.raises(ValueError, match=r"conv2d_backward_weight: grad_output of shape \[2, 3, 3, 3\] does not "
                                         r"match the convolution's output shape \[2, 3, 4, 4\]"):
        OPS.conv2d_backward_weight(_t(2, 3, 3, 3), X, [3, 4, 3, 3], *_conv_args(padding=(0, 0, 0, 0)))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad_output of shape \[2, 3, 3, 3\] does not match "
                                         r"the output shape \(2, 3, 4, 3\)"):
        OPS.max_pool2d_backward_window(Y, IND, [9, 6], [2, 2], [2, 2], [0, 0], [1, 1])


@pytest.mark.parametrize("case", [(1, 2, 3, 2, 3, (1, 1), (1, 1), (3, 2)), (2, 2, 2, 3, 3, (2, 1), (1, 0), (3, 2))])
def test_conv_transpose_backward_with_output_padding_past_stride(case):
    """output_padding >= stride (allowed below dilation): the weight gradient's convolution has more output rows
    than the input; its backward pads the input with zeros rather than pass a smaller grad_output."""
    n, cin, cout, h, w, stride, opad, dil = case
    x = _t(n, cin, h, w).requires_grad_()
    wt = _t(cin, cout, 3, 3).requires_grad_()
    args = (list(stride), [1, 1], list(opad), 1, [dil[0], dil[1]])
    y = OPS.conv_transpose2d(x, wt, None, *args)
    ref = F.conv_transpose2d(x, wt, None, stride, 1, opad, 1, dil)
    gy = _t(*ref.shape)
    got = torch.autograd.grad(y, (x, wt), gy)
    want = torch.autograd.grad(ref, (x, wt), gy)
    for g, r in zip(got, want):
        torch.testing.assert_close(g, r)
    assert torch.autograd.gradgradcheck(lambda a, b: OPS.conv_transpose2d(a, b, None, *args), (x, wt))


@pytest.mark.parametrize("out", [[0, 8], [7, 0], [0, 0]])
@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_max_unpool_into_an_empty_plane(out, device):
    """torch returns the empty (N, C, *out) result and checks no index; indices past any plane included."""
    y, ind = _on(device, _pool_indices((1, 4, 9, 8), 2, 1))
    for bad in (ind, ind + 100, ind - 5):
        got = OPS.max_unpool2d(y, bad, out)
        ref = torch.ops.aten.max_unpool2d(y, bad, out)
        assert (got.shape, got.dtype) == (ref.shape, ref.dtype) == ((1, 4, *out), torch.float64)
    with pytest.raises(RuntimeError, match="invalid index"):  # the max-pool backward still checks them
        OPS.max_pool2d_backward(*_pool_indices((1, 4, 9, 8), 2, 1), out)


def test_unsupported_dtype_errors_name_float32_and_float64():
    """uint8 weight with an empty batch (torch returns an empty result): fastconv's error is its unsupported-dtype
    one, not a dtype mismatch."""
    x = _t(0, 3, 3, 1, dtype=torch.float32)
    w = _t(3, 2, 4, 3).to(torch.uint8)
    with pytest.raises(TypeError, match=r"conv_transpose2d: weight must be float32 or float64 on cpu, got uint8"):
        OPS.conv_transpose2d(x, w, None, [3, 3], [1, 1], [0, 2], 1, [2, 2])
    with pytest.raises(TypeError, match=r"conv2d: bias must be float32 or float64 on cpu, got int64"):
        OPS.conv2d(X, W, torch.zeros(3, dtype=torch.int64), *_conv_args())
    with pytest.raises(TypeError, match=r"conv2d_backward_input: weight must be float32 or float64 on cpu, got bool"):
        OPS.conv2d_backward_input(GY, W.bool(), [2, 4, 6, 6], *_conv_args())


def test_fake_checks_trace_with_symbolic_sizes():
    """The checks only compare sizes: a symbolic trace of forward and backward (what torch.compile with dynamic
    shapes does) goes through every fake implementation they guard."""
    def f(x, w, g):
        y = OPS.conv2d(x, w, None, *_conv_args())
        p, i = OPS.max_pool2d_with_indices(y, [2, 2], [2, 2], [0, 0], [1, 1], True)
        gx, gw = torch.autograd.grad(p, (x, w), g)
        a = OPS.adaptive_avg_pool2d(gx, [2, 3])
        return a, gw, OPS.max_unpool2d(p, i, [y.shape[2], y.shape[3]])

    x, w = X.clone().requires_grad_(), W.clone().requires_grad_()
    gm = make_fx(f, tracing_mode="symbolic")(x, w, _t(2, 3, 3, 3))
    x2 = _t(3, 4, 9, 7).requires_grad_()
    got = gm(x2, w, _t(3, 3, 5, 4))
    want = f(x2, w, _t(3, 3, 5, 4))
    assert [t.shape for t in got] == [t.shape for t in want]
