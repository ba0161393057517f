"""`python -m fastconv info` and fastconv.build_info(): what was compiled in and what runs."""
import subprocess
import sys

import pytest
import torch

import fastconv
from conftest import subprocess_env
from fastconv import _extension_error

SIMD_LEVELS = {"AVX-512", "AVX2+FMA", "AVX", "SSE2", "NEON", "scalar"}


def _run_info(*extra_env):
    env = subprocess_env(**dict(extra_env))
    res = subprocess.run([sys.executable, "-m", "fastconv", "info"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return dict(line.split(":", 1) for line in res.stdout.strip().splitlines())


def test_info_cli_prints_build_facts():
    info = {k.strip(): v.strip() for k, v in _run_info().items()}
    assert info["fastconv"] == fastconv.__version__
    assert info["torch"] == torch.__version__
    assert info["simd"] in SIMD_LEVELS
    assert int(info["threads"]) >= 1
    assert info["cuda_built"] in ("True", "False")
    assert info["openmp"] in ("True", "False")


def test_info_cli_prints_the_torch_the_extension_was_built_against():
    """From fastconv/_build_config.py (written by setup.py): this torch's release, or the import would have
    refused it or warned; "unknown" for an extension built before that file existed."""
    info = {k.strip(): v.strip() for k, v in _run_info().items()}
    config = _extension_error.build_config()
    if config is None:
        assert info["torch_built"] == "unknown"
    else:
        assert info["torch_built"] == config.TORCH_VERSION == fastconv.build_info()["torch_built"]
        assert _extension_error.torch_mismatch(config) is None


@pytest.mark.parametrize("setting, form", [("1", "embedded"), ("0", "register")])
def test_info_cli_fma_broadcast_follows_environment(setting, form):
    """FASTCONV_FMA_EMBEDDED_BROADCAST overrides the per-CPU choice of the AVX-512 direct tiles (AMD: embedded,
    Intel: register); a library without AVX-512 has no such tiles."""
    info = {k.strip(): v.strip() for k, v in _run_info(("FASTCONV_FMA_EMBEDDED_BROADCAST", setting)).items()}
    assert info["fma_broadcast"] == (form if info["simd"] == "AVX-512" else "none")
    assert fastconv.build_info()["fma_broadcast"] in ("embedded", "register", "none")


@pytest.mark.parametrize("setting", ["1", "0"])
def test_info_cli_nontemporal_stores_follow_environment(setting):
    """FASTCONV_NONTEMPORAL_STORES overrides the per-CPU choice (AMD: on, Intel: off)."""
    info = {k.strip(): v.strip() for k, v in _run_info(("FASTCONV_NONTEMPORAL_STORES", setting)).items()}
    assert info["nontemporal_stores"] == str(setting == "1")


def test_info_cli_threads_follow_environment():
    info = {k.strip(): v.strip() for k, v in _run_info(("OMP_NUM_THREADS", "1")).items()}
    assert info["threads"] == "1"


def test_info_cli_is_the_default_command():
    env = subprocess_env()
    res = subprocess.run([sys.executable, "-m", "fastconv"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0 and "simd" in res.stdout


def test_info_cli_unknown_command():
    env = subprocess_env()
    res = subprocess.run([sys.executable, "-m", "fastconv", "nonsense"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert res.returncode == 2 and "usage" in res.stderr


def test_build_info_threads_follow_torch_set_num_threads():
    old = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            assert fastconv.build_info()["threads"] == n
    finally:
        torch.set_num_threads(old)


def test_build_info_fields():
    info = fastconv.build_info()
    assert info["fastconv"] == fastconv.__version__ and info["torch"] == torch.__version__
    assert info["simd"] in SIMD_LEVELS
    assert isinstance(info["openmp"], bool) and isinstance(info["cuda_built"], bool)
    # CUDA can only be available to fastconv if it was built with it.
    assert info["cuda_available"] == (info["cuda_built"] and torch.cuda.is_available())
    if not info["cuda_built"]:
        assert info["cuda_archs"] == ""


def test_results_do_not_depend_on_thread_count():
    """The kernels' work split over threads must not change the numbers beyond float64 rounding."""
    x = torch.randn(3, 4, 9, 9, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    old = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append(fastconv.nn.functional.conv2d(x, w, None, 1, 1))
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
