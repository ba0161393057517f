"""Small interleaved timing check of fastconv's CPU convolutions against torch (same process, same data).

    PYTHONPATH=$PWD python benchmarks/conv_perf_check.py [--repeats 9] [--only NAME_SUBSTRING]

Each case times torch and fastconv alternately (fresh random data per case), reports medians in ms and
the ratio fastconv / torch (< 1 means fastconv is faster). fwd+bwd = forward plus torch.autograd.grad of
sum(y * g) for input, weight and bias.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastconv.nn.functional as FF

# name, (N, C, H, W), (K, R, S), stride, padding, groups
CASES = [
    ("3x3 64->64", (8, 64, 56, 56), (64, 3, 3), 1, 1, 1),
    ("1x1 256->64", (8, 256, 56, 56), (64, 1, 1), 1, 0, 1),
    ("depthwise 3x3", (8, 32, 112, 112), (32, 3, 3), 1, 1, 32),
    ("stem 7x7/2", (8, 3, 224, 224), (64, 7, 7), 2, 3, 1),
    ("3x3 64->64 b1", (1, 64, 56, 56), (64, 3, 3), 1, 1, 1),
]


def make(shape, kshape, groups, dtype, channels_last):
    n, c, h, w = shape
    k, r, s = kshape
    x = torch.randn(n, c, h, w, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    wt = torch.randn(k, c // groups, r, s, dtype=dtype) * 0.1
    b = torch.randn(k, dtype=dtype)
    return x.requires_grad_(), wt.requires_grad_(), b.requires_grad_()


def fwd(conv, x, w, b, stride, pad, groups):
    with torch.no_grad():
        return conv(x, w, b, stride, pad, 1, groups)


def fwd_bwd(conv, x, w, b, stride, pad, groups, g):
    y = conv(x, w, b, stride, pad, 1, groups)
    return torch.autograd.grad(y, (x, w, b), g)


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-double", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()} repeats={args.repeats}")
    print(f"{'layer':16s} {'layout':8s} {'dtype':8s} {'pass':8s} {'torch ms':>9s} {'fastconv ms':>12s} {'ratio':>6s}")
    variants = [(torch.float32, False), (torch.float32, True)]
    if not args.no_double:
        variants.append((torch.float64, False))
    for name, shape, kshape, stride, pad, groups in CASES:
        if args.only and args.only not in name:
            continue
        for dtype, cl in variants:
            if dtype == torch.float64 and name not in ("3x3 64->64",):
                continue
            x, w, b = make(shape, kshape, groups, dtype, cl)
            with torch.no_grad():
                g = torch.randn_like(F.conv2d(x, w, b, stride, pad, 1, groups))
            for pname in ("fwd", "fwd+bwd"):
                fns = {}
                for lib, conv in (("torch", F.conv2d), ("fastconv", FF.conv2d)):
                    if pname == "fwd":
                        fns[lib] = lambda conv=conv: fwd(conv, x, w, b, stride, pad, groups)
                    else:
                        fns[lib] = lambda conv=conv: fwd_bwd(conv, x, w, b, stride, pad, groups, g)
                for f in fns.values():  # warm-up (scratch buffers, thread pools)
                    f()
                times = {"torch": [], "fastconv": []}
                for _ in range(args.repeats):
                    for lib in ("torch", "fastconv"):
                        times[lib].append(timed(fns[lib]))
                t, f = statistics.median(times["torch"]), statistics.median(times["fastconv"])
                layout = "NHWC" if cl else "NCHW"
                dt = str(dtype).replace("torch.", "")
                print(f"{name:16s} {layout:8s} {dt:8s} {pname:8s} {t:9.2f} {f:12.2f} {f / t:6.2f}", flush=True)


if __name__ == "__main__":
    main()
