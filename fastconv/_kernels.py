"""Loads the CPU kernel library this process runs, before fastconv._C (which calls the kernels by their C++ names).

setup.py compiles csrc/cpu once per CPU capability, as ATen does, into fastconv/_kernels_<capability>*.so:

    default   baseline x86-64 (SSE2): runs on every x86-64 CPU, and under valgrind
    avx2      x86-64-v3: AVX2, FMA, BMI2, F16C (Haswell, Zen 1 and later)
    avx512    x86-64-v4: AVX-512 F, BW, CD, DQ, VL (Skylake-SP, Ice Lake, Zen 4 and later): the tuned kernels

and fastconv._C itself (the bindings) for baseline x86-64. At import the best library this CPU and OS run is
loaded; FASTCONV_CPU_CAPABILITY=default|avx2|avx512 (torch's ATEN_CPU_CAPABILITY convention) asks for a lower one,
read once at import. A build with FASTCONV_MARCH=<arch> (the opt-in for local builds) has one library,
"native", compiled with -march=<arch>. On other architectures there is only "default".
"""
from __future__ import annotations

import ctypes
import glob
import importlib.machinery
import os
import warnings

from ._extension_error import build_config

ENV = "FASTCONV_CPU_CAPABILITY"
LEVELS = ("default", "avx2", "avx512")  # lowest first; fastconv_cpu_best_capability() returns the index
_HERE = os.path.dirname(os.path.abspath(__file__))

_loaded: dict[str, object] = {}  # "capability", "path", "handle": what load() chose


def library_paths(directory: str = _HERE) -> dict[str, str]:
    """{capability: path} of the kernel libraries built into `directory`."""
    found = {}
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for path in glob.glob(os.path.join(directory, "_kernels_*" + suffix)):
            name = os.path.basename(path)[len("_kernels_"):-len(suffix)]
            found.setdefault(name, path)
    return found


def best_supported(paths: dict[str, str]) -> str:
    """The highest of LEVELS this CPU runs, asked of the baseline library (cpuid and the OS-enabled register
    state; a library loaded RTLD_LOCAL only to ask)."""
    lib = ctypes.CDLL(paths["default"], mode=os.RTLD_NOW | os.RTLD_LOCAL)
    return LEVELS[max(0, min(int(lib.fastconv_cpu_best_capability()), len(LEVELS) - 1))]


def choose(built: list[str], best: str | None, requested: str | None) -> tuple[str, str | None]:
    """(capability to load, warning or None). built: the libraries there are; best: the highest level this CPU
    runs (None when there is no baseline library to ask: a FASTCONV_MARCH build); requested: the environment
    variable's value or None. A request the build or the CPU cannot honour falls back, with a warning, to the
    best there is: a wrong setting must not crash the import or run instructions the CPU lacks."""
    if "native" in built and "default" not in built:  # FASTCONV_MARCH build: its one library
        if requested and requested.strip().lower() != "native":
            return "native", (f"{ENV}={requested!r} ignored: this fastconv was built with FASTCONV_MARCH, which "
                              "compiles one kernel library ('native')")
        return "native", None
    runnable = [c for c in LEVELS if c in built and LEVELS.index(c) <= LEVELS.index(best or "default")]
    if not runnable:
        raise ImportError(f"fastconv has no CPU kernel library this CPU runs (built: {', '.join(sorted(built))})")
    top = runnable[-1]
    if not requested or not requested.strip():
        return top, None
    want = requested.strip().lower()
    if want not in LEVELS:
        return top, f"{ENV}={requested!r} is not one of {', '.join(LEVELS)}: using {top}, this CPU's best"
    if want not in built:
        return top, f"{ENV}={requested!r}: this build has no {want} kernels ({', '.join(runnable)}): using {top}"
    if want not in runnable:
        return top, f"{ENV}={requested!r}: this CPU does not run {want} instructions: using {top}, its best"
    return want, None


def load() -> str:
    """Loads the kernel library (once per process) and returns its capability. Raises ImportError when none is
    built (fastconv/_extension_error.py turns that into the build instructions)."""
    if _loaded:
        return _loaded["capability"]
    paths = library_paths()
    config = build_config()
    if config is not None and hasattr(config, "CPU_CAPABILITIES"):
        # what the last build made: a library left by an earlier build with other settings is not this build's
        paths = {name: path for name, path in paths.items() if name in config.CPU_CAPABILITIES}
    if not paths:
        raise ImportError(f"no CPU kernel library (fastconv/_kernels_*.so) in {_HERE}")
    best = best_supported(paths) if "default" in paths else None
    capability, note = choose(sorted(paths), best, os.environ.get(ENV))
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    # RTLD_GLOBAL: fastconv._C, loaded next, resolves its calls into the kernels against this library.
    handle = ctypes.CDLL(paths[capability], mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    _loaded.update(capability=capability, path=paths[capability], handle=handle)
    return capability


def loaded_capability() -> str:
    """The capability of the loaded kernel library ("default", "avx2", "avx512" or "native")."""
    return load()
