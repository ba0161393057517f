"""fastconv vs torch adaptive pooling on CPU, float32: forward and backward, NCHW and channels_last.

Measured interleaved in one process (fastconv and torch alternate round by round) and reported as
medians over rounds, since the machine's cores are shared and timings drift. Backward is the full
autograd backward (torch.autograd.grad with a retained graph), what a training step pays.

    PYTHONPATH=$PWD python benchmarks/adaptive_pool_perf_check.py [--rounds 30] [--max]
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as TF

import fastconv.nn.functional as F

CASES = [  # (name, shape, output_size)
    ("ResNet head 512x7x7->1", (8, 512, 7, 7), 1),
    ("64x56x56->7x7", (8, 64, 56, 56), 7),
    ("2048x7x7->1", (8, 2048, 7, 7), 1),
]


def per_call(fn, iters):
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters


def compare(ours, theirs, rounds, iters):
    for _ in range(3):  # warm up
        ours(), theirs()
    a, b = [], []
    for _ in range(rounds):
        a.append(per_call(ours, iters))
        b.append(per_call(theirs, iters))
    return statistics.median(a), statistics.median(b)


def callables(kind, x, out, direction):
    if kind == "avg":
        f_ours, f_torch = (lambda t: F.adaptive_avg_pool2d(t, out)), (lambda t: TF.adaptive_avg_pool2d(t, out))
    else:
        f_ours, f_torch = (lambda t: F.adaptive_max_pool2d(t, out)), (lambda t: TF.adaptive_max_pool2d(t, out))
    if direction == "fwd":
        def run(f):
            def call():
                with torch.no_grad():
                    f(x)
            return call
        return run(f_ours), run(f_torch)
    xg = x.detach().requires_grad_()
    y_ours, y_torch = f_ours(xg), f_torch(xg)
    g = torch.randn_like(y_torch)
    return ((lambda: torch.autograd.grad(y_ours, xg, g, retain_graph=True)),
            (lambda: torch.autograd.grad(y_torch, xg, g, retain_graph=True)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--max", action="store_true", help="also time adaptive max pooling")
    args = ap.parse_args()
    torch.manual_seed(0)
    kinds = ["avg", "max"] if args.max else ["avg"]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, medians of {args.rounds} rounds")
    print(f"| op | case | layout | dir | fastconv us | torch us | torch/fastconv |")
    print("|---|---|---|---|---:|---:|---:|")
    for kind in kinds:
        for name, shape, out in CASES:
            for layout in ("NCHW", "NHWC"):
                x = torch.randn(shape)
                if layout == "NHWC":
                    x = x.to(memory_format=torch.channels_last)
                nbytes = x.numel() * 4
                iters = max(5, min(200, int(2e8 / max(nbytes, 1) / 10)))
                for direction in ("fwd", "bwd"):
                    ours, theirs = callables(kind, x, out, direction)
                    a, b = compare(ours, theirs, args.rounds, iters)
                    print(f"| {kind} | {name} | {layout} | {direction} | {a * 1e6:.1f} | {b * 1e6:.1f} | {b / a:.2f} |",
                          flush=True)


if __name__ == "__main__":
    main()
