"""Cost of denormal inputs, fastconv against torch, in one process (docs/denormals.md).

    python benchmarks/denormal_check.py [--repeats 15]

Times average pooling, max pooling and a 3x3 convolution on normal inputs and on the same inputs scaled
into the denormal range (x * 1e-39), NCHW and channels_last, medians of --repeats calls, 2 threads. Neither
library flushes denormals by default (see csrc/common/denormal_guard.h), so the ratio denormal / normal is
what a user with vanishing activations pays in each."""
import argparse
import time

import torch
import torch.nn.functional as T

import fastconv.nn.functional as F


def median_ms(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2] * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    pool_in = torch.randn(8, 64, 112, 112)
    conv_in, weight = torch.randn(4, 64, 56, 56), torch.randn(64, 64, 3, 3)
    cases = [
        ("avg_pool2d k3 s1 p1, 8x64x112x112", pool_in, lambda M, x: M.avg_pool2d(x, 3, 1, 1)),
        ("max_pool2d k3 s2 p1, 8x64x112x112", pool_in, lambda M, x: M.max_pool2d(x, 3, 2, 1)),
        ("conv2d 3x3 64->64, 4x64x56x56", conv_in, lambda M, x: M.conv2d(x, weight, padding=1)),
    ]
    print(f"{'case':36} {'layout':6} {'library':9} {'normal ms':>10} {'denormal ms':>12} {'ratio':>6}")
    for name, x, fn in cases:
        for layout in ("nchw", "nhwc"):
            normal = x if layout == "nchw" else x.contiguous(memory_format=torch.channels_last)
            tiny = normal * 1e-39
            assert (tiny != 0).any() and (tiny.abs() < torch.finfo(torch.float32).tiny).all()
            for lib, M in (("torch", T), ("fastconv", F)):
                a = median_ms(lambda: fn(M, normal), args.repeats)
                b = median_ms(lambda: fn(M, tiny), args.repeats)
                print(f"{name:36} {layout:6} {lib:9} {a:10.2f} {b:12.2f} {b / a:6.2f}")


if __name__ == "__main__":
    main()
