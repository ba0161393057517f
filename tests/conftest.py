"""Shared helpers for fastconv's tests (imported by the test files as `from conftest import ...`).

Tolerances are relative to the reference's magnitude: max|got - ref| <= tol * max(max|ref|, 1e-6).
float32 is generous enough for fast algorithms with a different summation order (GEMM, Winograd) but
an indexing bug gives errors of order 1; float64 is tight.
"""
import os
import random

import pytest
import torch

import fastconv  # noqa: F401  (registers torch.ops.fastconv)

TOL = {torch.float32: 1e-4, torch.float64: 1e-10}

# Where the fastconv this process imported lives (an in-place build or an installed one).
FASTCONV_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))


def subprocess_env(**extra):
    """This process's environment for a child interpreter that imports the same fastconv (its root first on
    PYTHONPATH), with `extra` variables set."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = FASTCONV_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
    return env


def assert_close_scaled(got, ref, dtype=None, what=""):
    """Shape, dtype and values of `got` match `ref` within TOL relative to max|ref|."""
    dtype = dtype or ref.dtype
    assert got.shape == ref.shape, f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != {ref.dtype}"
    if ref.numel() == 0:
        return
    scale = max(ref.abs().max().item(), 1e-6)
    err = (got.double() - ref.double()).abs().max().item()
    assert err <= TOL[dtype] * scale, f"{what}: max abs error {err:.3g} > {TOL[dtype]:.0e} * {scale:.3g}"


def randn(*shape, dtype=torch.float32, generator=None):
    """Random normal values (never zeros); shape may be a single tuple."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
        shape = tuple(shape[0])
    return torch.randn(*shape, dtype=dtype, generator=generator)


def as_layout(t, layout):
    """The same values as `t` in another memory layout:
    'contiguous', 'channels_last' (4-d only; 3-d tensors stay contiguous) or 'noncontig'
    (a strided slice of a bigger tensor for batched inputs, else a transpose-back view)."""
    if layout == "contiguous":
        return t.contiguous()
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t.contiguous()
    if layout == "noncontig":
        # Every second element of the last dimension of a twice-as-wide tensor: not dense at all.
        big = torch.empty(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
        big.normal_()
        big[..., ::2] = t
        view = big[..., ::2]
        if t.numel() > 1 and t.shape[-1] > 1:
            assert not view.is_contiguous()
        return view
    if layout == "transposed":
        view = t.transpose(0, -1).contiguous().transpose(0, -1)
        return view
    raise ValueError(layout)


def grads(out, inputs, grad_output):
    """torch.autograd.grad of `out` for the inputs that exist (None entries stay None)."""
    present = [t for t in inputs if t is not None]
    got = torch.autograd.grad(out, present, grad_output, allow_unused=False)
    it = iter(got)
    return [next(it) if t is not None else None for t in inputs]


# torch.compile backends of the compile tests: aot_eager (dynamo + AOT autograd with fastconv's fake kernels,
# the parts a fastconv op can break) in float32, and inductor in float64 (in float32 its fused kernels around
# fastconv's move gradients by ~1e-3, which would hide an error of that size). FASTCONV_SKIP_INDUCTOR=1 skips it.
COMPILE_BACKENDS = [("aot_eager", torch.float32), pytest.param("inductor", torch.float64, marks=pytest.mark.skipif(
    os.environ.get("FASTCONV_SKIP_INDUCTOR") == "1", reason="FASTCONV_SKIP_INDUCTOR=1"))]


def recording_backend(backend, graphs):
    """A dynamo backend that keeps the FX graphs it is given, then compiles them with `backend`."""
    def compile_fn(gm, example_inputs):
        graphs.append(gm)
        if backend == "aot_eager":
            from torch._dynamo.backends.debugging import aot_eager

            return aot_eager(gm, example_inputs)
        from torch._inductor.compile_fx import compile_fx

        return compile_fx(gm, example_inputs)
    return compile_fn


def graph_op_names(graphs):
    """The targets of the function calls in FX graphs, as strings ('fastconv.conv2d', ...)."""
    return {str(node.target) for gm in graphs for node in gm.graph.nodes if node.op == "call_function"}


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state (reproducible failures)."""
    torch.manual_seed(1234)
    random.seed(1234)
    yield


def pytest_collection_modifyitems(config, items):
    """FASTCONV_TEST_SHARD=i/n keeps every n-th collected test from the i-th on (0 <= i < n). CI runs the conv and
    pooling tests once per kernel library below the machine's best, and those libraries (avx2, default) build the
    same portable kernel source for different -march: each takes one shard, so every test runs once on portable
    code in half the time."""
    # popped: the pytest runs some tests start in child processes select their own tests, all of which must run
    shard = os.environ.pop("FASTCONV_TEST_SHARD", None)
    if not shard:
        return
    i, n = (int(v) for v in shard.split("/"))
    if not 0 <= i < n:
        raise pytest.UsageError(f"FASTCONV_TEST_SHARD={shard!r}: want i/n with 0 <= i < n")
    keep = items[i::n]
    kept = {id(item) for item in keep}
    config.hook.pytest_deselected(items=[item for item in items if id(item) not in kept])
    items[:] = keep
