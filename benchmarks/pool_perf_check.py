"""fastconv vs torch pooling on CPU, interleaved in one process (the machine is shared: compare ratios).

    PYTHONPATH=$PWD python benchmarks/pool_perf_check.py [--repeats 15] [--dtype float32] [--threads N]

Shape: N=8, C=64, 112x112 (ResNet stem). Prints op, layout, pass, torch ms, fastconv ms, ratio (fastconv /
torch, < 1 is faster), medians over repeats. Backward times only the backward (the graph is built once and
run with retain_graph).
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as TF

import fastconv.nn.functional as FF

CASES = [
    ("max_pool2d k2 s2", lambda F, x: F.max_pool2d(x, 2, 2)),
    ("max_pool2d k3 s2 p1", lambda F, x: F.max_pool2d(x, 3, 2, 1)),
    ("avg_pool2d k2 s2", lambda F, x: F.avg_pool2d(x, 2, 2)),
    ("avg_pool2d k3 s2 p1", lambda F, x: F.avg_pool2d(x, 3, 2, 1)),
]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--shape", default="8,64,112,112")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    shape = tuple(int(s) for s in args.shape.split(","))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, shape {shape}, {args.dtype}, "
          f"median of {args.repeats}")
    print(f"{'op':<22}{'layout':<15}{'pass':<10}{'torch ms':>10}{'fastconv ms':>13}{'ratio':>8}")
    for name, body in CASES:
        for layout in ("contiguous", "channels_last"):
            fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
            base = torch.randn(shape, dtype=dtype).contiguous(memory_format=fmt)
            xs = {lib: base.clone().requires_grad_(True) for lib in ("torch", "fastconv")}
            libs = {"torch": TF, "fastconv": FF}
            fwd = {k: [] for k in libs}
            bwd = {k: [] for k in libs}
            outs = {k: body(libs[k], xs[k]) for k in libs}
            grads = {k: torch.randn_like(outs[k]) for k in libs}
            for k in libs:  # warm-up
                body(libs[k], xs[k])
                outs[k].backward(grads[k], retain_graph=True)
            for _ in range(args.repeats):
                for k in libs:  # interleaved
                    with torch.no_grad():
                        fwd[k].append(timed(lambda: body(libs[k], xs[k])))
                    bwd[k].append(timed(lambda: outs[k].backward(grads[k], retain_graph=True)))
            for pas, table in (("forward", fwd), ("backward", bwd)):
                t, f = statistics.median(table["torch"]), statistics.median(table["fastconv"])
                print(f"{name:<22}{layout:<15}{pas:<10}{t:>10.3f}{f:>13.3f}{f / t:>8.2f}")


if __name__ == "__main__":
    main()
