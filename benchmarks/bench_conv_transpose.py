"""Transposed convolution: fastconv vs torch, interleaved in one process, medians, float32.

    PYTHONPATH=$PWD python benchmarks/bench_conv_transpose.py [--reps 7]

Prints one row per (shape, layout, pass): medians in ms and torch/fastconv (> 1 means fastconv is faster).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastconv.nn.functional as FF

# name: (input shape, weight shape, stride, padding)
SHAPES = {
    "U-Net up 8x128x28x28->64 k2 s2": ((8, 128, 28, 28), (128, 64, 2, 2), 2, 0),
    "DCGAN 8x256x8x8->128 k4 s2 p1": ((8, 256, 8, 8), (256, 128, 4, 4), 2, 1),
}


def _run(fn, x, w, b, stride, padding, backward, gy):
    t = time.perf_counter()
    y = fn(x, w, b, stride=stride, padding=padding)
    if backward:
        torch.autograd.grad(y, (x, w, b), gy)
    return time.perf_counter() - t


def bench(reps):
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, median of {reps} (interleaved)")
    print(f"{'shape':34s} {'layout':14s} {'pass':9s} {'fastconv ms':>12s} {'torch ms':>10s} {'torch/fc':>9s}")
    for name, (xs, ws, stride, padding) in SHAPES.items():
        for layout in ("NCHW", "channels_last"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            x = torch.randn(xs).contiguous(memory_format=fmt).requires_grad_()
            w = (torch.randn(ws) * 0.05).requires_grad_()
            b = torch.randn(ws[1]).requires_grad_()
            with torch.no_grad():
                y = F.conv_transpose2d(x, w, b, stride=stride, padding=padding)
                err = (FF.conv_transpose2d(x, w, b, stride=stride, padding=padding) - y).abs().max().item()
            gy = torch.randn_like(y)
            for backward in (False, True):
                times = {"fastconv": [], "torch": []}
                for fn in (FF.conv_transpose2d, F.conv_transpose2d):  # warm-up
                    _run(fn, x, w, b, stride, padding, backward, gy)
                for _ in range(reps):
                    times["fastconv"].append(_run(FF.conv_transpose2d, x, w, b, stride, padding, backward, gy))
                    times["torch"].append(_run(F.conv_transpose2d, x, w, b, stride, padding, backward, gy))
                fc, th = (statistics.median(times[k]) * 1e3 for k in ("fastconv", "torch"))
                label = "fwd+bwd" if backward else "fwd"
                print(f"{name:34s} {layout:14s} {label:9s} {fc:12.2f} {th:10.2f} {th / fc:9.2f}"
                      + ("" if backward else f"   (max |diff| {err:.1e})"), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    bench(parser.parse_args().reps)
