"""Runtime CPU dispatch: one kernel library per CPU capability (fastconv/_kernels.py), the best this CPU runs
loaded at import, FASTCONV_CPU_CAPABILITY to ask for a lower one. The conv and pooling tests run once per
capability in CI (.ci/run); here: the choice, the override and its warnings, what info reports, and the same
numbers from every library this machine runs."""
import os
import subprocess
import sys

import pytest
import torch

import fastconv
from conftest import subprocess_env
from fastconv import _kernels

SIMD = {"default": "SSE2", "avx2": "AVX2+FMA", "avx512": "AVX-512"}
BUILT = sorted(_kernels.library_paths())
PER_CAPABILITY = "default" in BUILT  # not a FASTCONV_MARCH build


def _best():
    return _kernels.best_supported(_kernels.library_paths())


def _run(code, capability=None):
    """`code` in a fresh interpreter (the library is chosen once, at import), FASTCONV_CPU_CAPABILITY set."""
    env = subprocess_env()
    env.pop(_kernels.ENV, None)
    if capability is not None:
        env[_kernels.ENV] = capability
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    return res


def _runnable():
    if not PER_CAPABILITY:
        return []
    best = _best()
    return [c for c in _kernels.LEVELS if _kernels.LEVELS.index(c) <= _kernels.LEVELS.index(best)]


# ---- the choice (pure function) ----

def test_choose_loads_the_best_the_cpu_runs():
    built = list(_kernels.LEVELS)
    assert _kernels.choose(built, "avx512", None) == ("avx512", None)
    assert _kernels.choose(built, "avx2", None) == ("avx2", None)
    assert _kernels.choose(built, "default", "") == ("default", None)


@pytest.mark.parametrize("requested, want", [("default", "default"), ("AVX2", "avx2"), (" avx512 ", "avx512")])
def test_choose_honours_a_request_the_cpu_runs(requested, want):
    assert _kernels.choose(list(_kernels.LEVELS), "avx512", requested) == (want, None)


def test_choose_never_goes_above_the_cpu():
    """A request above what the CPU runs would crash with an illegal instruction: it falls back, with a warning."""
    capability, note = _kernels.choose(list(_kernels.LEVELS), "avx2", "avx512")
    assert capability == "avx2" and "does not run avx512" in note


def test_choose_names_the_valid_values_of_an_unknown_request():
    capability, note = _kernels.choose(list(_kernels.LEVELS), "avx512", "avx3")
    assert capability == "avx512" and "'avx3'" in note and "default, avx2, avx512" in note


def test_choose_a_capability_the_build_lacks():
    capability, note = _kernels.choose(["default", "avx2"], "avx512", "avx512")
    assert capability == "avx2" and "no avx512 kernels" in note


def test_choose_native_build():
    """FASTCONV_MARCH builds one library; a request for another is ignored with a warning."""
    assert _kernels.choose(["native"], None, None) == ("native", None)
    capability, note = _kernels.choose(["native"], None, "avx2")
    assert capability == "native" and "FASTCONV_MARCH" in note


def test_choose_with_nothing_runnable_is_an_import_error():
    with pytest.raises(ImportError, match="no CPU kernel library"):
        _kernels.choose(["avx512"], "avx2", None)


# ---- this process and fresh ones ----

def test_this_process_runs_the_best_library_or_the_requested_one():
    capability = fastconv.backends.cpu.get_cpu_capability()
    assert capability == fastconv.build_info()["cpu_capability"]
    if PER_CAPABILITY:
        requested = os.environ.get(_kernels.ENV, "").strip().lower()
        assert capability == (requested if requested in _runnable() else _best())
        assert fastconv.build_info()["simd"] == SIMD[capability]
    else:
        assert capability == "native"


@pytest.mark.skipif(not PER_CAPABILITY, reason="a FASTCONV_MARCH build has one kernel library")
@pytest.mark.parametrize("capability", _kernels.LEVELS)
def test_override_loads_that_library(capability):
    """FASTCONV_CPU_CAPABILITY is read at import; info and backends.cpu report what was loaded."""
    if capability not in _runnable():
        pytest.skip(f"this CPU does not run {capability}")
    res = _run("import fastconv; i = fastconv.build_info(); "
               "print(i['cpu_capability'], i['simd'], fastconv.backends.cpu.get_cpu_capability())", capability)
    assert res.stdout.split() == [capability, SIMD[capability], capability]
    assert "Warning" not in res.stderr


@pytest.mark.skipif(not PER_CAPABILITY, reason="a FASTCONV_MARCH build has one kernel library")
def test_bad_override_warns_and_runs():
    res = _run("import fastconv; print(fastconv.backends.cpu.get_cpu_capability())", "sse9")
    assert res.stdout.strip() == _best()
    assert "RuntimeWarning" in res.stderr and "FASTCONV_CPU_CAPABILITY='sse9'" in res.stderr


def test_info_cli_reports_the_capability():
    env = subprocess_env()
    res = subprocess.run([sys.executable, "-m", "fastconv", "info"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    info = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in res.stdout.strip().splitlines())}
    assert info["cpu_capability"] == fastconv.backends.cpu.get_cpu_capability()


_SAME_NUMBERS = """
import torch, fastconv
import torch.nn.functional as F
torch.manual_seed(0)
F_ = fastconv.nn.functional
out = []
x = torch.randn(2, 24, 17, 19, dtype=torch.float64, requires_grad=True)
w = torch.randn(40, 24, 3, 3, dtype=torch.float64, requires_grad=True)
for dtype in (torch.float32, torch.float64):
    for fmt in (torch.contiguous_format, torch.channels_last):
        xs = x.detach().to(dtype).contiguous(memory_format=fmt).requires_grad_()
        ws = w.detach().to(dtype).requires_grad_()
        for kw in (dict(padding=1), dict(stride=2, dilation=2), dict(padding=2, groups=4)):
            wk = ws if kw.get("groups", 1) == 1 else ws[:, :6].detach().requires_grad_()
            y = F_.conv2d(xs, wk, **kw)
            gx, gw = torch.autograd.grad(y.square().sum(), (xs, wk))
            ref = F.conv2d(xs.double(), wk.double(), **kw)
            out.append(((y.double() - ref).norm() / ref.norm()).item())
        p = F_.max_pool2d(xs, 3, 2, 1)
        out.append((p - F.max_pool2d(xs, 3, 2, 1)).abs().max().item())
        a = F_.avg_pool2d(xs, 3, 2, 1)
        out.append((a - F.avg_pool2d(xs, 3, 2, 1)).abs().max().item())
        out.append((F_.adaptive_avg_pool2d(xs, 5) - F.adaptive_avg_pool2d(xs, 5)).abs().max().item())
print(max(out))
"""


@pytest.mark.skipif(not PER_CAPABILITY, reason="a FASTCONV_MARCH build has one kernel library")
@pytest.mark.parametrize("capability", _kernels.LEVELS)
def test_every_library_matches_torch(capability):
    """Convolution (direct, strided + dilated, grouped; float32 on the Winograd path too) and pooling, both
    layouts and dtypes, through each library this CPU runs: within float32 rounding of torch."""
    if capability not in _runnable():
        pytest.skip(f"this CPU does not run {capability}")
    worst = float(_run(_SAME_NUMBERS, capability).stdout.strip())
    assert worst < 1e-5


def test_kernel_library_exports_only_fastconv_symbols():
    """The version script keeps each library's copies of standard-library templates local: compiled for its
    capability, they must not stand in for other libraries' copies."""
    import shutil

    if shutil.which("nm") is None:
        pytest.skip("no nm")
    path = _kernels._loaded["path"]
    symbols = subprocess.run(["nm", "-D", "--defined-only", "-C", path], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    exported = [s.split(" ", 2)[2] for s in symbols if len(s.split(" ", 2)) == 3]
    assert exported and all("fastconv" in s for s in exported), [s for s in exported if "fastconv" not in s][:5]


def test_no_warning_without_the_variable():
    res = _run("import warnings; warnings.simplefilter('error'); import fastconv; "
               "print(fastconv.backends.cpu.get_cpu_capability())")
    assert res.stdout.strip() == (_best() if PER_CAPABILITY else "native")


def _vector_registers(path):
    """{'ymm': n, 'zmm': n}: instructions of the library's code that use 256- or 512-bit registers."""
    import re
    import shutil

    if shutil.which("objdump") is None:
        pytest.skip("no objdump")
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True,
                          check=True).stdout
    return {reg: len(re.findall(rf"%{reg}\d", text)) for reg in ("ymm", "zmm")}


@pytest.mark.skipif(not PER_CAPABILITY, reason="a FASTCONV_MARCH build has one kernel library")
def test_only_the_avx512_library_has_avx512_code():
    """What makes a build portable: _C and the default library use no AVX at all (an SSE2-only CPU loads them),
    the avx2 library no AVX-512 (an AVX2 CPU, and valgrind, run it)."""
    import glob

    package = os.path.dirname(os.path.abspath(fastconv.__file__))
    [bindings] = glob.glob(os.path.join(package, "_C.*so"))
    paths = _kernels.library_paths()
    assert _vector_registers(bindings) == {"ymm": 0, "zmm": 0}
    assert _vector_registers(paths["default"]) == {"ymm": 0, "zmm": 0}
    if "avx2" in paths:
        regs = _vector_registers(paths["avx2"])
        assert regs["zmm"] == 0 and regs["ymm"] > 1000
    if "avx512" in paths:
        assert _vector_registers(paths["avx512"])["zmm"] > 1000
