"""Package metadata: pyproject.toml's [project] table as setuptools reads it, the one version, the license,
and setup.py left to the extension alone (setuptools refuses a field given in both files)."""
import ast
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import pytest
import torch

import fastconv
from fastconv import _extension_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def test_setuptools_accepts_the_project_table():
    """setuptools' own validation and expansion (the version is read from fastconv/_version.py statically)."""
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("an SPDX license expression needs setuptools >= 77")
    project = pyprojecttoml.read_configuration(os.path.join(ROOT, "pyproject.toml"))["project"]
    assert project["name"] == "fastconv" and project["version"] == fastconv.__version__
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]


def test_no_build_system_table():
    """Deliberate: with one, pip would install a second torch into an isolated build environment."""
    assert "build-system" not in _pyproject()


def test_metadata_fields():
    project = _pyproject()["project"]
    assert project["dynamic"] == ["version"]
    assert project["readme"] == "README.md" and os.path.exists(os.path.join(ROOT, "README.md"))
    assert project["requires-python"].startswith(">=3.")
    assert "Typing :: Typed" in project["classifiers"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # the SPDX expression says it
    [torch_req] = [d for d in project["dependencies"] if d.startswith("torch")]
    low, high = re.fullmatch(r"torch>=([\d.]+),<([\d.]+)", torch_req).groups()
    installed = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])
    assert tuple(map(int, low.split("."))) <= installed < tuple(map(int, high.split(".")))


def test_extras_name_what_the_bench_and_demo_import():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"bench", "demo", "test"} <= set(extras)
    for extra in ("bench", "demo"):
        names = {re.split(r"[<>=\[ ;]", d)[0] for d in extras[extra]}
        assert {"tqdm", "numpy", "matplotlib"} <= names, extra
    assert "scikit-learn" in extras["demo"]
    assert any(d.startswith("pytest") for d in extras["test"])


def test_requirements_dev_has_the_extras_ci_needs():
    """CI installs requirements-dev.txt, not the extras: it must hold what the bench and demo tests import."""
    reqs = {re.split(r"[<>= #]", line)[0] for line in _read("requirements-dev.txt").splitlines()
            if line and not line.startswith("#")}
    assert {"tqdm", "numpy", "matplotlib", "scikit-learn", "pytest", "hypothesis"} <= reqs


def test_one_version():
    scope = {}
    exec(_read("fastconv/_version.py"), scope)
    assert fastconv.__version__ == scope["__version__"] == fastconv.build_info()["fastconv"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", fastconv.__version__)
    assert f"## {fastconv.__version__}" in _read("CHANGELOG.md")


def test_license_is_bsd_3_clause():
    text = _read("LICENSE")
    assert text.startswith("BSD 3-Clause License") and "Copyright (c) 2026 the fastconv authors" in text
    assert "Neither the name of the copyright holder" in text


def test_setup_py_only_builds_the_extension():
    """setup()'s keywords must not repeat [project] fields: setuptools ignores or rejects them."""
    tree = ast.parse(_read("setup.py"))
    [call] = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup"]
    assert {k.arg for k in call.keywords} == {"ext_modules", "cmdclass"}


def _setup_kwargs(monkeypatch, **env):
    """What setup.py passes to setuptools.setup under `env` (stubbed out: nothing is built)."""
    import setuptools

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: seen.update(kwargs))
    path = os.path.join(ROOT, "setup.py")
    exec(compile(_read("setup.py"), path, "exec"), {"__file__": path, "__name__": "setup"})
    return seen


def _extensions(monkeypatch, **env):
    """{name: (compile flags, link flags)} of every extension setup.py builds under `env`."""
    return {ext.name: (ext.extra_compile_args["cxx"], ext.extra_link_args)
            for ext in _setup_kwargs(monkeypatch, **env)["ext_modules"]}


def test_debug_info_is_opt_in(monkeypatch):
    """Python's CFLAGS put -g before the extension's flags: -g0 must come after it, and last."""
    for cxx, link in _extensions(monkeypatch, FASTCONV_NO_CUDA="1").values():
        assert cxx[-1] == "-g0" and "-Wl,--strip-debug" in link
    for cxx, link in _extensions(monkeypatch, FASTCONV_NO_CUDA="1", FASTCONV_DEBUG_INFO="1").values():
        assert "-g0" not in cxx and "-Wl,--strip-debug" not in link


def _march(flags):
    return [f for f in flags if f.startswith("-march=")]


@pytest.mark.skipif(not sysconfig.get_platform().endswith("x86_64"), reason="x86-64 capabilities")
def test_one_kernel_library_per_cpu_capability(monkeypatch):
    """The CPU kernels are compiled once per capability (fastconv/_kernels.py loads one); the bindings for the
    baseline, so nothing outside the chosen library needs more than the oldest x86-64 CPU has."""
    monkeypatch.delenv("FASTCONV_MARCH", raising=False)
    exts = _extensions(monkeypatch, FASTCONV_NO_CUDA="1")
    assert set(exts) == {"fastconv._C", "fastconv._kernels_default", "fastconv._kernels_avx2",
                         "fastconv._kernels_avx512"}
    assert _march(exts["fastconv._C"][0]) == []
    assert _march(exts["fastconv._kernels_default"][0]) == ["-march=x86-64"]
    assert _march(exts["fastconv._kernels_avx2"][0]) == ["-march=x86-64-v3"]
    assert _march(exts["fastconv._kernels_avx512"][0]) == ["-march=x86-64-v4"]
    for name, (cxx, link) in exts.items():
        if name != "fastconv._C":  # only fastconv's own symbols leave a kernel library
            assert any(f.startswith("-Wl,--version-script=") for f in link)


def test_march_opt_in_builds_one_native_library(monkeypatch):
    """FASTCONV_MARCH=<arch> (local builds): one kernel library, "native", compiled with -march=<arch>."""
    exts = _extensions(monkeypatch, FASTCONV_NO_CUDA="1", FASTCONV_MARCH="native")
    assert set(exts) == {"fastconv._C", "fastconv._kernels_native"}
    assert _march(exts["fastconv._kernels_native"][0]) == ["-march=native"]
    assert _march(exts["fastconv._C"][0]) == []


def test_objects_stay_in_the_checkout(monkeypatch):
    """pip's editable install gives build_ext a new temporary directory each time: the objects go to
    build/temp.* of the checkout all the same, so ninja finds them up to date the next time."""
    from setuptools import Distribution

    dist = Distribution(_setup_kwargs(monkeypatch, FASTCONV_NO_CUDA="1"))
    dist.get_command_obj("build").build_temp = "/tmp/tmpxyz.build-temp"
    build_ext = dist.get_command_obj("build_ext")
    build_ext.ensure_finalized()
    assert build_ext.build_temp == os.path.join(
        ROOT, "build", f"temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}")


def test_release_build_has_no_debug_info():
    """setup.py compiles with -g0 and links with --strip-debug unless FASTCONV_DEBUG_INFO=1 (47 MB against 2.6 MB)."""
    config = _extension_error.build_config()
    if config is None or config.DEBUG_INFO:
        pytest.skip("an extension built with debug info, or before fastconv/_build_config.py recorded it")
    if shutil.which("readelf") is None:
        pytest.skip("no readelf")
    libraries = glob.glob(os.path.join(os.path.dirname(fastconv.__file__), "_*.so"))
    assert any(os.path.basename(p).startswith("_C") for p in libraries)
    assert any(os.path.basename(p).startswith("_kernels_") for p in libraries)
    for path in libraries:
        sections = subprocess.run(["readelf", "-S", "-W", path], capture_output=True, text=True, check=True).stdout
        assert ".text" in sections and ".debug_" not in sections, path
