"""This machine's measured peak, the denominator of the "% of peak" column.
CPU: fastconv's own compiled probes (csrc/cpu/peak_probe.cpp): an FMA micro-kernel (float32 and float64
GFLOP/s) and a streaming read+write bandwidth kernel (GB/s).
CUDA: fastconv has no GPU probe kernel; the references there are the best of torch's device-to-device copy
(bandwidth) and cuBLAS matmul (achievable GEMM throughput per dtype), and are labelled so in the JSON."""
import time

import torch


def cpu_probes(threads, fma_seconds=0.4, stream_bytes=128 << 20, stream_repeats=6):
    """-> {"fma_gflops": {"float32": .., "float64": ..}, "stream_gbs": .., "source": ..} or an "error"."""
    from .. import _C

    if not hasattr(_C, "peak_fma_gflops"):
        return {"error": "this fastconv build has no peak probes (rebuild the extension)"}
    t0 = time.perf_counter()
    result = {
        "fma_gflops": {
            "float32": _C.peak_fma_gflops(threads, fma_seconds, False),
            "float64": _C.peak_fma_gflops(threads, fma_seconds, True),
        },
        "stream_gbs": _C.stream_bandwidth_gbs(threads, stream_bytes, stream_repeats),
        "threads": threads,
        "source": "fastconv._C peak_fma_gflops / stream_bandwidth_gbs (csrc/cpu/peak_probe.cpp)",
    }
    result["seconds"] = time.perf_counter() - t0
    return result


def _best_cuda_seconds(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
    return best


def cuda_probes(device, dtypes=(torch.float16, torch.bfloat16, torch.float32)):
    """Reference figures on a GPU (torch copy and matmul, not fastconv code)."""
    t0 = time.perf_counter()
    src = torch.empty(256 << 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sec = _best_cuda_seconds(lambda: dst.copy_(src), 10)
    gemm = {}
    n = 8192
    for dtype in dtypes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        torch.matmul(a, b)
        gemm[str(dtype).replace("torch.", "")] = 2 * n**3 / _best_cuda_seconds(lambda: torch.matmul(a, b), 5) * 1e-9
        del a, b
    return {"fma_gflops": gemm, "stream_gbs": 2 * src.numel() / sec * 1e-9,
            "source": "reference: torch device copy (bandwidth) and cuBLAS matmul 8192^3 (throughput)",
            "seconds": time.perf_counter() - t0}


def peak_for(probes, kind, dtype):
    """Denominator for one result: GFLOP/s for dtype (compute) or GB/s (memory); None if not measured."""
    if not probes or "error" in probes:
        return None
    if kind == "memory":
        return probes.get("stream_gbs")
    return probes.get("fma_gflops", {}).get(str(dtype).replace("torch.", ""))
