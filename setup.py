"""Build of fastconv's compiled extension `fastconv._C` (the package metadata is in pyproject.toml).

Install with `pip install --no-build-isolation .` after torch: build isolation would install a second
torch for the build and the extension would not match the one you run with.

The CPU kernels (csrc/cpu) are compiled once per CPU capability into their own shared library, as ATen does:
fastconv/_kernels_default*.so (baseline x86-64), _kernels_avx2 (-march=x86-64-v3), _kernels_avx512
(-march=x86-64-v4); fastconv._C (the bindings, csrc/bindings) is compiled for baseline x86-64. At import
fastconv/_kernels.py loads the library this CPU runs (FASTCONV_CPU_CAPABILITY=default|avx2|avx512 asks for a lower
one), so a wheel built here runs on any x86-64 CPU. Other architectures get one library, "default".

Environment:
  FASTCONV_MARCH   opt-in for local builds: one kernel library, "native", compiled with -march=<value> (for
                   example "native": the build machine's own instruction set and tuning) instead of the three.
  FASTCONV_DEBUG_INFO=1  keep debug info (gcc -g, nvcc -g for host code): fastconv/_C*.so of a CPU build is
                   47 MB with it, 2.6 MB without. The default compiles with -g0 (after the -g of Python's
                   CFLAGS) and links with --strip-debug.
  FORCE_CUDA=1     build the CUDA kernels even if nvcc is not found on PATH / CUDA_HOME.
  FASTCONV_NO_CUDA=1  never build the CUDA kernels.
  TORCH_CUDA_ARCH_LIST  CUDA architectures (default "8.0;9.0+PTX": PTX for GPUs newer than Hopper).
  MAX_JOBS         parallel compile jobs (ninja).

Objects are kept in build/temp.<platform>-<python>/ under this directory, whatever build directory the
command asked for (pip's editable install asks for a new temporary one each time): ninja then recompiles
only what changed, so installing again from unchanged sources takes seconds. `rm -rf build` starts over.

The build records the torch it compiled against in fastconv/_build_config.py (next to the extension), which
`import fastconv` compares with the torch it runs with (fastconv/_extension_error.py).
"""
import glob
import os
import shutil
import sys
import sysconfig

import setuptools
from setuptools import setup

try:
    from torch.utils import cpp_extension
except ImportError as exc:  # pip's isolated build environment has no torch
    raise SystemExit(
        "fastconv builds against the torch you already have: install torch first, then "
        "`pip install --no-build-isolation .`") from exc

ROOT = os.path.dirname(os.path.abspath(__file__))
# setuptools' own default for `python setup.py build_ext`, made absolute and kept for every build command.
BUILD_TEMP = os.path.join(ROOT, "build", f"temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}")

if int(setuptools.__version__.split(".")[0]) < 77:  # pyproject.toml's SPDX `license = "BSD-3-Clause"`
    raise SystemExit(f"fastconv's metadata needs setuptools >= 77 (found {setuptools.__version__}): "
                     "`pip install -U setuptools`, then build again")


def version():
    """fastconv/_version.py's __version__, read without importing fastconv (its extension is what we build)."""
    scope = {}
    with open(os.path.join(ROOT, "fastconv", "_version.py")) as f:
        exec(f.read(), scope)
    return scope["__version__"]


def sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


def torch_has_openmp():
    import torch

    return "OpenMP" in torch.__config__.parallel_info() and "not available" not in torch.__config__.parallel_info()


def want_cuda():
    """torch built with CUDA and nvcc found, or FORCE_CUDA=1 (a build machine needs no GPU)."""
    if os.environ.get("FASTCONV_NO_CUDA") == "1":
        return False
    if os.environ.get("FORCE_CUDA") == "1":
        return True
    import torch

    nvcc = cpp_extension.CUDA_HOME and os.path.exists(os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"))
    return torch.version.cuda is not None and bool(nvcc or shutil.which("nvcc"))


def debug_info():
    return os.environ.get("FASTCONV_DEBUG_INFO") == "1"


# -march of each kernel library (fastconv/_kernels.py's LEVELS). Generic tuning: the libraries run on any vendor's
# CPUs of their level. The hot kernels are intrinsics, which tuning does not change.
X86_CAPABILITIES = {
    "default": ["-march=x86-64", "-mtune=generic"],
    "avx2": ["-march=x86-64-v3", "-mtune=generic"],
    "avx512": ["-march=x86-64-v4", "-mtune=generic"],
}


def kernel_capabilities():
    """{capability: compiler flags} of the kernel libraries to build."""
    march = os.environ.get("FASTCONV_MARCH")
    if march:
        return {"native": [f"-march={march}"]}
    if sysconfig.get_platform().endswith(("x86_64", "amd64")):
        return X86_CAPABILITIES
    return {"default": []}  # the compiler's own baseline for this architecture


def common_flags():
    """(compile, link) flags of every C++ part: OpenMP, and no debug info unless FASTCONV_DEBUG_INFO=1."""
    cxx = ["-O3", "-std=c++20", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"]
    link = []
    if torch_has_openmp():
        cxx.append("-fopenmp")
        link.append("-fopenmp")
    if not debug_info():
        cxx.append("-g0")  # these flags come after Python's CFLAGS (-DNDEBUG -g ...): the last -g option wins
        link.append("-Wl,--strip-debug")  # and whatever is linked in with some
    return cxx, link


def kernel_libraries():
    """One shared library of csrc/cpu per capability. No torch in them: raw pointers and the params structs only.
    The version script exports fastconv's C++ symbols (what fastconv._C calls) and keeps the rest local."""
    cxx, link = common_flags()
    exports = os.path.join(ROOT, "csrc", "cpu", "kernel_exports.map")
    srcs = sources("csrc/cpu/**/*.cpp")  # csrc/cpu and its family folders
    return [
        setuptools.Extension(
            f"fastconv._kernels_{name}", srcs, language="c++",
            define_macros=[("FASTCONV_CPU_CAPABILITY_NAME", f'"{name}"')],
            extra_compile_args={"cxx": flags + cxx}, extra_link_args=link + [f"-Wl,--version-script={exports}"])
        for name, flags in kernel_capabilities().items()
    ]


def bindings():
    """fastconv._C: the ATen bindings (and the CUDA kernels when built), compiled for the baseline of the build
    machine's architecture: its calls into the CPU kernels are resolved against the kernel library loaded first."""
    cxx, link = common_flags()
    srcs = sources("csrc/bindings/*.cpp")
    macros = [("FASTCONV_VERSION", f'"{version()}"')]
    if want_cuda():
        archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
        os.environ["TORCH_CUDA_ARCH_LIST"] = archs
        srcs += sources("csrc/cuda/**/*.cu") + sources("csrc/bindings/cuda/*.cpp")  # csrc/cuda and its family folders
        macros += [("FASTCONV_WITH_CUDA", None), ("FASTCONV_CUDA_ARCHS", f'"{archs}"')]
        nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo"]  # device line tables, for profilers
        if debug_info():
            nvcc.append("-g")  # host code; nvcc adds none by default
        cutlass = os.path.join(ROOT, "third_party", "cutlass", "include")  # vendored headers (third_party/cutlass)
        return cpp_extension.CUDAExtension(
            "fastconv._C", srcs, define_macros=macros, include_dirs=[cutlass],
            extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=link)
    return cpp_extension.CppExtension(
        "fastconv._C", srcs, define_macros=macros, extra_compile_args={"cxx": cxx}, extra_link_args=link)


def build_config(ext):
    """fastconv/_build_config.py: the torch this extension is compiled against, for the check at import."""
    import torch

    with_cuda = any(name == "FASTCONV_WITH_CUDA" for name, _ in ext.define_macros)
    capabilities = sorted(kernel_capabilities())
    return (
        '"""Written by setup.py when it built fastconv._C (not in git): the torch it was compiled against."""\n'
        f"TORCH_VERSION = {str(torch.__version__)!r}\n"
        f"TORCH_CXX11_ABI = {bool(torch._C._GLIBCXX_USE_CXX11_ABI)!r}\n"
        f"TORCH_CUDA = {torch.version.cuda!r}  # torch.version.cuda\n"
        f"WITH_CUDA = {with_cuda!r}  # fastconv's CUDA kernels compiled in\n"
        f"DEBUG_INFO = {debug_info()!r}  # FASTCONV_DEBUG_INFO=1\n"
        f"CPU_CAPABILITIES = {capabilities!r}  # the kernel libraries built (fastconv/_kernels.py)\n"
        f"MARCH = {os.environ.get('FASTCONV_MARCH')!r}  # FASTCONV_MARCH, None: the per-capability libraries\n")


class BuildExtension(cpp_extension.BuildExtension.with_options(use_ninja=True)):
    """torch's build_ext with ninja, objects kept in BUILD_TEMP/<extension> (each kernel library compiles the same
    sources with other flags), and fastconv/_build_config.py written next to _C once it is built."""

    def finalize_options(self):
        super().finalize_options()
        self.build_temp = BUILD_TEMP

    def build_extension(self, ext):
        self.build_temp = os.path.join(BUILD_TEMP, ext.name.rsplit(".", 1)[-1])
        print(f"fastconv: building {ext.name} ({len(ext.sources)} files)", flush=True)
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = BUILD_TEMP

    def run(self):
        super().run()
        for ext in self.extensions:
            if ext.name != "fastconv._C":
                continue
            # After run(), an --inplace (or editable) build's path is the one in the source tree.
            path = os.path.join(os.path.dirname(self.get_ext_fullpath(ext.name)), "_build_config.py")
            with open(path, "w") as f:
                f.write(build_config(ext))


setup(
    ext_modules=kernel_libraries() + [bindings()],
    cmdclass={"build_ext": BuildExtension},
)
