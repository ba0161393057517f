"""Tiny convolutions (LeNet-sized, batch 1): fastconv with torch's thread count vs one thread, and torch.

    PYTHONPATH=$PWD python benchmarks/tiny_conv_threads.py [--repeats 201]

For problems this small an OpenMP team costs more than it saves (a whole scheduler time slice when the
cores are shared), so fastconv's kernels run serially below a work threshold (csrc/common/parallel.h).
Rows: medians in microseconds of forward and of forward+backward (input, weight, bias gradients),
measured interleaved: fastconv at 2 threads, fastconv at 1 thread, torch at 2 threads.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F

import fastconv.nn.functional as FF

# name, (N, C, H, W), (K, R, S), stride, padding, groups
CASES = [
    ("LeNet conv1 1x1x32x32 5x5->6", (1, 1, 32, 32), (6, 5, 5), 1, 0, 1),
    ("LeNet conv2 1x6x14x14 5x5->16", (1, 6, 14, 14), (16, 5, 5), 1, 0, 1),
    ("1x6x28x28 3x3->6 pad1", (1, 6, 28, 28), (6, 3, 3), 1, 1, 1),
    ("1x16x8x8 depthwise 3x3", (1, 16, 8, 8), (16, 3, 3), 1, 1, 16),
    ("4x16x16x16 3x3->16", (4, 16, 16, 16), (16, 3, 3), 1, 1, 1),
]


def run(conv, x, w, b, stride, pad, groups, g, backward):
    if not backward:
        with torch.no_grad():
            return conv(x, w, b, stride, pad, 1, groups)
    y = conv(x, w, b, stride, pad, 1, groups)
    return torch.autograd.grad(y, (x, w, b), g)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=201)
    args = ap.parse_args()
    torch.manual_seed(0)
    nt = torch.get_num_threads()
    print(f"threads={nt} repeats={args.repeats} (medians, us)")
    print(f"{'case':32s} {'pass':8s} {'fc ' + str(nt) + 'thr':>9s} {'fc 1thr':>9s} {'torch':>9s}")
    for name, shape, (k, r, s), stride, pad, groups in CASES:
        x = torch.randn(*shape, requires_grad=True)
        w = (torch.randn(k, shape[1] // groups, r, s) * 0.1).requires_grad_()
        b = torch.randn(k, requires_grad=True)
        with torch.no_grad():
            g = torch.randn_like(F.conv2d(x, w, b, stride, pad, 1, groups))
        for backward in (False, True):
            variants = {"fc_nt": (FF.conv2d, nt), "fc_1": (FF.conv2d, 1), "torch": (F.conv2d, nt)}
            times = {key: [] for key in variants}
            for _ in range(args.repeats + 5):
                for key, (conv, threads) in variants.items():
                    torch.set_num_threads(threads)
                    t0 = time.perf_counter()
                    run(conv, x, w, b, stride, pad, groups, g, backward)
                    times[key].append((time.perf_counter() - t0) * 1e6)
            torch.set_num_threads(nt)
            med = {key: statistics.median(v[5:]) for key, v in times.items()}
            label = "fwd+bwd" if backward else "fwd"
            print(f"{name:32s} {label:8s} {med['fc_nt']:9.1f} {med['fc_1']:9.1f} {med['torch']:9.1f}", flush=True)


if __name__ == "__main__":
    main()
