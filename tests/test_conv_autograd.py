"""Autograd, op registration and torch.compile of the convolution ops.

gradcheck / gradgradcheck in float64 on a representative subset (second derivatives run through the
conv2d_backward_* ops' own autograd formulas); torch.library.opcheck on samples of every conv op in
torch.ops.fastconv; torch.compile(fullgraph=True) of a small model matching eager, forward and backward.
"""
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import fastconv
from conftest import assert_close_scaled

FC = fastconv.nn.functional
OPS = torch.ops.fastconv


@pytest.fixture
def one_thread():
    """gradcheck calls the ops thousands of times on tiny tensors; with 2 OpenMP threads on a busy machine
    each call costs ~1 ms of thread wake-up instead of ~20 us (measured on this 2-core machine under
    load). The values do not depend on the thread count; threading is covered by test_conv.py."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _r(*shape, cl=False, grad=True):
    t = torch.randn(*shape, dtype=torch.float64)
    if cl:
        t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_(grad)


# ---------------------------------------------------------------- gradcheck / gradgradcheck (functional)

FUNCTIONAL_CASES = {
    "2d-plain": (2, (2, 3, 5, 5), (4, 3, 3, 3), True, dict(padding=1)),
    "2d-stride2-groups2": (2, (2, 4, 6, 5), (4, 2, 3, 3), True, dict(stride=2, padding=1, groups=2)),
    "2d-dilation-asym-pad": (2, (1, 2, 6, 7), (3, 2, 3, 2), False, dict(padding=(2, 1), dilation=(2, 3))),
    "2d-same-even": (2, (1, 2, 5, 4), (2, 2, 2, 4), True, dict(padding="same")),
    "2d-depthwise-x2": (2, (2, 3, 5, 5), (6, 1, 3, 3), True, dict(padding=1, groups=3)),
    "2d-stride3-valid": (2, (1, 2, 7, 8), (2, 2, 2, 3), True, dict(stride=(3, 2))),
    "2d-channels-last": (2, (2, 3, 4, 5), (4, 3, 3, 3), True, dict(padding=1, cl=True)),
    "1d-causal-dilated": (1, (2, 3, 9), (2, 3, 3), True, dict(padding="causal", dilation=2)),
    "1d-strided": (1, (2, 2, 10), (3, 2, 4), False, dict(stride=3, padding=2)),
    "1d-unbatched": (1, (2, 7), (3, 2, 3), True, dict(padding="same")),
}


@pytest.mark.parametrize("name", list(FUNCTIONAL_CASES))
def test_gradcheck_and_gradgradcheck_functional(name, one_thread):
    spatial, xs, ws, bias, kw = FUNCTIONAL_CASES[name]
    kw = dict(kw)
    cl = kw.pop("cl", False)
    fn = FC.conv1d if spatial == 1 else FC.conv2d
    inputs = (_r(*xs, cl=cl), _r(*ws), _r(ws[0]) if bias else None)

    def f(x, w, b):
        return fn(x, w, b, **kw)

    assert gradcheck(f, inputs)
    assert gradgradcheck(f, inputs)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("spatial,config", [
    (2, dict(kernel_size=3, padding=1, stride=2, groups=2)),
    (2, dict(kernel_size=(2, 3), padding="same", dilation=(2, 1))),
    (1, dict(kernel_size=3, padding=2, dilation=2)),
])
def test_gradcheck_and_gradgradcheck_padding_modes(mode, spatial, config, one_thread):
    cls = fastconv.nn.Conv1d if spatial == 1 else fastconv.nn.Conv2d
    m = cls(4, 4, padding_mode=mode, dtype=torch.float64, **config)
    x = _r(*((2, 4) + (5,) * spatial))
    w, b = _r(*m.weight.shape), _r(*m.bias.shape)

    def f(x, w, b):
        return torch.func.functional_call(m, {"weight": w, "bias": b}, (x,))

    assert gradcheck(f, (x, w, b))
    assert gradgradcheck(f, (x, w, b))


def test_backward_ops_reject_a_cropped_grad_output():
    """grad_output smaller than the formula's output is the gradient of no conv2d: rejected, as torch's autograd
    does (transposed convolution, which has such shapes, pads its input instead: test_raw_op_checks.py)."""
    w = _r(3, 2, 3, 3)
    gy = _r(2, 3, 3, 2)  # formula output for (2, 2, 7, 6), stride 2, padding 1 is (4, 3)
    args = ([1, 1, 1, 1], [1, 1], 1, "zeros")
    with pytest.raises(ValueError, match=r"grad_output of shape \[2, 3, 3, 2\] does not match the convolution's "
                                         r"output shape \[2, 3, 4, 3\]"):
        OPS.conv2d_backward_input(gy, w, [2, 2, 7, 6], [2, 2], *args)
    with pytest.raises(ValueError, match=r"grad_output of shape \[2, 3, 3, 2\] does not match"):
        OPS.conv2d_backward_weight(gy, _r(2, 2, 7, 6), [3, 2, 3, 3], [2, 2], *args)


def test_gradgradcheck_backward_bias(one_thread):
    gy = _r(2, 3, 4, 5)
    assert gradcheck(OPS.conv_backward_bias, (gy,))
    assert gradgradcheck(OPS.conv_backward_bias, (gy,))


def test_gradcheck_catches_a_wrong_gradient(one_thread):
    """The harness can fail: a conv whose backward is deliberately scaled is rejected by gradcheck."""
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return FC.conv2d(x, w, None, 1, 1)

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            gx = OPS.conv2d_backward_input(g, w, list(x.shape), [1, 1], [1, 1, 1, 1], [1, 1], 1, "zeros")
            return gx * 1.01, None

    assert not gradcheck(Wrong.apply, (_r(1, 2, 4, 4), _r(2, 2, 3, 3, grad=False)), raise_exception=False)


# ---------------------------------------------------------------- torch.library.opcheck

def _opcheck_samples():
    s = []
    # conv2d: (input, weight, bias, stride, padding[t, b, l, r], dilation, groups, padding_mode)
    for cl in (False, True):
        x = _r(2, 4, 6, 5, cl=cl)
        s.append(("conv2d", (x, _r(6, 2, 3, 3), _r(6), [1, 1], [1, 1, 1, 1], [1, 1], 2, "zeros")))
        s.append(("conv2d", (x, _r(4, 4, 2, 3), None, [2, 1], [0, 1, 1, 2], [1, 2], 1, "reflect")))
        s.append(("conv2d", (x, _r(4, 1, 3, 3), _r(4), [1, 2], [2, 2, 1, 1], [1, 1], 4, "circular")))
    s.append(("conv2d", (_r(3, 2, 1, 9), _r(3, 2, 1, 3), _r(3), [1, 2], [0, 0, 2, 0], [1, 2], 1, "replicate")))
    s.append(("conv2d", (_r(0, 2, 4, 4), _r(3, 2, 3, 3), _r(3), [1, 1], [1, 1, 1, 1], [1, 1], 1, "zeros")))
    s.append(("conv2d", (torch.randn(1, 3, 5, 5), torch.randn(2, 3, 3, 3, requires_grad=True), None,
                         [1, 1], [1, 1, 1, 1], [1, 1], 1, "zeros")))  # float32, grad for weight only
    # conv2d_backward_input: (grad_output, weight, input_size, stride, padding, dilation, groups, mode)
    for cl in (False, True):
        s.append(("conv2d_backward_input", (_r(2, 6, 6, 5, cl=cl), _r(6, 2, 3, 3), [2, 4, 6, 5], [1, 1],
                                            [1, 1, 1, 1], [1, 1], 2, "zeros")))
        s.append(("conv2d_backward_input", (_r(2, 4, 4, 3, cl=cl), _r(4, 4, 3, 3), [2, 4, 7, 6], [2, 2],
                                            [1, 1, 1, 1], [1, 1], 1, "replicate")))
    s.append(("conv2d_backward_input", (_r(1, 3, 4, 3), _r(3, 2, 3, 3), [1, 2, 7, 6], [2, 2], [1, 1, 1, 1],
                                        [1, 1], 1, "zeros")))
    # conv2d_backward_weight: (grad_output, input, weight_size, stride, padding, dilation, groups, mode)
    for cl in (False, True):
        s.append(("conv2d_backward_weight", (_r(2, 6, 6, 5, cl=cl), _r(2, 4, 6, 5, cl=cl), [6, 2, 3, 3], [1, 1],
                                             [1, 1, 1, 1], [1, 1], 2, "zeros")))
        s.append(("conv2d_backward_weight", (_r(2, 4, 5, 3), _r(2, 4, 6, 5, cl=cl), [4, 4, 3, 3], [1, 2],
                                             [1, 0, 2, 1], [1, 1], 1, "reflect")))
    # conv_backward_bias: (grad_output,)
    for cl in (False, True):
        s.append(("conv_backward_bias", (_r(2, 5, 3, 4, cl=cl),)))
    s.append(("conv_backward_bias", (_r(0, 5, 3, 4),)))
    return s


OPCHECK_SAMPLES = _opcheck_samples()


def test_every_conv_op_has_opcheck_samples():
    # conv_transpose2d has its own opcheck samples in test_conv_transpose_ops.py
    conv_ops = {name for name in dir(OPS) if name.startswith("conv") and not name.startswith("conv_transpose")}
    assert conv_ops == {"conv2d", "conv2d_backward_input", "conv2d_backward_weight", "conv_backward_bias"}, \
        f"new conv ops {conv_ops}: add opcheck samples for them"
    assert {name for name, _ in OPCHECK_SAMPLES} == conv_ops


@pytest.mark.parametrize("i", range(len(OPCHECK_SAMPLES)),
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPCHECK_SAMPLES)])
def test_opcheck(i, one_thread):
    name, args = OPCHECK_SAMPLES[i]
    torch.library.opcheck(getattr(OPS, name).default, args)


# ---------------------------------------------------------------- torch.compile

class _SmallNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = fastconv.nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = fastconv.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, padding_mode="reflect")
        self.c3 = fastconv.nn.Conv2d(8, 4, 2, padding="same", bias=False)
        self.t1 = fastconv.nn.Conv1d(4, 4, 3, padding="causal", dilation=2)

    def forward(self, x):
        y = torch.relu(self.c1(x))
        y = torch.relu(self.c2(y))
        y = self.c3(y)  # (N, 4, H', W')
        z = self.t1(y.flatten(2))  # as a sequence
        return z.sum(dim=-1) + y.mean(dim=(2, 3))


@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_compile_fullgraph_matches_eager(channels_last):
    torch._dynamo.reset()
    net = _SmallNet()
    x = torch.randn(2, 3, 9, 10)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    compiled = torch.compile(net, fullgraph=True)

    xe = x.clone().requires_grad_()
    ye = net(xe)
    ge = torch.autograd.grad(ye.square().sum(), [xe] + list(net.parameters()))
    xc = x.clone().requires_grad_()
    yc = compiled(xc)
    gc = torch.autograd.grad(yc.square().sum(), [xc] + list(net.parameters()))
    assert_close_scaled(yc, ye, what="compiled output")
    for a, b in zip(gc, ge):
        assert_close_scaled(a, b, what="compiled gradient")
