"""fastconv's GEMM as a fraction of this machine's FMA peak: 1x1 stride-1 convolutions (a plain GEMM; channels_last
reads activations and writes outputs in place) on ResNet-50's and larger shapes, next to torch (oneDNN).

Issue 12's target: the GEMM alone at 80% or more of the probed float32 FMA peak on large shapes. Each round probes
the peak (fastconv._C.peak_fma_gflops) right before timing both libraries, so a VM changing speed between rounds
moves all three together; the table prints each round's fractions and their medians.

    python benchmarks/gemm_efficiency.py [--json PATH] [--rounds 3] [--threads 2]
"""
import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as TF

import fastconv
import fastconv.nn.functional as FF
from fastconv import _C
from fastconv.bench import allocator

# (N, C, H, W, K): ResNet-50's bottleneck 1x1s at batch 8, and two larger products
SHAPES = [(8, 256, 56, 56, 64), (8, 64, 56, 56, 256), (8, 512, 28, 28, 128), (8, 128, 28, 28, 512),
          (8, 1024, 14, 14, 256), (8, 256, 14, 14, 1024), (8, 2048, 7, 7, 512), (8, 512, 7, 7, 2048),
          (8, 256, 56, 56, 256), (32, 512, 14, 14, 512)]


def median_seconds(fn, reps=7):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the table here")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    heap = allocator.steady_heap()  # as the bench: no page faults of freshly mmap()ed outputs in the timings
    rows = []
    for n, c, h, w, k in SHAPES:
        for layout in ("channels_last", "nchw"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            x = torch.randn(n, c, h, w).contiguous(memory_format=fmt)
            wt = torch.randn(k, c, 1, 1).contiguous(memory_format=fmt)
            flops = 2 * n * h * w * c * k
            FF.conv2d(x, wt), TF.conv2d(x, wt)  # warm-up
            rounds = []
            for _ in range(args.rounds):
                peak = _C.peak_fma_gflops(args.threads, 0.1, False)
                fc = flops / median_seconds(lambda: FF.conv2d(x, wt)) * 1e-9
                tc = flops / median_seconds(lambda: TF.conv2d(x, wt)) * 1e-9
                rounds.append({"peak_gflops": peak, "fastconv_gflops": fc, "torch_gflops": tc,
                               "fastconv_of_peak": fc / peak, "torch_of_peak": tc / peak})
            row = {"shape": [n, c, h, w, k], "layout": layout, "rounds": rounds,
                   "fastconv_of_peak": statistics.median(r["fastconv_of_peak"] for r in rounds),
                   "torch_of_peak": statistics.median(r["torch_of_peak"] for r in rounds)}
            rows.append(row)
            print(f"{n},{c},{h}x{w},{k} {layout:13s} fastconv {row['fastconv_of_peak']:.0%} of peak, torch "
                  f"{row['torch_of_peak']:.0%}  (rounds: " +
                  ", ".join(f"{r['fastconv_of_peak']:.0%}/{r['torch_of_peak']:.0%} at {r['peak_gflops']:.0f}"
                            for r in rounds) + ")", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                       "fastconv": fastconv.__version__, "threads": args.threads, "heap": heap,
                       "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
