"""Regression tests for the crashes, hangs and wrong answers of issue 13 (found by differential fuzzing
against torch): each case once failed, and each is compared with torch (values and gradients) or checked
to raise what torch raises. The OpenMP team-size cases live in test_omp_restricted.py, the argument-type
and exception-class cases in test_arg_strictness.py / test_exception_types.py, the fuzz suite in
test_fuzz.py."""
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn.functional as F
from conftest import as_layout, assert_close_scaled


def _compare(fn, *inputs, what="", max_seconds=None):
    """fn(F, *xs) against fn(TF, *xs): output and the gradients of every input (sum of outputs * a random
    weight). Returns fastconv's seconds for forward + backward."""
    ours = [t.detach().clone().requires_grad_() for t in inputs]
    ref = [t.detach().clone().requires_grad_() for t in inputs]
    start = time.perf_counter()
    y = fn(F, *ours)
    gy = torch.randn_like(y)
    got = torch.autograd.grad(y, ours, gy) if y.numel() else [torch.zeros_like(t) for t in ours]
    seconds = time.perf_counter() - start
    r = fn(TF, *ref)
    want = torch.autograd.grad(r, ref, gy) if r.numel() else [torch.zeros_like(t) for t in ref]
    assert_close_scaled(y, r, what=f"{what} output")
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close_scaled(g, w, what=f"{what} gradient of input {i}")
    if max_seconds is not None:
        assert seconds < max_seconds, f"{what}: {seconds:.2f} s (torch takes milliseconds)"
    return seconds


# ---- 2. the layout switch recursed forever for depthwise layers with >= 2 MiB of weight per group ----

@pytest.mark.parametrize("channels_last", [False, True])
def test_depthwise_huge_kernel_conv1d(channels_last):
    x, w = torch.randn(1, 2, 524293), torch.randn(2, 1, 524288)
    _compare(lambda M, x, w: M.conv1d(x, w, groups=2), x, w, what="conv1d 2x524288 kernel")


@pytest.mark.parametrize("channels_last", [False, True])
def test_depthwise_huge_kernel_conv2d_float64(channels_last):
    x, w = torch.randn(1, 2, 512, 512, dtype=torch.float64), torch.randn(2, 1, 512, 512, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    _compare(lambda M, x, w: M.conv2d(x, w, groups=2), x, w, what="conv2d 512x512 depthwise")


def test_depthwise_huge_kernel_conv_transpose2d():
    # Also the case whose input-gradient gather visited every tap of every input pixel (87 s): the general
    # GEMM path takes it now (conv_dispatch.cpp, depthwise_gather_wasteful).
    x, w = torch.randn(1, 2, 1, 1, dtype=torch.float64), torch.randn(2, 1, 2, 131072, dtype=torch.float64)
    _compare(lambda M, x, w: M.conv_transpose2d(x, w, groups=2), x, w, what="conv_transpose2d 2x131072",
             max_seconds=10)


def test_grouped_large_weight_channels_last():
    # A grouped (not depthwise) layer with >= 2 MiB per group still takes the layout switch, once.
    x = torch.randn(1, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    w = torch.randn(512, 2, 16, 16) * 0.1
    _compare(lambda M, x, w: M.conv2d(x, w, padding=5, groups=2), x, w, what="grouped 2 MiB per group")


# ---- 3. pooling time grew with the kernel size even where the taps are padding ----

@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pool_huge_kernel_is_fast(layout, dtype):
    x = torch.randn(1, 3, 3, 3, dtype=dtype)
    x = as_layout(x, layout)
    _compare(lambda M, x: M.max_pool2d(x, 2**23, 1, 2**22), x, what="max_pool2d k=2^23", max_seconds=2)
    _compare(lambda M, x: M.max_pool2d(x, 2**31 - 1, ceil_mode=True), torch.randn(1, 4, 2, 3, dtype=dtype),
             what="max_pool2d k=2^31-1 ceil", max_seconds=2)
    # kernel == stride: the window-side NHWC backward (its tap owners once cost H * kernel)
    _compare(lambda M, x: M.max_pool2d(x, 2**30, ceil_mode=True), x, what="max_pool2d k=s=2^30", max_seconds=2)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_avg_pool_huge_kernel_is_fast(layout, dtype):
    x = torch.randn(1, 2, 5, 7, dtype=dtype)
    x = as_layout(x, layout)
    for include in (True, False):
        _compare(lambda M, x: M.avg_pool2d(x, 2**23, 3, 2**22, count_include_pad=include), x,
                 what=f"avg_pool2d k=2^23 stride 3 count_include_pad={include}", max_seconds=2)
    _compare(lambda M, x: M.max_pool1d(x, 2**22, 1, 2**21), torch.randn(2, 3, 5, dtype=dtype),
             what="max_pool1d k=2^22", max_seconds=2)
    _compare(lambda M, x: M.avg_pool1d(x, 2**22, 2, 2**21), torch.randn(2, 3, 5, dtype=dtype),
             what="avg_pool1d k=2^22", max_seconds=2)


# ---- 4. the average-pool divisor overflowed: windows of 2^31 or more are rejected, as torch does ----

@pytest.mark.parametrize("args", [(2**32, 1, 2**31), (13, 1, 2**62 + 1), (2**31, 2**31, 0), (1, 2**31, 0)])
def test_avg_pool_rejects_what_torch_rejects(args):
    x = torch.ones(1, 1, 1, 1)
    with pytest.raises(RuntimeError):
        TF.avg_pool2d(x, *args)
    with pytest.raises(RuntimeError, match="fastconv.avg_pool2d"):
        F.avg_pool2d(x, *args)


def test_avg_pool_largest_window_torch_takes():
    x = torch.randn(1, 1, 3, 2, dtype=torch.float64)
    _compare(lambda M, x: M.avg_pool2d(x, 2**31 - 1, 1, 2**30 - 1), x, what="k=2^31-1")
    _compare(lambda M, x: M.avg_pool2d(x, 3, 1, 1, divisor_override=2**40), x, what="divisor 2^40")


# ---- 5. denormals: comparisons see the real values; arithmetic follows torch.set_flush_denormal ----

@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_max_pool_sees_denormals(layout):
    x = torch.tensor([[[[-1e-40, 0.0], [0.0, -1e-40]]]]).repeat(2, 16, 1, 1)
    x = as_layout(x, layout)
    for kernel in ((1, 2), (2, 1)):
        y, i = F.max_pool2d(x, kernel, return_indices=True)
        r, j = TF.max_pool2d(x, kernel, return_indices=True)
        assert torch.equal(y, r) and torch.equal(i, j), kernel
        assert (y == 0).all()
    _compare(lambda M, x: M.max_pool2d(x, (1, 2)), x, what="max_pool2d denormal")
    y, i = F.adaptive_max_pool2d(x, (2, 1), return_indices=True)
    r, j = TF.adaptive_max_pool2d(x, (2, 1), return_indices=True)
    assert torch.equal(y, r) and torch.equal(i, j)
    _compare(lambda M, x: M.adaptive_max_pool2d(x, 1), x, what="adaptive_max_pool2d denormal")


def test_conv_keeps_denormals_like_torch_and_follows_flush_setting():
    x, w = torch.full((1, 1, 3, 3), 1e-40), torch.ones(1, 1, 3, 3)
    assert F.conv2d(x, w).item() == TF.conv2d(x, w).item() > 0  # 9e-40, not flushed
    y = F.avg_pool2d(torch.full((1, 1, 2, 2), 1e-40), 2)
    assert y.item() == TF.avg_pool2d(torch.full((1, 1, 2, 2), 1e-40), 2).item() > 0
    assert torch.set_flush_denormal(True)  # x86 has FTZ/DAZ
    try:
        assert F.conv2d(x, w).item() == 0.0
    finally:
        torch.set_flush_denormal(False)
    assert F.conv2d(x, w).item() > 0


def test_conv_denormals_on_threads():
    # Every OpenMP thread takes the caller's setting, not only the calling thread.
    import fastconv
    old = fastconv._C.set_min_parallel_work(0)
    try:
        x, w = torch.full((4, 8, 16, 16), 1e-40), torch.ones(8, 8, 3, 3)
        y, r = F.conv2d(x, w, padding=1), TF.conv2d(x, w, padding=1)
        assert (y > 0).all() and torch.equal(y, r)
    finally:
        fastconv._C.set_min_parallel_work(old)


# ---- 6. adaptive 1-d pooling allocated per-input tables (4-6x the input) ----

def test_adaptive_pool_1d_has_no_hidden_copies():
    code = textwrap.dedent("""
        import resource, sys, torch
        import fastconv.nn.functional as F
        x = torch.randn(1, 1, 2**24)  # 64 MiB
        op = getattr(F, sys.argv[1])
        op(x, 7)  # warm-up: one-time allocations of the library
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for size in (7, 1000):
            op(x, size)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    for op in ("adaptive_avg_pool1d", "adaptive_max_pool1d"):
        out = subprocess.run([sys.executable, "-c", code, op], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        extra_mib = int(out.stdout.split()[-1])
        assert extra_mib < 8, f"{op}: {extra_mib} MiB above the 64 MiB input"


@pytest.mark.parametrize("op", ["adaptive_avg_pool1d", "adaptive_max_pool1d"])
def test_adaptive_pool_1d_long_input_matches(op):
    x = torch.randn(2, 3, 100003, dtype=torch.float64)
    for size in (1, 7, 50001, 100003):
        _compare(lambda M, x: getattr(M, op)(x, size), x, what=f"{op} {size}")


# ---- 7. the raw ops validate their own arguments ----

def test_raw_pool_ops_validate_windows():
    x = torch.randn(1, 1, 4, 4)
    ops = torch.ops.fastconv
    with pytest.raises(ValueError, match="kernel_size must be smaller than 2\\^31"):
        ops.max_pool2d_with_indices(x, [2**62 + 1, 1], [1, 1], [0, 0], [4, 1], False)
    with pytest.raises(ValueError, match="smaller than 2\\^31"):
        ops.max_pool2d_with_indices(x, [2**62 + 1, 2**62 + 1], [1, 1], [0, 0], [4, 4], False)
    with pytest.raises(ValueError, match="stride must be smaller than 2\\^31"):
        ops.avg_pool2d(x, [1, 1], [2**31, 1], [0, 0], False, True, None)
    y, i = ops.max_pool2d_with_indices(x, [2, 2], [2, 2], [0, 0], [1, 1], False)
    with pytest.raises(ValueError, match="dilation must be smaller than 2\\^31"):
        ops.max_pool2d_backward_window(y, i, [4, 4], [2, 2], [2, 2], [0, 0], [2**40, 1])
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        ops.max_pool2d_backward_window(y, i, [4, 4], [0, 2], [2, 2], [0, 0], [1, 1])


def test_raw_conv_ops_validate_arguments():
    ops = torch.ops.fastconv
    x, w = torch.randn(1, 2, 4, 4), torch.randn(2, 2, 3, 3)
    with pytest.raises(ValueError, match="dilation must be smaller than 2\\^62"):
        ops.conv2d(x, w, None, [1, 1], [0, 0, 0, 0], [2**62, 1], 1, "zeros")
    with pytest.raises(ValueError, match="kernel size \\(dilated\\)"):
        ops.conv2d(x, w, None, [1, 1], [0, 0, 0, 0], [2**61, 1], 1, "zeros")
    with pytest.raises(ValueError, match="padded input"):
        ops.conv2d(x, w, None, [1, 1], [2**61, 2**61, 0, 0], [1, 1], 1, "zeros")
    with pytest.raises(ValueError, match="stride must be smaller than 2\\^31"):
        ops.conv_transpose2d(x, w, None, [2**31, 1], [0, 0], [0, 0], 1, [1, 1])


# ---- 9. calls torch answers that fastconv used to reject ----

@pytest.mark.parametrize("kwargs", [dict(stride=2**31), dict(stride=2**40, padding=2**20), dict(dilation=2**40),
                                    dict(stride=(2**32, 1), padding=(2**31, 0))])
def test_conv_huge_stride_padding_dilation(kwargs):
    x, w, b = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(4, 3, 1, 1, dtype=torch.float64), \
        torch.randn(4, dtype=torch.float64)
    _compare(lambda M, x, w, b: M.conv2d(x, w, b, **kwargs), x, w, b, what=str(kwargs))
    w3 = torch.randn(4, 3, 3, dtype=torch.float64)
    _compare(lambda M, x, w: M.conv1d(x, w, stride=2**40, padding=1), torch.randn(2, 3, 7, dtype=torch.float64), w3,
             what="conv1d stride 2^40")


def test_conv_huge_dilation_that_cannot_fit_raises_like_torch():
    x, w = torch.randn(1, 2, 3, 3), torch.randn(2, 2, 3, 3)
    with pytest.raises(RuntimeError):
        TF.conv2d(x, w, dilation=(1, 2**40))
    with pytest.raises(RuntimeError, match="kernel size"):
        F.conv2d(x, w, dilation=(1, 2**40))


@pytest.mark.parametrize("op", ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
                                "adaptive_max_pool2d"])
def test_adaptive_pool_empty_results_match_torch(op):
    spatial = 1 if op.endswith("1d") else 2
    sp = (5,) * spatial
    cases = [((2, 3) + sp, 0), ((2, 3) + sp, (0,) * spatial), ((3,) + sp, 0), ((0, 3) + sp, 2), ((0, 3) + sp, 0),
             ((1, 0) + sp, 2), ((1, 0) + sp, 0), ((0,) + sp, 2)]
    if spatial == 2:
        cases += [((2, 3) + sp, (0, 2)), ((2, 3) + sp, (3, 0))]
    for shape, size in cases:
        x = torch.randn(shape, dtype=torch.float64)
        try:
            ref = getattr(TF, op)(x, size)
        except RuntimeError:
            with pytest.raises(RuntimeError):
                getattr(F, op)(x, size)
            continue
        _compare(lambda M, x: getattr(M, op)(x, size), x, what=f"{op} {shape} -> {size}")
        assert getattr(F, op)(x, size).shape == ref.shape
    for shape in [(2, 3) + (0,) * spatial, (2, 3, 0) + (4,) * (spatial - 1)]:
        with pytest.raises(RuntimeError):
            getattr(TF, op)(torch.randn(shape), 2)
        with pytest.raises(RuntimeError, match="non-zero size"):
            getattr(F, op)(torch.randn(shape), 2)
    with pytest.raises(RuntimeError, match="non-negative"):
        getattr(F, op)(torch.randn((2, 3) + sp), -1)
