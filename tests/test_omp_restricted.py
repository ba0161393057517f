"""Every op when OpenMP grants fewer threads than were requested (issue 13, item 1).

`#pragma omp parallel num_threads(n)` may start a smaller team than n: OMP_THREAD_LIMIT, OMP_DYNAMIC on a
loaded machine, nested parallelism. The kernels must split their work by the team they actually get
(omp_get_num_threads() inside the region); ones that split by the requested count crashed (a null
per-thread buffer), hung or silently left part of the result unwritten.

The restrictions are read by the OpenMP runtime at start-up, so each scenario runs in a child process
(this file run as a script): OMP_THREAD_LIMIT=1 and OMP_THREAD_LIMIT=2 under torch.set_num_threads(4), and
OMP_DYNAMIC=true under torch.set_num_threads(8) (more threads than cores: the runtime shrinks the teams).
The child runs the issue's reproducer (8x64x28x28 3x3 convolution, dense and depthwise) at the default
serial threshold, then with fastconv._C.set_min_parallel_work(0), so small shapes take the threaded paths,
every op family forward and backward (input, weight and bias gradients) in float32 and float64, NCHW and
channels_last, compared with torch.nn.functional run in float64 (torch's float32 oneDNN depthwise weight
gradient is itself wrong under OMP_THREAD_LIMIT, torch 2.13). A crash, a hang (timeout) or a mismatch fails
the test.
"""
import os
import subprocess
import sys

import pytest

# A child that has not exited by then hangs (the whole run takes seconds).
CHILD_TIMEOUT_S = 180

SCENARIOS = {
    "thread_limit_1": ({"OMP_THREAD_LIMIT": "1"}, 4),
    "thread_limit_2": ({"OMP_THREAD_LIMIT": "2"}, 4),
    "dynamic": ({"OMP_DYNAMIC": "true"}, 8),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_ops_match_torch_with_restricted_openmp_teams(scenario):
    import fastconv

    # The child imports the same fastconv as this process (an in-place build or an installed one).
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastconv.__file__)))
    extra_env, _ = SCENARIOS[scenario]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env)
    try:
        res = subprocess.run([sys.executable, os.path.abspath(__file__), scenario], capture_output=True, text=True,
                             env=env, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:  # (its captured output is bytes whatever text= says)
        out = b"".join(o for o in (e.stdout, e.stderr) if o).decode(errors="replace")
        pytest.fail(f"{scenario}: child hung (no exit within {CHILD_TIMEOUT_S} s); output so far:\n{out[-6000:]}")
    assert res.returncode == 0, (f"{scenario}: child exited with {res.returncode} (negative: killed by that signal)\n"
                                 f"--- stdout\n{res.stdout[-6000:]}\n--- stderr\n{res.stderr[-6000:]}")
    assert "all ops match" in res.stdout, res.stdout


# ---------------------------------------------------------------------------------------------------------
# Child process
# ---------------------------------------------------------------------------------------------------------

def _child(scenario):  # noqa: C901  (one flat list of cases reads best)
    import time

    import torch
    import torch.nn.functional as TF

    import fastconv.nn as fnn
    import fastconv.nn.functional as FF
    from fastconv import _C

    t_start = time.time()
    torch.set_num_threads(SCENARIOS[scenario][1])
    torch.manual_seed(0)
    tol = {torch.float32: 1e-4, torch.float64: 1e-10}
    failures = []
    count = [0]

    def close(got, ref, dtype, what):
        if got.dtype != dtype:
            failures.append(f"{what}: dtype {got.dtype} != {dtype}")
            return
        if got.shape != ref.shape:
            failures.append(f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}")
            return
        if ref.numel() == 0:
            return
        scale = max(ref.abs().max().item(), 1e-6)
        err = (got.double() - ref.double()).abs().max().item()
        if not err <= tol[dtype] * scale:  # (NaN fails too)
            failures.append(f"{what}: max abs error {err:.3g} > {tol[dtype]:.0e} * {scale:.3g}")

    def compare(what, fast, ref, *inputs):
        """fast(*inputs) vs ref(*inputs): every output (indices exactly) and the gradient of every
        floating-point input for one random grad_output. The reference runs in float64 (see the top of
        the file)."""
        count[0] += 1
        try:
            dtype = inputs[0].dtype
            fi = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
            ri = [t.detach().double().requires_grad_() if t.is_floating_point() else t for t in inputs]
            fo, ro = fast(*fi), ref(*ri)
            fo, ro = (fo if isinstance(fo, tuple) else (fo,)), (ro if isinstance(ro, tuple) else (ro,))
            gys = [torch.randn_like(o) if o.is_floating_point() else None for o in ro]
            for i, (a, b) in enumerate(zip(fo, ro)):
                if b.is_floating_point():
                    close(a, b, dtype, f"{what} output {i}")
                elif not torch.equal(a, b):
                    failures.append(f"{what}: output {i} (indices) differs")
            diff = [j for j, t in enumerate(inputs) if t.is_floating_point()]
            grads = []
            for ins, outs in ((fi, fo), (ri, ro)):
                loss = sum((o * g.to(o.dtype)).sum() for o, g in zip(outs, gys) if g is not None)
                grads.append(torch.autograd.grad(loss, [ins[j] for j in diff]))
            for j, a, b in zip(diff, *grads):
                close(a, b, dtype, f"{what} grad of input {j}")
        except Exception as e:  # an error is a failure of this case, not of the whole run
            failures.append(f"{what}: {type(e).__name__}: {e}")

    def layouts(t):
        yield "nchw", t.contiguous()
        if t.dim() == 4:
            yield "cl", t.contiguous(memory_format=torch.channels_last)

    def conv2d_cases(dtype, cases):
        for name, (n, c, h, w, k, r, s), kw in cases:
            groups = kw.get("groups", 1)
            wt = torch.randn(k, c // groups, r, s, dtype=dtype)
            b = torch.randn(k, dtype=dtype)
            for lay, x in layouts(torch.randn(n, c, h, w, dtype=dtype)):
                compare(f"conv2d {name} {lay} {dtype}", lambda *a: FF.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw),
                        x, wt, b)

    # 1. The reproducer at the default serial threshold (these shapes are threaded anyway).
    big = [("repro_8x64x28x28_3x3", (8, 64, 28, 28, 64, 3, 3), dict(padding=1)),
           ("repro_depthwise", (8, 64, 28, 28, 64, 3, 3), dict(padding=1, groups=64))]
    conv2d_cases(torch.float32, big)
    x = torch.randn(8, 64, 28, 28)
    for lay, xl in layouts(x):
        compare(f"max_pool2d repro-size {lay}", lambda t: FF.max_pool2d(t, 3, 2, 1, return_indices=True),
                lambda t: TF.max_pool2d(t, 3, 2, 1, return_indices=True), xl)
        compare(f"adaptive_avg_pool2d repro-size {lay}", lambda t: FF.adaptive_avg_pool2d(t, 5),
                lambda t: TF.adaptive_avg_pool2d(t, 5), xl)

    # 2. Every op family on small shapes, every pass threaded.
    _C.set_min_parallel_work(0)
    conv2d = [
        ("plain", (2, 8, 10, 9, 12, 3, 3), dict(padding=1)),
        ("batch1", (1, 16, 12, 11, 24, 3, 3), dict(padding=1)),  # threaded GEMM, input-channel slices
        ("batch5", (5, 8, 9, 9, 8, 3, 3), dict(padding=1)),      # whole images per thread
        ("groups", (2, 8, 9, 10, 12, 3, 3), dict(padding=1, groups=2)),
        ("depthwise", (3, 16, 11, 10, 16, 3, 3), dict(padding=1, groups=16)),
        ("depthwise_mult2", (2, 8, 9, 9, 16, 3, 3), dict(padding=1, groups=8)),
        ("depthwise_strided", (2, 16, 12, 12, 16, 3, 3), dict(stride=2, padding=1, groups=16)),
        ("1x1", (2, 16, 8, 9, 24, 1, 1), {}),
        ("1x1_batch1", (1, 16, 8, 9, 24, 1, 1), {}),
        ("strided", (2, 8, 13, 12, 12, 3, 3), dict(stride=2, padding=1)),
        ("dilated", (2, 8, 13, 12, 12, 3, 3), dict(padding=2, dilation=2)),
        ("one_channel", (3, 1, 12, 20, 8, 3, 3), dict(padding=1)),  # direct small-channel kernels
        ("three_channels_5x5", (3, 3, 16, 17, 16, 5, 5), dict(padding=2)),
        ("whole_input", (2, 8, 5, 5, 12, 5, 5), {}),
        ("wide", (1, 128, 6, 6, 128, 3, 3), dict(padding=1)),  # large weight: long bands
    ]
    for dtype in (torch.float32, torch.float64):
        conv2d_cases(dtype, conv2d)
        # conv1d
        for name, (n, c, length, k, ks), kw in [
                ("plain", (2, 8, 20, 12, 3), dict(padding=1)),
                ("groups", (2, 8, 19, 12, 3), dict(padding=1, groups=4)),
                ("depthwise", (3, 8, 21, 8, 5), dict(padding=2, groups=8)),
                ("strided_dilated", (2, 6, 25, 10, 3), dict(stride=2, padding=2, dilation=2))]:
            wt = torch.randn(k, c // kw.get("groups", 1), ks, dtype=dtype)
            compare(f"conv1d {name} {dtype}", lambda *a: FF.conv1d(*a, **kw), lambda *a: TF.conv1d(*a, **kw),
                    torch.randn(n, c, length, dtype=dtype), wt, torch.randn(k, dtype=dtype))
        # padding modes (fastconv.nn.Conv2d applies them inside the kernel)
        for mode in ("reflect", "replicate", "circular"):
            for name, (c, k, groups) in [("plain", (8, 12, 1)), ("depthwise", (8, 8, 8))]:
                ref_m = torch.nn.Conv2d(c, k, 3, padding=1, groups=groups, padding_mode=mode, dtype=dtype)
                fast_m = fnn.Conv2d(c, k, 3, padding=1, groups=groups, padding_mode=mode, dtype=dtype)

                def call(m):
                    return lambda x, w, b: torch.func.functional_call(m, {"weight": w, "bias": b}, (x,))
                for lay, x in layouts(torch.randn(2, c, 9, 10, dtype=dtype)):
                    compare(f"Conv2d {mode} {name} {lay} {dtype}", call(fast_m), call(ref_m), x, ref_m.weight,
                            ref_m.bias)
        # transposed convolutions
        for name, (n, c, h, w, k, r), kw in [
                ("stride2", (2, 8, 7, 6, 6, 3), dict(stride=2, padding=1, output_padding=1)),
                ("groups", (2, 8, 6, 7, 12, 3), dict(stride=1, padding=1, groups=2)),
                ("batch1", (1, 16, 8, 8, 8, 4), dict(stride=2, padding=1))]:
            wt = torch.randn(c, k // kw.get("groups", 1), r, r, dtype=dtype)
            b = torch.randn(k, dtype=dtype)
            for lay, x in layouts(torch.randn(n, c, h, w, dtype=dtype)):
                compare(f"conv_transpose2d {name} {lay} {dtype}", lambda *a: FF.conv_transpose2d(*a, **kw),
                        lambda *a: TF.conv_transpose2d(*a, **kw), x, wt, b)
        kw = dict(stride=2, padding=1, output_padding=1)
        compare(f"conv_transpose1d {dtype}", lambda *a: FF.conv_transpose1d(*a, **kw),
                lambda *a: TF.conv_transpose1d(*a, **kw), torch.randn(2, 8, 11, dtype=dtype),
                torch.randn(8, 6, 3, dtype=dtype), torch.randn(6, dtype=dtype))
        # pooling, 2-d: odd sizes (uneven splits), and 40 channels (NHWC channel chunks)
        pools2d = [
            ("max_k3s2p1_idx", lambda L, t: L.max_pool2d(t, 3, 2, 1, return_indices=True)),
            ("max_k2s2_idx", lambda L, t: L.max_pool2d(t, 2, 2, return_indices=True)),
            ("max_dil2_ceil", lambda L, t: L.max_pool2d(t, 3, 1, 1, dilation=2, ceil_mode=True)),
            ("avg_k3s2p1", lambda L, t: L.avg_pool2d(t, 3, 2, 1)),
            ("avg_excl_ceil", lambda L, t: L.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
            ("lp2", lambda L, t: L.lp_pool2d(t.abs() + 0.1, 2, 3, 2)),
            ("adaptive_avg_5x3", lambda L, t: L.adaptive_avg_pool2d(t, (5, 3))),
            ("adaptive_avg_global", lambda L, t: L.adaptive_avg_pool2d(t, 1)),
            ("adaptive_max_5x3_idx", lambda L, t: L.adaptive_max_pool2d(t, (5, 3), return_indices=True)),
        ]
        for shape in ((3, 5, 11, 13), (2, 40, 9, 10)):
            for lay, x in layouts(torch.randn(*shape, dtype=dtype)):
                for name, pool in pools2d:
                    compare(f"{name} {shape} {lay} {dtype}", lambda t, p=pool: p(FF, t), lambda t, p=pool: p(TF, t), x)
                y, ind = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
                compare(f"max_unpool2d {shape} {lay} {dtype}",
                        lambda v, i: FF.max_unpool2d(v, i, 3, 2, 1, output_size=x.shape[-2:]),
                        lambda v, i: TF.max_unpool2d(v, i, 3, 2, 1, output_size=x.shape[-2:]), y, ind)
        # pooling, 1-d
        x = torch.randn(3, 5, 23, dtype=dtype)
        for name, pool in [
                ("max_pool1d_idx", lambda L, t: L.max_pool1d(t, 3, 2, 1, return_indices=True)),
                ("avg_pool1d", lambda L, t: L.avg_pool1d(t, 3, 2, 1)),
                ("lp_pool1d", lambda L, t: L.lp_pool1d(t.abs() + 0.1, 2, 3, 2)),
                ("adaptive_avg_pool1d", lambda L, t: L.adaptive_avg_pool1d(t, 5)),
                ("adaptive_max_pool1d_idx", lambda L, t: L.adaptive_max_pool1d(t, 5, return_indices=True))]:
            compare(f"{name} {dtype}", lambda t, p=pool: p(FF, t), lambda t, p=pool: p(TF, t), x)
        y, ind = TF.max_pool1d(x, 3, 2, 1, return_indices=True)
        compare(f"max_unpool1d {dtype}", lambda v, i: FF.max_unpool1d(v, i, 3, 2, 1, output_size=x.shape[-1:]),
                lambda v, i: TF.max_unpool1d(v, i, 3, 2, 1, output_size=x.shape[-1:]), y, ind)

    print(f"{scenario}: torch threads {torch.get_num_threads()}, {count[0]} cases, "
          f"{time.time() - t_start:.1f} s")
    if failures:
        print(f"{len(failures)} failures:")
        for f in failures:
            print("  " + f)
        sys.stdout.flush()
        sys.exit(1)
    print("all ops match torch")


if __name__ == "__main__":
    _child(sys.argv[1])
