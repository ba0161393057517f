"""`python -m fastconv bench --models`: whole networks, fastconv against torch.

Each network of fastconv.models is built once on torch.nn layers and converted with fastconv.convert (the
same parameters). After a same-numbers check (eval mode: outputs, loss and first-layer weight gradient of one backward
pass, fastconv and torch in float32 against torch in float64), both are timed, interleaved in this process on fresh batches: inference (eval mode,
no_grad forward) and a training step (train mode: forward, loss, backward, SGD step), NCHW and channels_last.
"""
import copy
import math
import statistics
import time

import torch
import torch.nn.functional as TF

import fastconv
from fastconv import models as zoo_models

# name -> (builder taking the layers module and the input size, task)
MODELS = {
    "resnet18": (lambda L, size: zoo_models.resnet18(layers=L), "classify"),
    "resnet50": (lambda L, size: zoo_models.resnet50(layers=L), "classify"),
    "vgg16": (lambda L, size: zoo_models.vgg16(layers=L, input_size=size), "classify"),
    "mobilenet_v2": (lambda L, size: zoo_models.MobileNetV2(layers=L), "classify"),
    "densenet121": (lambda L, size: zoo_models.densenet121(layers=L), "classify"),
    "unet": (lambda L, size: zoo_models.UNet(in_channels=3, num_classes=2, layers=L), "segment"),
}
DEFAULT_MODELS = tuple(MODELS)
# The check compares both float32 networks with the torch network in float64, on the first CHECK_BATCH samples.
# fastconv passes when each of its errors is within the tolerance or within TORCH_ERROR_FACTOR times torch's own
# float32 error (deep ReLU / max-pool nets route gradients by comparisons that rounding can flip: torch's own
# first-layer gradient of VGG-16 is off by ~1e-2 at initialisation).
CHECK_BATCH = 2
# inference_bn_folded (--fold-bn): fastconv's model with BatchNorm folded (fastconv.fold_batchnorm) against torch's
MODES = ("inference", "training_step", "inference_bn_folded")
TOLERANCE = {"output": 1e-4, "loss": 1e-4, "first_weight_grad": 1e-3}
TORCH_ERROR_FACTOR = 10.0


def _rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


class _Workload:
    """Batches and targets of one network at one layout (fresh data per timed step, rotated)."""

    def __init__(self, task, batch, size, layout, count, seed):
        g = torch.Generator().manual_seed(seed)
        fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
        self.task = task
        self.inputs = [torch.randn(batch, 3, size, size, generator=g).contiguous(memory_format=fmt)
                       for _ in range(count)]
        shape = (batch,) if task == "classify" else (batch, size, size)
        high = 1000 if task == "classify" else 2
        self.targets = [torch.randint(0, high, shape, generator=g) for _ in range(count)]

    def loss(self, out, i):
        return TF.cross_entropy(out, self.targets[i % len(self.targets)])


def _first_conv_weight(model):
    for m in model.modules():
        if hasattr(m, "weight") and getattr(m.weight, "dim", lambda: 0)() == 4:
            return m.weight
    raise ValueError("no convolution in the model")


def _eval_pass(model, x, work):
    """Eval-mode output, loss and first-layer weight gradient of one backward pass."""
    model.eval()
    model.zero_grad()
    out = model(x)
    loss = work.loss(out, 0)
    loss.backward()
    grad = _first_conv_weight(model).grad.clone()
    model.zero_grad()
    return {"output": out.detach(), "loss": loss.detach(), "first_weight_grad": grad}


def check(ref, fc, work):
    """Same numbers, in eval mode (train-mode BatchNorm on a small batch divides by near-zero variances):
    output, loss and first-layer weight gradient of fastconv and of torch in float32 against torch in
    float64, on the first CHECK_BATCH samples."""
    x = work.inputs[0][:CHECK_BATCH]
    saved = work.targets[0]
    work.targets[0] = saved[:CHECK_BATCH]
    try:
        ref64 = copy.deepcopy(ref).double()
        want = _eval_pass(ref64, x.double(), work)
        got_torch, got_fc = _eval_pass(ref, x, work), _eval_pass(fc, x, work)
    finally:
        work.targets[0] = saved
    del ref64
    fc_err = {k: _rel(got_fc[k], want[k]) for k in TOLERANCE}
    torch_err = {k: _rel(got_torch[k], want[k]) for k in TOLERANCE}
    passed = all(fc_err[k] <= max(TOLERANCE[k], TORCH_ERROR_FACTOR * torch_err[k]) for k in TOLERANCE)
    return {"passed": passed, "reference": "torch float64", "samples": int(x.shape[0]), "fastconv": fc_err,
            "torch": torch_err, "tolerance": TOLERANCE, "torch_error_factor": TORCH_ERROR_FACTOR}


def _stepper(model, work, train):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    model.train(train)

    def step(i):
        x = work.inputs[i % len(work.inputs)]
        if train:
            opt.zero_grad()
            work.loss(model(x), i).backward()
            opt.step()
        else:
            with torch.no_grad():
                model(x)

    return step


def time_pair(ref, fc, work, train, reps, warmup):
    """Median step times (s) of torch and fastconv, interleaved (the order alternates every repeat)."""
    steps = {"torch": _stepper(ref, work, train), "fastconv": _stepper(fc, work, train)}
    for i in range(warmup):
        for s in steps.values():
            s(i)
    times = {"torch": [], "fastconv": []}
    for r in range(reps):
        order = ("torch", "fastconv") if r % 2 == 0 else ("fastconv", "torch")
        for name in order:
            t = time.perf_counter()
            steps[name](warmup + r)
            times[name].append(time.perf_counter() - t)
    return times


def folded_record(ref, fc, work, reps, warmup):
    """Inference of fastconv's model with its eval-mode BatchNorms folded into the convolutions
    (fastconv.fold_batchnorm) against torch's model as it is: what the opt-in buys. Checked on the output against
    torch in float64 first."""
    folded = fastconv.fold_batchnorm(copy.deepcopy(fc).eval())
    x = work.inputs[0][:CHECK_BATCH]
    with torch.no_grad():
        want = copy.deepcopy(ref).double().eval()(x.double())
        err = _rel(folded(x), want)
    chk = {"passed": err <= TOLERANCE["output"], "reference": "torch float64", "samples": int(x.shape[0]),
           "fastconv": {"output": err}, "tolerance": {"output": TOLERANCE["output"]}}
    rec = {"check": chk, "folded_batchnorms": folded.folded_batchnorms}
    if chk["passed"]:
        times = time_pair(ref, folded, work, False, reps, warmup)
        t_ms, f_ms = (statistics.median(times[k]) * 1e3 for k in ("torch", "fastconv"))
        rec.update(status="ok", torch_ms=t_ms, fastconv_ms=f_ms, speedup=t_ms / f_ms,
                   torch_times_ms=[t * 1e3 for t in times["torch"]], fastconv_times_ms=[t * 1e3 for t in times["fastconv"]])
    else:
        rec.update(status="FAIL")
    return rec


def run_models(names, batch, size, layouts, reps, warmup, progress=print, fold_bn=False):
    """-> list of result records, one per (model, layout, mode); fold_bn adds the mode inference_bn_folded."""
    results = []
    for name in names:
        build, task = MODELS[name]
        for layout in layouts:
            torch.manual_seed(0)
            ref = build(torch.nn, size)
            fc, _ = fastconv.convert(copy.deepcopy(ref))
            if layout == "nhwc":
                ref = ref.to(memory_format=torch.channels_last)
                fc = fc.to(memory_format=torch.channels_last)
            work = _Workload(task, batch, size, layout, count=3, seed=list(MODELS).index(name))
            chk = check(ref, fc, work)
            for mode in ("inference", "training_step"):
                progress(f"{name} [{layout}] {mode}")
                rec = {"model": name, "layout": layout, "mode": mode, "batch": batch, "size": size, "check": chk}
                if chk["passed"]:
                    times = time_pair(ref, fc, work, mode == "training_step", reps, warmup)
                    t_ms, f_ms = (statistics.median(times[k]) * 1e3 for k in ("torch", "fastconv"))
                    rec.update(status="ok", torch_ms=t_ms, fastconv_ms=f_ms, speedup=t_ms / f_ms,
                               torch_times_ms=[t * 1e3 for t in times["torch"]],
                               fastconv_times_ms=[t * 1e3 for t in times["fastconv"]])
                else:
                    rec.update(status="FAIL")
                results.append(rec)
                # before the training steps, which move the two networks apart (train-mode BatchNorm on small
                # batches amplifies rounding differences)
                if fold_bn and mode == "inference" and chk["passed"]:
                    progress(f"{name} [{layout}] inference, BatchNorm folded")
                    rec = {"model": name, "layout": layout, "mode": "inference_bn_folded", "batch": batch, "size": size}
                    rec.update(folded_record(ref, fc, work, reps, warmup))
                    results.append(rec)
            del ref, fc, work
    return results


def summary(results):
    out = {}
    for mode in MODES:
        if not any(r["mode"] == mode for r in results):
            continue
        s = [r["speedup"] for r in results if r["mode"] == mode and r["status"] == "ok"]
        out[mode] = {"geomean_speedup": math.exp(sum(map(math.log, s)) / len(s)) if s else None, "runs": len(s)}
    return out


def table(results):
    lines = [f"{'model':14s} {'layout':6s} {'mode':19s} {'status':6s} {'torch ms':>10s} {'fastconv ms':>12s} "
             f"{'speed-up':>9s}  error vs float64, fastconv (torch): output / loss / first-layer grad"]
    for r in results:
        c = r["check"]
        times = (f"{r['torch_ms']:10.1f} {r['fastconv_ms']:12.1f} {r['speedup']:8.2f}x" if r["status"] == "ok"
                 else f"{'-':>10s} {'-':>12s} {'-':>9s}")
        errs = " / ".join(f"{c['fastconv'][k]:.0e}" + (f" ({c['torch'][k]:.0e})" if "torch" in c else "")
                          for k in c["fastconv"])
        lines.append(f"{r['model']:14s} {r['layout']:6s} {r['mode']:19s} {r['status']:6s} {times}  {errs}")
    for mode, s in summary(results).items():
        if s["geomean_speedup"]:
            lines.append(f"geometric mean speed-up, {mode}: {s['geomean_speedup']:.2f}x over {s['runs']} runs")
    lines.append("speed-up = torch time / fastconv time (>1: fastconv faster), medians of interleaved steps")
    return "\n".join(lines)


def plot(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if r["status"] == "ok"]
    labels = sorted({(r["model"], r["layout"]) for r in ok}, key=lambda k: (list(MODELS).index(k[0]), k[1]))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(labels)), 4))
    modes = [m for m in MODES if any(r["mode"] == m for r in ok)]
    width = 0.8 / max(1, len(modes))
    for j, mode in enumerate(modes):
        vals = [next((r["speedup"] for r in ok if (r["model"], r["layout"]) == k and r["mode"] == mode), 0)
                for k in labels]
        ax.bar([i + (j - (len(modes) - 1) / 2) * width for i in range(len(labels))], vals, width,
               label=mode.replace("_", " "))
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(labels)), [f"{m}\n{lay}" for m, lay in labels], fontsize=8)
    ax.set_ylabel("speed-up over torch (x)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
