"""What was compiled in, for `python -m fastconv info` and bug reports."""
from __future__ import annotations

import torch

from . import _C
from ._extension_error import build_config
from ._version import __version__


def build_info() -> dict[str, object]:
    """A dict: fastconv and torch versions (torch_built: the torch the extension was compiled against, "unknown"
    for a build without fastconv/_build_config.py), the CPU kernels' capability (FASTCONV_CPU_CAPABILITY), SIMD
    level, FMA broadcast form and non-temporal stores (cpu_tuning.h), OpenMP and CUDA build facts, threads in use."""
    info = dict(_C.build_info())
    config = build_config()
    return {
        "fastconv": __version__,
        "torch": torch.__version__,
        "torch_built": "unknown" if config is None else config.TORCH_VERSION,
        "cpu_capability": info["cpu_capability"],  # the kernel library loaded (fastconv/_kernels.py)
        "simd": info["simd"],
        # AVX-512 direct convolution tiles: broadcasts inside the FMAs (AMD) or into registers (Intel)
        "fma_broadcast": info["fma_broadcast"],
        # large results written past the caches (AMD) or through them (Intel)
        "nontemporal_stores": info["nontemporal_stores"],
        "openmp": info["openmp"],
        "threads": torch.get_num_threads(),
        "cuda_built": info["cuda"],
        "cuda_archs": info["cuda_archs"],
        "cuda_available": bool(info["cuda"]) and torch.cuda.is_available(),
    }


def format_info() -> str:
    info = build_info()
    width = max(map(len, info))
    lines = [f"{k:>{width}}: {v}" for k, v in info.items()]
    return "\n".join(lines)
