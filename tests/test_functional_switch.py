"""The functional switch (fastconv.enabled / enable / disable): torch.nn.functional convolution and pooling
calls inside a forward run on fastconv's kernels, with torch's values and gradients, under autograd,
torch.compile(fullgraph=True) and torch.export; what fastconv has no kernels for runs on torch and is
reported; calls torch rejects still raise torch's error."""
import threading

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import fastconv
from fastconv._switch_routes import ROUTES
from fastconv.errors import FastconvValueError
from conftest import COMPILE_BACKENDS, assert_close_scaled, graph_op_names, randn, recording_backend


class InceptionLike(torch.nn.Module):
    """Pooling written as F calls in forward, as in torchvision's inception_v3 (F.avg_pool2d 3x3/1 pad 1,
    F.max_pool2d 3x3/2) and the global pooling of densenet121 (F.adaptive_avg_pool2d after F.relu); a torch
    Conv2d module (its forward calls F.conv2d) and a grouped F.conv2d on parameters."""

    def __init__(self, dtype=torch.float32):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, padding=1, dtype=dtype)
        self.w = torch.nn.Parameter(randn(8, 4, 3, 3, dtype=dtype) * 0.2)
        self.b = torch.nn.Parameter(randn(8, dtype=dtype))

    def forward(self, x):
        y = F.relu(self.stem(x))
        y = F.max_pool2d(y, kernel_size=3, stride=2, ceil_mode=True)
        y = F.avg_pool2d(y, kernel_size=3, stride=1, padding=1, count_include_pad=False)
        y = F.conv2d(y, self.w, self.b, padding=1, groups=2)
        return F.adaptive_avg_pool2d(F.relu(y), (1, 1)).flatten(1)


EXPECTED = {"F.conv2d": 2, "F.max_pool2d": 1, "F.avg_pool2d": 1, "F.adaptive_avg_pool2d": 1}


def _counts(report, where="fastconv"):
    return {f: n for (f, w, _), n in report.counts.items() if w == where}


def _loss_and_grads(model, x):
    x = x.detach().requires_grad_()
    out = model(x)
    params = list(model.parameters())
    grads = torch.autograd.grad(out.square().sum(), [x] + params)
    return out.detach(), grads


class OpLog(TorchDispatchMode):
    """The ops that ran (names), to see which kernels computed a result."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func._schema.name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradients_match_torch(dtype):
    model = InceptionLike(dtype)
    x = randn(2, 3, 17, 15, dtype=dtype)
    want, want_grads = _loss_and_grads(model, x)
    with fastconv.enabled() as report, OpLog() as log:
        got, got_grads = _loss_and_grads(model, x)
    assert _counts(report) == EXPECTED and report.calls(where="torch") == 0
    assert {"fastconv::conv2d", "fastconv::avg_pool2d", "fastconv::conv2d_backward_weight"} <= log.ops
    assert not {"aten::convolution", "aten::avg_pool2d", "aten::max_pool2d_with_indices"} & log.ops
    assert_close_scaled(got, want, what="output")
    for g, w, name in zip(got_grads, want_grads, ["x", "stem.weight", "stem.bias", "w", "b"]):
        assert_close_scaled(g, w, what=f"grad of {name}")


def test_every_route_matches_torch():
    """Each routed function, called as user code calls it (F.max_pool2d with return_indices goes to the mode as
    F.max_pool2d_with_indices, torch.max_pool2d is reached directly), gives torch's result on fastconv."""
    x2, x1 = randn(2, 4, 9, 8), randn(2, 4, 11)
    w2, w1 = randn(6, 2, 3, 3), randn(6, 4, 3)
    wt2, wt1 = randn(4, 3, 3, 3), randn(4, 3, 3)
    pooled, idx = F.max_pool2d(x2, 2, return_indices=True)
    calls = [
        ("F.conv1d", lambda: F.conv1d(x1, w1, padding="same")),
        ("F.conv2d", lambda: F.conv2d(x2, w2, stride=2, groups=2)),
        ("F.conv_transpose1d", lambda: F.conv_transpose1d(x1, wt1, stride=2)),
        ("F.conv_transpose2d", lambda: F.conv_transpose2d(x2, wt2, output_padding=1, stride=2)),
        ("F.max_pool1d", lambda: F.max_pool1d(x1, 3, 2, 1)),
        ("F.max_pool1d", lambda: F.max_pool1d(x1, 3, return_indices=True)),
        ("F.max_pool2d", lambda: F.max_pool2d(x2, 3, 2, 1, 1, True)),
        ("F.max_pool2d", lambda: F.max_pool2d(x2, 2, None, 0, 1, False, True)),
        ("F.avg_pool1d", lambda: F.avg_pool1d(x1, 3, 2, 1, True, False)),
        ("F.avg_pool2d", lambda: F.avg_pool2d(x2, 3, divisor_override=4)),
        ("F.lp_pool1d", lambda: F.lp_pool1d(x1, 2, 3)),
        ("F.lp_pool2d", lambda: F.lp_pool2d(x2.abs(), 3, 2)),
        ("F.adaptive_avg_pool1d", lambda: F.adaptive_avg_pool1d(x1, 4)),
        ("F.adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(x2, (3, None))),
        ("F.adaptive_max_pool1d", lambda: F.adaptive_max_pool1d(x1, 4, True)),
        ("F.adaptive_max_pool2d", lambda: F.adaptive_max_pool2d(x2, 3)),
        ("F.adaptive_max_pool2d", lambda: F.adaptive_max_pool2d(x2, 3, return_indices=True)),
        ("F.max_unpool1d", lambda: F.max_unpool1d(*F.max_pool1d(x1, 2, return_indices=True), 2)),
        ("F.max_unpool2d", lambda: F.max_unpool2d(pooled, idx, 2, output_size=(9, 8))),
        ("torch.max_pool2d", lambda: torch.max_pool2d(x2, 2)),
        ("torch.max_pool1d", lambda: torch.max_pool1d(x1, 2)),
        ("torch.max_pool1d_with_indices", lambda: torch.max_pool1d_with_indices(x1, 2)),
        ("torch.adaptive_max_pool1d", lambda: torch.adaptive_max_pool1d(x1, 3)),
    ]
    for name, call in calls:
        want = call()
        with fastconv.enabled() as report:
            got = call()
        assert _counts(report).get(name, 0) >= 1 and report.calls(where="torch") == 0, (name, str(report))
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            if w.dtype == torch.int64:
                assert torch.equal(g, w), name
            else:
                assert_close_scaled(g, w, what=name)


def test_what_fastconv_cannot_run_stays_on_torch_and_is_reported():
    x3, w3 = randn(1, 2, 5, 6, 7), randn(3, 2, 2, 2, 2)
    x2, ints = randn(2, 3, 8, 8), torch.randint(-5, 5, (2, 3, 8, 8))

    class Plain(torch.Tensor):  # a subclass that overrides nothing: its __torch_function__ is torch.Tensor's
        pass

    calls = {
        "F.conv3d": lambda: F.conv3d(x3, w3),
        "F.avg_pool3d": lambda: F.avg_pool3d(x3, 2),
        "F.max_pool3d": lambda: F.max_pool3d(x3, 2, return_indices=True),
        "F.adaptive_avg_pool3d": lambda: F.adaptive_avg_pool3d(x3, 1),
        "F.fractional_max_pool2d": lambda: F.fractional_max_pool2d(x2, 2, output_size=3,
                                                                   _random_samples=torch.rand(2, 3, 2)),
        "bfloat16": lambda: F.avg_pool2d(x2.bfloat16(), 2),
        "int64": lambda: F.max_pool2d(ints, 2),
        "subclass": lambda: F.avg_pool2d(x2.as_subclass(Plain), 2),
    }
    for what, call in calls.items():
        want = call()
        with fastconv.enabled() as report:
            got = call()
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert torch.equal(g, w), what
        assert report.calls(where="fastconv") == 0 and report.calls(where="torch") == 1, (what, str(report))
    with fastconv.enabled() as report:
        for what in ("F.conv3d", "bfloat16", "int64", "subclass"):
            calls[what]()
    reasons = {f"{f}: {r}" for (f, _, r) in report.counts}
    assert reasons == {"F.conv3d: no fastconv kernel",
                       "F.avg_pool2d: input has dtype torch.bfloat16, for which fastconv has no cpu kernels",
                       "F.max_pool2d: input has dtype torch.int64, for which fastconv has no cpu kernels",
                       "F.avg_pool2d: tensor subclass Plain"}
    assert "F.conv3d -> torch (no fastconv kernel): 1 call" in str(report)


def _error(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


def test_calls_torch_rejects_raise_torch_error():
    """A call torch rejects raises what torch raises without the switch (type and message): fastconv's
    checks reject it first, and the switch hands the call to torch."""
    x, w = randn(2, 4, 8, 8), randn(6, 4, 3, 3)
    bad = [
        lambda: F.avg_pool2d(x, -1),
        lambda: F.max_pool2d(x, 2, padding=3),
        lambda: F.max_pool2d(x, 2, ceil_mode="yes"),
        lambda: F.conv2d(x, w[:, :3]),
        lambda: F.conv2d(x, w.double()),
        lambda: F.conv2d(x, w, stride=(1.5, 1)),
        lambda: F.adaptive_avg_pool2d(x, (1, 2, 3)),
        lambda: F.max_unpool2d(x, torch.zeros(2, 4, 8, 8, dtype=torch.int64) + 1000, 2),
        lambda: F.avg_pool2d(x, 2, bogus=1),
    ]
    for call in bad:
        want = _error(call)
        with fastconv.enabled() as report:
            assert _error(call) == want
        assert report.counts == {}  # a call that raised ran nowhere


def test_refused_call_runs_on_torch(monkeypatch):
    """If fastconv's checks refuse a call torch takes, torch's result comes back and the report says why."""
    def refuses(*args, **kwargs):
        raise FastconvValueError("fastconv.avg_pool2d: not this one")

    monkeypatch.setitem(ROUTES, F.avg_pool2d, ("F.avg_pool2d", refuses))
    x = randn(2, 3, 8, 8)
    with fastconv.enabled() as report:
        got = F.avg_pool2d(x, 2)
    assert torch.equal(got, torch.nn.functional.avg_pool2d(x, 2))
    why = "fastconv refused the call: fastconv.avg_pool2d: not this one"
    assert report.counts == {("F.avg_pool2d", "torch", why): 1}


def test_enabled_is_reentrant_and_per_thread():
    x = randn(1, 2, 4, 4)
    assert not fastconv.is_enabled()
    seen = []
    with fastconv.enabled() as outer:
        F.avg_pool2d(x, 2)
        with fastconv.enabled() as inner:
            F.avg_pool2d(x, 2)
            thread = threading.Thread(target=lambda: seen.append((fastconv.is_enabled(), F.avg_pool2d(x, 2))))
            thread.start()
            thread.join()
        assert fastconv.is_enabled()
        F.avg_pool2d(x, 2)
    assert not fastconv.is_enabled()
    F.avg_pool2d(x, 2)
    assert outer.calls() == 3 and inner.calls() == 1
    assert seen[0][0] is False


def test_enabled_as_decorator():
    @fastconv.enabled()
    def pool(x):
        assert fastconv.is_enabled()
        return F.adaptive_avg_pool2d(x, 1)

    before = fastconv.functional_report().calls("F.adaptive_avg_pool2d", "fastconv")
    pool(randn(1, 2, 4, 4))
    assert not fastconv.is_enabled()
    assert fastconv.functional_report().calls("F.adaptive_avg_pool2d", "fastconv") == before + 1


def test_enable_disable_and_global_report():
    x = randn(1, 2, 4, 4)
    report = fastconv.functional_report()
    report.clear()
    try:
        fastconv.enable()
        fastconv.enable()  # idempotent
        assert fastconv.is_enabled()
        F.max_pool2d(x, 2)
        with fastconv.enabled() as inner:  # inside the global setting: counted in both
            F.max_pool2d(x, 2)
            fastconv.disable()  # the open block keeps the switch on until it ends
            assert fastconv.is_enabled()
        assert not fastconv.is_enabled()
    finally:
        fastconv.disable()
    F.max_pool2d(x, 2)
    assert inner.calls() == 1
    assert report.counts == {("F.max_pool2d", "fastconv", ""): 2}
    assert str(report) == ("fastconv functional switch: 2 call(s) on fastconv, 0 on torch\n"
                           "  F.max_pool2d -> fastconv: 2 calls")
    report.clear()
    assert report.calls() == 0


def test_disable_refuses_to_pop_another_mode():
    class Other(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    fastconv.enable()
    other = Other().__enter__()
    try:
        with pytest.raises(RuntimeError, match="leave it before turning the switch off"):
            fastconv.disable()
    finally:
        other.__exit__(None, None, None)
        fastconv.disable()
    assert not fastconv.is_enabled()


def test_with_converted_model():
    """convert() swaps the modules; the switch takes the F calls left in forward; nothing is routed twice."""
    model = InceptionLike()
    x = randn(2, 3, 12, 12)
    want = model(x)
    model, _ = fastconv.convert(model, strict=True)
    with fastconv.enabled() as report:
        got = model(x)
    assert _counts(report) == {"F.conv2d": 1, "F.max_pool2d": 1, "F.avg_pool2d": 1, "F.adaptive_avg_pool2d": 1}
    assert_close_scaled(got, want)


@pytest.mark.parametrize("backend,dtype", COMPILE_BACKENDS)
def test_torch_compile_fullgraph(backend, dtype):
    torch._dynamo.reset()
    model = InceptionLike(dtype)
    x = randn(2, 3, 17, 15, dtype=dtype)
    want, want_grads = _loss_and_grads(model, x)
    graphs = []
    compiled = torch.compile(model, fullgraph=True, backend=recording_backend(backend, graphs))
    with fastconv.enabled() as report:
        for _ in range(3):  # no recompilation: the counts are not guards
            got, got_grads = _loss_and_grads(compiled, x)
    assert len(graphs) == 1
    targets = graph_op_names(graphs)
    assert {"fastconv.conv2d", "fastconv.avg_pool2d.default", "fastconv.adaptive_avg_pool2d"} <= targets, targets
    assert not any("conv2d" in t and "fastconv" not in t for t in targets), targets
    assert _counts(report) == EXPECTED  # counted when traced, once
    assert_close_scaled(got, want, what="output")
    for g, w in zip(got_grads, want_grads):
        assert_close_scaled(g, w, what="gradient")
    # outside the switch the guards on the mode stack fail: recompiled on torch's functions
    got = compiled(x)
    assert len(graphs) == 2 and "fastconv.conv2d" not in graph_op_names(graphs[1:])
    assert_close_scaled(got.detach(), want)


def test_enabled_inside_a_compiled_function():
    """Turning the switch on inside the compiled code is a graph break (fullgraph=True refuses it); without
    fullgraph the result is right."""
    torch._dynamo.reset()

    def f(x):
        with fastconv.enabled():
            return F.avg_pool2d(x * 2, 2)

    x = randn(2, 3, 8, 8)
    torch.testing.assert_close(torch.compile(f, backend="aot_eager")(x), F.avg_pool2d(x * 2, 2))
    assert not fastconv.is_enabled()


@pytest.mark.parametrize("strict", [False, True])
def test_torch_export(strict):
    model = InceptionLike()
    x = randn(2, 3, 17, 15)
    with fastconv.enabled() as report:
        ep = torch.export.export(model, (x,), strict=strict)
    targets = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {"fastconv.conv2d.default", "fastconv.max_pool2d_with_indices.default", "fastconv.avg_pool2d.default",
            "fastconv.adaptive_avg_pool2d.default"} <= targets, targets
    assert not any(t.startswith("aten.") and "pool" in t or "convolution" in t for t in targets), targets
    assert set(_counts(report)) == set(EXPECTED)
    y = randn(2, 3, 17, 15)
    assert_close_scaled(ep.module()(y), model(y))  # the exported program runs fastconv's ops without the switch
