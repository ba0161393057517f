"""A steady heap for the CPU timings (layers and --models).

glibc's malloc serves blocks over its mmap threshold (at most 32 MB, however it adapts) with fresh mmap()s and
returns them to the kernel on free(), so every training step of a 224x224 network page-faults its large
activations back in, and the kernel zeroes them. That cost lands on whichever library first writes each block,
and it depends on the process's heap history: MobileNet-V2's torch inference step measured 57 ms in one process
and 134 ms in the next, with the same code. Raising the mmap and trim thresholds keeps freed blocks in the heap,
for both libraries alike, so the steps measure the networks rather than the page faults (the same networks then
varied by a few percent from process to process)."""
import ctypes
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 30


def steady_heap():
    """Sets glibc's mmap and trim thresholds to 1 GB for this process. Returns what was done, for the JSON."""
    if platform.system() != "Linux":
        return {"steady_heap": False, "reason": f"not glibc ({platform.system()})"}
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return {"steady_heap": False, "reason": "no glibc mallopt"}
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES) == 1 and mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES) == 1
    if not ok:
        return {"steady_heap": False, "reason": "mallopt refused the thresholds"}
    return {"steady_heap": True, "mmap_threshold_bytes": THRESHOLD_BYTES, "trim_threshold_bytes": THRESHOLD_BYTES}


__all__ = ["steady_heap"]
