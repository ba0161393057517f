"""Command line: `python -m fastconv.bench [options]` (also `python -m fastconv bench [options]`).

Runs the zoo's cases with fastconv and torch side by side, prints a table, optionally writes JSON and a plot.
Exit code: 0 all run cases passed their correctness check, 1 some FAIL/error, 2 bad arguments."""
import argparse
import datetime
import os
import sys
import time

import torch

from . import zoo
from .runner import TimingPolicy

CPU_DTYPES = ("float32", "float64")
CUDA_DTYPES = ("float16", "bfloat16", "float32")
DEFAULT_BUDGET_S = {"quick": 1.5, "full": 3.0}  # per case and mode, torch + fastconv together


def build_parser():
    p = argparse.ArgumentParser(prog="python -m fastconv.bench",
                                description="fastconv vs PyTorch on the layers of classic CNNs.")
    p.add_argument("--suite", choices=zoo.SUITES, default="quick", help="quick (representative cases) or full")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--dtype", choices=("float32", "float64", "float16", "bfloat16"), default="float32",
                   help="cpu: float32|float64; cuda: float16|bfloat16|float32")
    p.add_argument("--layout", choices=("nchw", "nhwc", "both"), default="nchw",
                   help="memory format of 2-d activations (nhwc = torch.channels_last); 1-d cases run once")
    p.add_argument("--ops", default="", help="comma-separated op filter, e.g. conv2d,max_pool2d")
    p.add_argument("--case", default="", help="comma-separated case names (or prefixes ending in *), any suite")
    p.add_argument("--max-cases", type=int, default=None, help="run at most this many of the selected cases")
    p.add_argument("--json", metavar="PATH", help="write every raw figure and the machine description here")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of the speed-ups here")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's current)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds per case and mode (default: quick 1.5, full 3.0)")
    p.add_argument("--min-repeats", type=int, default=5)
    p.add_argument("--remeasure", type=int, default=2, metavar="N",
                   help="time a case whose timings are unstable again, with twice the budget, up to N times "
                        "(default 2); still unstable, it is marked noisy and left out of the geometric means")
    p.add_argument("--no-probes", action="store_true", help="skip the peak probes (no %% of peak)")
    p.add_argument("--allow-tf32", action="store_true",
                   help="cuda float32: let cuDNN use TF32 (off by default: an fp32 comparison)")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    m = p.add_argument_group("whole networks (--models)")
    m.add_argument("--models", nargs="?", const="all", default=None, metavar="LIST",
                   help="time whole networks instead of layers: comma-separated names of "
                        "resnet18, resnet50, vgg16, mobilenet_v2, densenet121, unet (default: all)")
    m.add_argument("--batch", type=int, default=8, help="--models: batch size, at least 2 (default 8)")
    m.add_argument("--size", type=int, default=224, help="--models: input height and width (default 224)")
    m.add_argument("--reps", type=int, default=5, help="--models: timed steps per network and mode (default 5)")
    m.add_argument("--fold-bn", action="store_true",
                   help="--models: also time inference of fastconv's network with its eval-mode BatchNorms folded into "
                        "the convolutions (fastconv.fold_batchnorm) against torch's network as it is")
    m.add_argument("--system-malloc", action="store_true",
                   help="layers and --models, CPU: leave glibc's mmap/trim thresholds as they are (by default they "
                        "are raised so that freed tensors stay in the heap: see fastconv/bench/allocator.py)")
    return p


def _loadavg():
    """(1, 5, 15)-minute load averages, or None where the OS has none: a busy machine explains noisy times."""
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


def _split(s):
    return [x.strip() for x in s.split(",") if x.strip()]


def _check_device(args):
    """-> error message or None."""
    if args.device == "cpu":
        if args.dtype not in CPU_DTYPES:
            return f"--dtype {args.dtype} is not benchmarked on the CPU (use {' or '.join(CPU_DTYPES)})"
        return None
    if args.dtype not in CUDA_DTYPES:
        return f"--dtype {args.dtype} is not benchmarked on CUDA (use {', '.join(CUDA_DTYPES)})"
    if not torch.cuda.is_available():
        return (f"--device cuda: no CUDA device is available (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); run with --device cpu")
    import fastconv

    if not fastconv.build_info()["cuda_built"]:
        return ("--device cuda: this fastconv was built without its CUDA kernels "
                "(rebuild where nvcc is found, or with FORCE_CUDA=1)")
    return None


def _check_optional(args):
    """-> error message or None: what --plot will import, checked before anything is measured."""
    from .._optional import missing_message

    return missing_message("bench", ["numpy", "matplotlib"], "--plot") if args.plot else None


def main(argv=None):
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    err = _check_device(args) or _check_optional(args)
    if err:
        print(f"fastconv.bench: {err}", file=sys.stderr)
        return 2
    if args.models is not None:
        return run_models(args)
    try:
        cases = zoo.select(zoo.load(), args.suite, _split(args.ops), _split(args.case), args.max_cases)
    except ValueError as exc:
        print(f"fastconv.bench: {exc}", file=sys.stderr)
        return 2
    if args.list:
        for c in cases:
            print(f"{c.name:36s} {c.op:22s} {c.network:24s} {c.input_shape(args.device)} {c.params}")
        return 0
    if not cases:
        print("fastconv.bench: no case matches the selection", file=sys.stderr)
        return 2
    return run(args, cases)


def run(args, cases):
    import fastconv  # noqa: F401  (imports the extension and registers the ops)

    from .._optional import progress_bar
    from . import machine, plot, probes, report, stability
    from .suite import run_case

    t0 = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_start = _loadavg()
    if load_start and load_start[0] > (os.cpu_count() or 1):
        print(f"fastconv.bench: warning: the machine is busy (1-min load average {load_start[0]:.1f} on "
              f"{os.cpu_count()} CPUs); absolute times will suffer, the interleaved ratios less, and unstable "
              "cases are measured again or marked noisy", file=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    heap = _heap_policy(args) if device.type == "cpu" else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # torch at its best: cuDNN picks its fastest algorithm
        torch.backends.cudnn.allow_tf32 = args.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = args.allow_tf32
    policy = TimingPolicy(budget_s=args.budget or DEFAULT_BUDGET_S[args.suite], min_repeats=args.min_repeats,
                          remeasure=args.remeasure)
    layouts = ["nchw", "nhwc"] if args.layout == "both" else [args.layout]
    jobs = []
    for case in cases:
        seen = set()
        for layout in layouts:
            effective = layout if case.spatial_dims == 2 else "ncl"
            if effective not in seen:
                seen.add(effective)
                jobs.append((case, layout))
    peaks = None
    if not args.no_probes:
        print("fastconv.bench: measuring this machine's peak (FMA, memory bandwidth)...", file=sys.stderr)
        peaks = probes.cpu_probes(threads) if device.type == "cpu" else probes.cuda_probes(device)
    results = []
    with progress_bar("bench", iterable=jobs, desc="fastconv.bench", unit="case") as bar:
        for case, layout in bar:
            bar.set_postfix_str(f"{case.name} [{layout}]")
            rec = run_case(case, device, dtype, layout, policy, peaks)
            results.append(rec)
            if rec["status"] != "ok":  # the table lists them too; this says so while the suite still runs
                bar.write(f"fastconv.bench: {case.name} [{rec['layout']}] {rec['status']}: {rec['message']}",
                          file=sys.stderr)
    elapsed = time.perf_counter() - t0
    config = {"suite": args.suite, "device": args.device, "dtype": args.dtype, "layout": args.layout,
              "ops": _split(args.ops), "cases": _split(args.case), "max_cases": args.max_cases,
              "threads": threads, "budget_s": policy.budget_s, "min_repeats": policy.min_repeats,
              "max_repeats": policy.max_repeats, "warmup_calls": policy.warmup_calls,
              "remeasure": policy.remeasure, "noise_limits": stability.LIMITS,
              "started_utc": started,
              "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "argv": sys.argv, "loadavg_start": load_start, "loadavg_end": _loadavg()}
    if heap is not None:
        config["heap"] = heap
    if device.type == "cuda":
        config.update(cudnn_benchmark=True, allow_tf32=args.allow_tf32)
    print(report.table(results, config))
    if heap is not None:
        print(_heap_line(heap))
    print(f"total {elapsed:.1f} s", file=sys.stderr)
    _write_outputs(args, lambda: report.document(results, config, machine.describe(device, threads), peaks, elapsed),
                   lambda path: plot.plot(results, path, f"fastconv vs torch, {args.suite} suite, {args.device} "
                                                         f"{args.dtype}, {threads} threads"))
    return 1 if any(r["status"] in ("FAIL", "error") for r in results) else 0


def _heap_policy(args):
    """The CPU heap the timings run on: glibc's thresholds raised (allocator.steady_heap), unless --system-malloc.
    Layers too: a 26 MB output that glibc mmap()s afresh for every call page-faults it back in, and that cost
    landed on whichever library wrote the block first and depended on the process's heap history (MobileNet's
    32 -> 64 1x1 forward: torch 5.0 ms in one run, 19-31 ms in the next ones, fastconv 6.4-13 ms)."""
    from . import allocator

    return {"steady_heap": False, "reason": "--system-malloc"} if args.system_malloc else allocator.steady_heap()


def _heap_line(heap):
    return ("heap: glibc mmap/trim thresholds raised to 1 GB (freed tensors stay in the heap)" if heap["steady_heap"]
            else f"heap: as the system set it ({heap['reason']})")


def _write_outputs(args, make_doc, draw):
    """--json and --plot: the JSON document and the picture, each announced on stderr."""
    from . import report

    if args.json:
        report.write_json(args.json, make_doc())
        print(f"fastconv.bench: wrote {args.json}", file=sys.stderr)
    if args.plot:
        draw(args.plot)
        print(f"fastconv.bench: wrote {args.plot}", file=sys.stderr)


def run_models(args):
    """--models: whole networks (fastconv/bench/models.py)."""
    import fastconv  # noqa: F401

    from . import machine, models

    if args.device != "cpu" or args.dtype != "float32":
        print("fastconv.bench: --models runs on the CPU in float32", file=sys.stderr)
        return 2
    names = models.DEFAULT_MODELS if args.models == "all" else tuple(_split(args.models))
    unknown = [n for n in names if n not in models.MODELS]
    if unknown or not names:
        print(f"fastconv.bench: unknown model(s) {', '.join(unknown) or '(none given)'}; "
              f"choose from {', '.join(models.MODELS)}", file=sys.stderr)
        return 2
    if args.batch < 2 or args.size < 32 or args.reps < 1:  # batch 2: training-mode BatchNorm needs it
        print("fastconv.bench: --models needs --batch >= 2, --size >= 32 and --reps >= 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    heap = _heap_policy(args)
    layouts = ["nchw", "nhwc"] if args.layout == "both" else [args.layout]
    t0 = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_start = _loadavg()
    results = models.run_models(names, args.batch, args.size, layouts, args.reps, warmup=1,
                                progress=lambda msg: print(f"fastconv.bench: {msg}", file=sys.stderr, flush=True),
                                fold_bn=args.fold_bn)
    elapsed = time.perf_counter() - t0
    print(models.table(results))
    print(_heap_line(heap))
    config = {"models": list(names), "batch": args.batch, "size": args.size, "layout": args.layout,
              "reps": args.reps, "warmup_steps": 1, "threads": threads, "started_utc": started,
              "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "argv": sys.argv, "loadavg_start": load_start, "loadavg_end": _loadavg(),
              "winograd_weight_cache_mb": fastconv.backends.cpu.winograd_weight_cache_mb, "heap": heap,
              "fold_bn": args.fold_bn}
    _write_outputs(args, lambda: {"schema": 1, "kind": "models", "config": config,
                                  "machine": machine.describe(torch.device("cpu"), threads),
                                  "summary": models.summary(results), "elapsed_s": elapsed, "results": results},
                   lambda path: models.plot(results, path, f"whole networks, fastconv vs torch: batch {args.batch}, "
                                                           f"{args.size}x{args.size}, float32, {threads} threads"))
    return 1 if any(r["status"] != "ok" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
