"""A description of the machine and software a benchmark ran on (goes into the JSON)."""
import os
import platform

import torch

# ISA flags worth knowing when reading convolution numbers (from /proc/cpuinfo on Linux).
INTERESTING_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                     "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def _cpuinfo():
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, _, value = line.partition(":")
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _physical_cores():
    """Distinct (physical id, core id) pairs of /proc/cpuinfo (SMT siblings share one); None if unknown."""
    cores, current = set(), {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in list(f) + [""]:
                key, _, value = line.partition(":")
                key = key.strip()
                if not key:  # a blank line ends one logical CPU's block
                    if "core id" in current:
                        cores.add((current.get("physical id", "0"), current["core id"]))
                    current = {}
                elif key in ("physical id", "core id"):
                    current[key] = value.strip()
    except OSError:
        return None
    return len(cores) or None


def _memory_gb():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return None


def describe(device, threads):
    import fastconv

    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    desc = {
        "cpu_model": info.get("model name") or platform.processor() or platform.machine(),
        "physical_cores": _physical_cores(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "isa_flags": [f for f in INTERESTING_FLAGS if f in flags],
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_parallel": torch.__config__.parallel_info().splitlines()[:3],
        "fastconv": fastconv.__version__,
        "fastconv_build": fastconv.build_info(),
        "threads": threads,
        "device": str(device),
        "gpu": None,
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(device)
        desc["gpu"] = {"name": props.name, "memory_gb": props.total_memory / 1e9,
                       "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                       "cudnn": torch.backends.cudnn.version()}
    return desc
