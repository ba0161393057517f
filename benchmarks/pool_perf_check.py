"""fastconv vs torch pooling on CPU, interleaved in one process (the machine is shared: compare ratios).

    PYTHONPATH=$PWD python benchmarks/pool_perf_check.py [--repeats 21] [--dtype float32] [--threads N]
        [--shape 8,64,112,112] [--extra] [--only SUBSTRING]

Each case runs the torch.nn module and fastconv.nn's module of the same name (as a model would: the input
requires grad, autograd on), both layouts (contiguous = NCHW, channels_last = NHWC). Passes:
  fwd    forward with autograd recording (what training runs; max pooling also saves its indices)
  bwd    the backward alone: torch.autograd.grad(y, x, gy, retain_graph=True) on a graph built once,
         so no forward and no accumulation into x.grad is timed
  infer  forward under torch.no_grad() (what evaluation runs)
Prints torch ms, fastconv ms and ratio = fastconv / torch (< 1: fastconv is faster), medians over repeats;
each repeat times torch and fastconv back to back. The input (25.7 MB at the default shape) fits this
machine's 32 MiB L3, so what ran just before a timed call decides whether it reads DRAM or cache:
--cache cold (default) reads a 64 MiB scratch buffer before every timed call (both libraries start from
DRAM), --cache hot repeats the call once untimed first (both start from cache), --cache none times the
calls back to back (the first version of this script; it favours whichever library runs after the one that
leaves the input in cache). --extra adds lp_pool2d, max_unpool2d and the 1-d
variants (1-d shape: (N, C, H * W)). A small --shape (e.g. 1,16,8,8) measures per-call overhead.
"""
import argparse
import statistics
import time

import torch

import fastconv.nn as fnn


def _pool_then(cls_name, *args, **kw):
    """Module factory: lib.<cls_name>(*args, **kw)."""
    return lambda lib: getattr(lib, cls_name)(*args, **kw)


class _Unpool(torch.nn.Module):
    """max_unpool of precomputed pooled values: the timed op is the unpool alone."""

    def __init__(self, pool, unpool):
        super().__init__()
        self.pool, self.unpool = pool, unpool
        self.indices = None

    def prepare(self, x):
        with torch.no_grad():
            y, self.indices = self.pool(x)
        return y.detach().requires_grad_(x.requires_grad)

    def forward(self, y):
        return self.unpool(y, self.indices)


def _unpool_case(dims):
    pool_cls, unpool_cls = f"MaxPool{dims}d", f"MaxUnpool{dims}d"

    def make(lib):
        return _Unpool(getattr(torch.nn, pool_cls)(2, 2, return_indices=True), getattr(lib, unpool_cls)(2, 2))
    return make


class _FirstOutput(torch.nn.Module):
    """MaxPool with return_indices=True, timed as a model uses it: both outputs, the values differentiated."""

    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def forward(self, x):
        return self.pool(x)[0]


def _with_indices(*args):
    return lambda lib: _FirstOutput(lib.MaxPool2d(*args, return_indices=True))


CASES = [  # (name, spatial dims, module factory)
    ("max_pool2d k2s2", 2, _pool_then("MaxPool2d", 2, 2)),
    ("max_pool2d k2s2 idx", 2, _with_indices(2, 2)),
    ("max_pool2d k3s2p1", 2, _pool_then("MaxPool2d", 3, 2, 1)),
    ("max_pool2d k3s2p1 idx", 2, _with_indices(3, 2, 1)),
    ("avg_pool2d k2s2", 2, _pool_then("AvgPool2d", 2, 2)),
    ("avg_pool2d k3s2p1", 2, _pool_then("AvgPool2d", 3, 2, 1)),
]
EXTRA = [
    ("lp_pool2d p2 k2s2", 2, _pool_then("LPPool2d", 2, 2, 2)),
    ("max_unpool2d k2s2", 2, _unpool_case(2)),
    ("max_pool1d k3s2p1", 1, _pool_then("MaxPool1d", 3, 2, 1)),
    ("avg_pool1d k3s2p1", 1, _pool_then("AvgPool1d", 3, 2, 1)),
    ("lp_pool1d p2 k2s2", 1, _pool_then("LPPool1d", 2, 2, 2)),
    ("max_unpool1d k2s2", 1, _unpool_case(1)),
]


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


_SCRATCH = []


def evict_caches():
    """Reads 64 MiB (twice the L3 of the machine this was tuned on): the next call starts from DRAM."""
    if not _SCRATCH:
        _SCRATCH.append(torch.rand(16 << 20))
    _SCRATCH[0].sum()


def measure(make, x_base, repeats, cache="cold"):
    """-> {pass: {lib: median ms}} for torch and fastconv, timed interleaved."""
    def timed_in_state(fn):
        if cache == "cold":
            evict_caches()
        elif cache == "hot":
            fn()
        return timed(fn)

    libs = {"torch": torch.nn, "fastconv": fnn}
    mods, xs, outs, grads = {}, {}, {}, {}
    for k, lib in libs.items():
        mods[k] = make(lib)
        x = x_base.clone().requires_grad_(True)
        xs[k] = mods[k].prepare(x) if isinstance(mods[k], _Unpool) else x
        outs[k] = mods[k](xs[k])
        grads[k] = torch.randn_like(outs[k])
        # warm-up of each pass
        torch.autograd.grad(outs[k], xs[k], grads[k], retain_graph=True)
        with torch.no_grad():
            mods[k](xs[k])
    times = {p: {k: [] for k in libs} for p in ("fwd", "bwd", "infer")}
    for _ in range(repeats):
        for k in libs:
            m, x, y, g = mods[k], xs[k], outs[k], grads[k]
            times["fwd"][k].append(timed_in_state(lambda: m(x)))
            times["bwd"][k].append(timed_in_state(lambda: torch.autograd.grad(y, x, g, retain_graph=True)))
            with torch.no_grad():
                times["infer"][k].append(timed_in_state(lambda: m(x)))
    return {p: {k: statistics.median(v) for k, v in t.items()} for p, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--shape", default="8,64,112,112", help="N,C,H,W of the 2-d cases")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    ap.add_argument("--extra", action="store_true", help="also lp_pool2d, max_unpool2d and the 1-d variants")
    ap.add_argument("--cache", choices=("cold", "hot", "none"), default="cold",
                    help="cache state before each timed call (see above)")
    ap.add_argument("--only", default="", help="run the cases whose name contains this string")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    n, c, h, w = (int(s) for s in args.shape.split(","))
    cases = [cs for cs in CASES + (EXTRA if args.extra else []) if args.only in cs[0]]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, shape {(n, c, h, w)}, {args.dtype}, "
          f"median of {args.repeats}, cache {args.cache}; bwd = autograd.grad with a retained graph (backward alone)")
    print(f"{'case':<24}{'layout':<15}{'pass':<7}{'torch ms':>10}{'fastconv ms':>13}{'ratio':>8}")
    torch.manual_seed(0)
    for name, dims, make in cases:
        layouts = ("contiguous", "channels_last") if dims == 2 else ("contiguous",)
        for layout in layouts:
            if dims == 2:
                fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
                x = torch.randn(n, c, h, w, dtype=dtype).contiguous(memory_format=fmt)
            else:
                x = torch.randn(n, c, h * w, dtype=dtype)
            res = measure(make, x, args.repeats, args.cache)
            for pas, r in res.items():
                t, f = r["torch"], r["fastconv"]
                print(f"{name:<24}{layout:<15}{pas:<7}{t:>10.3f}{f:>13.3f}{f / t:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
