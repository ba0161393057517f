"""Interleaved timing check of fastconv's CPU convolutions with few input channels against torch (same
process, fresh random data per case, medians): LeNet-5 (digits demo: batch 32 training, 256 evaluation,
1 inference), the small MNIST CNN and the ResNet stem, float32, NCHW and NHWC, fwd and fwd+bwd.

    PYTHONPATH=$PWD python benchmarks/small_conv_check.py [--repeats 15] [--only NAME_SUBSTRING] [--threads N]

Ratio = fastconv / torch (< 1: fastconv faster). fwd+bwd = forward plus torch.autograd.grad of sum(y * g)
for the weight and bias, and for the input too except on first layers (an image batch needs no gradient).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastconv.nn.functional as FF

# name, (N, C, H, W), (K, R, S), stride, padding, input needs a gradient
CASES = [
    ("lenet C1 32 b32", (32, 1, 32, 32), (6, 5, 5), 1, 0, False),
    ("lenet C1 32 b256", (256, 1, 32, 32), (6, 5, 5), 1, 0, False),
    ("lenet C1 32 b1", (1, 1, 32, 32), (6, 5, 5), 1, 0, False),
    ("lenet C1 28 b32", (32, 1, 28, 28), (6, 5, 5), 1, 0, False),
    ("lenet C3 b32", (32, 6, 14, 14), (16, 5, 5), 1, 0, True),
    ("lenet C3 b256", (256, 6, 14, 14), (16, 5, 5), 1, 0, True),
    ("lenet C3 b1", (1, 6, 14, 14), (16, 5, 5), 1, 0, True),
    ("lenet C5 b32", (32, 16, 5, 5), (120, 5, 5), 1, 0, True),
    ("mnist 1->16 b32", (32, 1, 28, 28), (16, 5, 5), 1, 2, False),
    ("mnist 16->32 b32", (32, 16, 14, 14), (32, 5, 5), 1, 2, True),
    ("mnist 1->32 b32", (32, 1, 28, 28), (32, 5, 5), 1, 2, False),
    ("mnist 32->64 b32", (32, 32, 14, 14), (64, 5, 5), 1, 2, True),
    ("stem 7x7/2 b8", (8, 3, 224, 224), (64, 7, 7), 2, 3, False),
    ("stem 7x7/2 b1", (1, 3, 224, 224), (64, 7, 7), 2, 3, False),
]


def make(shape, kshape, channels_last, input_grad):
    n, c, h, w = shape
    k, r, s = kshape
    x = torch.randn(n, c, h, w)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    wt = (torch.randn(k, c, r, s) * 0.1).requires_grad_()
    b = torch.randn(k).requires_grad_()
    return x.requires_grad_(input_grad), wt, b


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--only", default="")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (default: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()} repeats={args.repeats}")
    print(f"{'layer':18s} {'layout':6s} {'pass':8s} {'torch ms':>9s} {'fastconv ms':>12s} {'ratio':>6s}")
    for name, shape, kshape, stride, pad, input_grad in CASES:
        if args.only and args.only not in name:
            continue
        for cl in (False, True):
            x, w, b = make(shape, kshape, cl, input_grad)
            with torch.no_grad():
                g = torch.randn_like(F.conv2d(x, w, b, stride, pad))
            leaves = (x, w, b) if input_grad else (w, b)
            for pname in ("fwd", "fwd+bwd"):
                fns = {}
                for lib, conv in (("torch", F.conv2d), ("fastconv", FF.conv2d)):
                    if pname == "fwd":
                        def fn(conv=conv):
                            with torch.no_grad():
                                return conv(x, w, b, stride, pad)
                    else:
                        def fn(conv=conv):
                            return torch.autograd.grad(conv(x, w, b, stride, pad), leaves, g)
                    fns[lib] = fn
                for f in fns.values():  # warm-up (scratch buffers, thread pools)
                    f()
                    f()
                times = {"torch": [], "fastconv": []}
                for _ in range(args.repeats):
                    for lib in ("torch", "fastconv"):
                        times[lib].append(timed(fns[lib]))
                t, f = statistics.median(times["torch"]), statistics.median(times["fastconv"])
                layout = "NHWC" if cl else "NCHW"
                print(f"{name:18s} {layout:6s} {pname:8s} {t:9.3f} {f:12.3f} {f / t:6.2f}", flush=True)


if __name__ == "__main__":
    main()
