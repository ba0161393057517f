"""Importing fastconv without its compiled extension says so plainly, with the command that builds it (Python's
own message from a source tree is a confusing "circular import" of fastconv._C), and an extension built against
another torch (fastconv/_build_config.py, written by setup.py) is named before it is loaded. Fresh processes on
copies of the package; a meta_path hook stands in for the missing or broken extension (an editable install
elsewhere would otherwise supply one)."""
import glob
import importlib.machinery
import os
import shutil
import subprocess
import sys
import types

import pytest
import torch

import fastconv
from fastconv import _extension_error

PACKAGE = os.path.dirname(os.path.abspath(fastconv.__file__))
BLOCK = ("import sys\n"
         "class Block:\n"
         "    def find_spec(self, name, path=None, target=None):\n"
         "        if name == 'fastconv._C':\n"
         "            raise ImportError({message!r}, name=name)\n"
         "sys.meta_path.insert(0, Block())\n")


def _last_error_line(cwd, message, body, pythonpath=""):
    env = dict(os.environ, PYTHONPATH=pythonpath)
    res = subprocess.run([sys.executable, "-c", BLOCK.format(message=message) + body], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    return res.stderr.strip().splitlines()[-1]


def test_source_tree_without_the_extension(tmp_path):
    """A copy of the package without _C*.so, imported from its parent directory as from a fresh checkout, and
    `python -m fastconv` there."""
    shutil.copytree(PACKAGE, tmp_path / "fastconv",
                    ignore=shutil.ignore_patterns("_C*.so", "_C*.pyd", "_kernels_*.so", "__pycache__"))
    for body in ("import fastconv", "import runpy; runpy.run_module('fastconv', run_name='__main__')"):
        last = _last_error_line(tmp_path, "No module named 'fastconv._C'", body)
        assert last.startswith("ImportError: fastconv's compiled extension (fastconv._C) is not built in "
                               f"{tmp_path / 'fastconv'}"), last
        assert "pip install --no-build-isolation -e ." in last and "circular import" not in last


def test_extension_without_its_kernel_libraries(tmp_path):
    """_C*.so from an older build (before the kernels moved to one library per CPU capability), or an interrupted
    one: the kernel libraries missing is said, with the rebuild command, not an undefined symbol."""
    shutil.copytree(PACKAGE, tmp_path / "fastconv", ignore=shutil.ignore_patterns("_kernels_*.so", "__pycache__"))
    last = _last_error_line(tmp_path, "the extension was loaded", "import fastconv")
    assert last.startswith(f"ImportError: fastconv's compiled extension is incomplete in {tmp_path / 'fastconv'}: "
                           "the CPU kernel libraries (fastconv/_kernels_*.so) missing"), last
    assert "pip install --no-build-isolation -e ." in last


BUILD = "pip install --no-build-isolation -e ."
UNDEFINED = "undefined symbol: _ZN3c10simulated"
TORCH = str(torch.__version__)
RELEASE = tuple(int(x) for x in TORCH.split("+")[0].split(".")[:3])


def _config_text(version=TORCH, cxx11_abi=torch._C._GLIBCXX_USE_CXX11_ABI, torch_cuda=None, with_cuda=False):
    return (f"TORCH_VERSION = {version!r}\nTORCH_CXX11_ABI = {bool(cxx11_abi)!r}\nTORCH_CUDA = {torch_cuda!r}\n"
            f"WITH_CUDA = {with_cuda!r}\nDEBUG_INFO = False\n")


def _package_copy(tmp_path, config=None, extension="placeholder"):
    """tmp_path/fastconv: the package's Python files, _build_config.py from `config` (text; None: none), and
    as its extension an empty placeholder (the hook keeps it from loading) or a link to the real one."""
    shutil.copytree(PACKAGE, tmp_path / "fastconv",
                    ignore=shutil.ignore_patterns("_C*.so", "_C*.pyd", "__pycache__", "_build_config.py"))
    name = "_C" + importlib.machinery.EXTENSION_SUFFIXES[0]
    if extension == "placeholder":
        (tmp_path / "fastconv" / name).write_bytes(b"")
    else:
        [real] = glob.glob(os.path.join(PACKAGE, "_C*.so"))
        os.symlink(real, tmp_path / "fastconv" / os.path.basename(real))
    if config is not None:
        (tmp_path / "fastconv" / "_build_config.py").write_text(config)
    return tmp_path / "fastconv"


def _other(release, index):
    return ".".join(str(v + (i == index)) for i, v in enumerate(release))


def test_extension_that_does_not_load(tmp_path):
    """The extension is there but fails to load, as one built against another torch does; a build without
    fastconv/_build_config.py (from before it existed) cannot say which torch."""
    package = _package_copy(tmp_path)
    last = _last_error_line(tmp_path, UNDEFINED, "import fastconv")
    assert f"{package}/_C" in last and f"does not load ({UNDEFINED})" in last, last
    assert f"another torch than this one ({TORCH})" in last and BUILD in last


def test_load_failure_names_both_torch_releases(tmp_path):
    """Built against another patch release (not refused before loading), and the load fails."""
    other = _other(RELEASE, 2)
    _package_copy(tmp_path, _config_text(other))
    last = _last_error_line(tmp_path, UNDEFINED, "import warnings; warnings.simplefilter('ignore'); import fastconv")
    assert f"does not load ({UNDEFINED}): it was built against torch {other} and this is torch {TORCH}" in last, last
    assert BUILD in last and f"or install torch {other} again" in last


def test_load_failure_with_this_torch(tmp_path):
    _package_copy(tmp_path, _config_text(TORCH, with_cuda=True, torch_cuda="12.4"))
    last = _last_error_line(tmp_path, UNDEFINED, "import torch; torch.version.cuda = '12.4'; import fastconv")
    assert (f"does not load ({UNDEFINED}), although it was built against torch {TORCH} (with fastconv's CUDA "
            f"kernels) and this is torch {TORCH}, the same release") in last, last
    assert BUILD in last


@pytest.mark.parametrize("index", [0, 1])
def test_another_release_is_refused_before_loading(tmp_path, index):
    """Another major or minor release: an ImportError naming both, and the extension is never loaded (it could
    crash while registering its ops)."""
    other = _other(RELEASE, index) + "+cpu"
    _package_copy(tmp_path, _config_text(other))
    last = _last_error_line(tmp_path, "the extension was loaded", "import fastconv")
    assert last.startswith("ImportError: fastconv's compiled extension does not match this torch: it was built "
                           f"against torch {other} and this is torch {TORCH}. Rebuild it with this torch, from the "
                           f"repository root: `{BUILD}` (or install torch {other} again)"), last
    assert "was loaded" not in last


def test_another_patch_release_warns_and_loads(tmp_path):
    other = _other(RELEASE, 2)
    _package_copy(tmp_path, _config_text(other), extension="real")
    body = ("import warnings\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    import fastconv\n"
            "print(fastconv.build_info()['torch_built'])\n"
            "print('|'.join(f'{w.category.__name__}: {w.message} @ {w.filename}' for w in caught))\n")
    res = subprocess.run([sys.executable, "-c", body], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=""),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    built, warned = res.stdout.strip().splitlines()
    assert built == other
    assert warned.startswith("RuntimeWarning: fastconv's compiled extension was built against another torch patch "
                             f"release: it was built against torch {other} and this is torch {TORCH}"), warned
    assert BUILD in warned and warned.endswith("@ <string>")  # points at the `import fastconv`


def _config(version=TORCH, cxx11_abi=True, torch_cuda=None, with_cuda=False):
    return types.SimpleNamespace(TORCH_VERSION=version, TORCH_CXX11_ABI=cxx11_abi, TORCH_CUDA=torch_cuda,
                                 WITH_CUDA=with_cuda)


def test_torch_mismatch_rules():
    mismatch = _extension_error.torch_mismatch
    same = dict(version="2.13.0+cpu", cxx11_abi=True, cuda=None)
    assert mismatch(_config("2.13.0"), **same) is None  # local tags (+cpu, +cu124) are not the release
    assert mismatch(_config("2.13.0+cu124"), **same) is None
    assert mismatch(_config("2.13.1"), **same) == (False, "it was built against torch 2.13.1 and this is torch "
                                                          "2.13.0+cpu")
    assert mismatch(_config("2.14.0"), **same)[0] and mismatch(_config("3.13.0"), **same)[0]
    assert mismatch(_config("garbage"), **same)[0]
    fatal, reason = mismatch(_config(cxx11_abi=False), **same)
    assert fatal and "_GLIBCXX_USE_CXX11_ABI=0 and this one with 1" in reason
    fatal, reason = mismatch(_config("2.13.0+cu124", torch_cuda="12.4", with_cuda=True), **same)
    assert fatal and reason == ("it was built against torch 2.13.0+cu124 (with fastconv's CUDA kernels) and this "
                                "is torch 2.13.0+cpu, which has no CUDA")
    assert mismatch(_config("2.13.0+cu124", torch_cuda="12.4", with_cuda=True), "2.13.0+cu126", True, "12.6") is None
