"""Whole-model timing, fastconv-converted against torch: inference (eval-mode no_grad forward) and a training step
(forward, cross-entropy, backward, SGD step), batch 8 at 224x224, NCHW, on fastconv.models networks built
with torch.nn layers and converted with fastconv.convert (parameters identical). Medians of a few steps after
two warm-up steps; the interim check until `python -m fastconv bench --models` exists (issue 12).

    python benchmarks/model_step_check.py [--models resnet18,vgg11] [--threads 2] [--batch 8]
"""
import argparse
import copy
import statistics
import time

import torch

import fastconv


def step_time(model, x, y, train, reps):
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        if train:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)

    step()
    step()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet18,vgg11")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        torch.manual_seed(0)
        ref = getattr(fastconv.models, name)(layers=torch.nn)
        fc, _ = fastconv.convert(copy.deepcopy(ref))
        x = torch.randn(args.batch, 3, 224, 224)
        y = torch.randint(0, 10, (args.batch,))
        with torch.no_grad():  # same numbers first (eval mode: BatchNorm uses its running statistics)
            torch.testing.assert_close(fc.eval()(x), ref.eval()(x), rtol=1e-3, atol=1e-3)
        for train in (False, True):  # inference in eval mode, the training step in train mode
            fc.train(train), ref.train(train)
            a = step_time(ref, x, y, train, args.reps)
            b = step_time(fc, x, y, train, args.reps)
            print(f"{name:10s} {'training step' if train else 'inference':13s} torch {a * 1e3:7.0f} ms  "
                  f"fastconv {b * 1e3:7.0f} ms  x{a / b:.2f}", flush=True)


if __name__ == "__main__":
    main()
