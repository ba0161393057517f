"""fastconv._C and the torch it runs with. Before the extension is loaded, check_torch() compares this torch with
the one the build recorded in fastconv/_build_config.py (written by setup.py, not in git): an extension built
against another torch release fails to load with an undefined symbol, or loads and misbehaves. When the load
fails, extension_error() says why in plain words: from a source checkout where the extension was never built,
Python's own message is a confusing "cannot import name '_C' from partially initialized module 'fastconv' (most
likely due to a circular import)"."""
import glob
import importlib.machinery
import importlib.util
import os
import re
import warnings

import torch

BUILD = "pip install --no-build-isolation -e ."


def build_config():
    """fastconv/_build_config.py next to this file as a module, or None (an extension built before it existed, or
    copied in). Read by path: an import of fastconv._build_config could be answered by an editable install's
    finder from another checkout when this package has none."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_build_config.py")
    if not os.path.isfile(path):
        return None
    spec = importlib.util.spec_from_file_location("fastconv._build_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _release(version):
    """'2.13.0+cpu' -> (2, 13, 0): the release, without local tags (+cpu, +cu124) or pre-release parts."""
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", str(version))
    return tuple(int(x) for x in m.groups()) if m else None


def _built_against(config):
    """'torch 2.13.0+cu124 (with fastconv's CUDA kernels)': the build's torch, for messages."""
    return f"torch {config.TORCH_VERSION}" + (" (with fastconv's CUDA kernels)" if config.WITH_CUDA else "")


def torch_mismatch(config, version=None, cxx11_abi=None, cuda=None):
    """(fatal, reason) when the torch of `config` (a build config) is not this one, else None. fatal: the
    extension cannot work (another major.minor release or C++ ABI, or CUDA kernels without a CUDA torch); a
    different patch release is not fatal (they keep the ABI in practice) but named. The keyword arguments stand
    in for this torch (tests)."""
    version = torch.__version__ if version is None else version
    cxx11_abi = torch._C._GLIBCXX_USE_CXX11_ABI if cxx11_abi is None else cxx11_abi
    cuda = torch.version.cuda if cuda is None else cuda
    built, running = _release(config.TORCH_VERSION), _release(version)
    here = f"{_built_against(config)} and this is torch {version}"
    if built is None or running is None or built[:2] != running[:2]:
        return True, f"it was built against {here}"
    if bool(config.TORCH_CXX11_ABI) != bool(cxx11_abi):
        return True, (f"it was built against {here}, compiled with _GLIBCXX_USE_CXX11_ABI="
                      f"{int(config.TORCH_CXX11_ABI)} and this one with {int(cxx11_abi)}")
    if config.WITH_CUDA and not cuda:
        return True, f"it was built against {here}, which has no CUDA"
    if built != running:
        return False, f"it was built against {here}"
    return None


def _rebuild(config, verb="Rebuild"):
    return (f"{verb} it with this torch, from the repository root: `{BUILD}` (or install torch "
            f"{config.TORCH_VERSION} again)")


def check_torch():
    """Before loading fastconv._C: an ImportError if the build's torch cannot run with this one (the load would
    fail with an undefined symbol, or crash), a warning if only the patch release differs."""
    config = build_config()
    mismatch = None if config is None else torch_mismatch(config)
    if mismatch is None:
        return
    fatal, reason = mismatch
    if fatal:
        raise ImportError(f"fastconv's compiled extension does not match this torch: {reason}. {_rebuild(config)}")
    warnings.warn(f"fastconv's compiled extension was built against another torch patch release: {reason}. Patch "
                  f"releases keep the ABI in practice, so it is loaded; should anything fail, "
                  f"{_rebuild(config, 'rebuild')}", RuntimeWarning, stacklevel=3)


def extension_error(exc):
    """-> the ImportError to raise instead of `exc`, saying whether the extension is missing or fails to load,
    the torch it was built against and this one, and the command that builds it."""
    here = os.path.dirname(os.path.abspath(__file__))

    def present(stem):
        return [p for suffix in importlib.machinery.EXTENSION_SUFFIXES
                for p in glob.glob(os.path.join(here, stem + suffix))]

    built, kernels = present("_C"), present("_kernels_*")
    if not built and not kernels:
        return ImportError(
            f"fastconv's compiled extension (fastconv._C) is not built in {here}: this is a source tree. Build it "
            f"there after installing torch, from the repository root: `{BUILD}` (or run from another directory "
            "to import an installed fastconv)")
    if not built or not kernels:
        missing = "fastconv._C" if not built else "the CPU kernel libraries (fastconv/_kernels_*.so)"
        return ImportError(f"fastconv's compiled extension is incomplete in {here}: {missing} missing ({exc}), "
                           f"left by an interrupted or older build. Rebuild it from the repository root: `{BUILD}`")
    head = f"fastconv's compiled extension {built[0]} does not load ({exc})"
    config = build_config()
    if config is None:
        return ImportError(f"{head}: it was probably built against another torch than this one "
                           f"({torch.__version__}). Rebuild it from the repository root: `{BUILD}`")
    mismatch = torch_mismatch(config)
    if mismatch is not None:
        return ImportError(f"{head}: {mismatch[1]}. {_rebuild(config)}")
    return ImportError(
        f"{head}, although it was built against {_built_against(config)} and this is torch {torch.__version__}, "
        f"the same release: a library it links is missing, or this torch is another build of that release (with "
        f"or without CUDA). Rebuild it from the repository root: `{BUILD}`")
