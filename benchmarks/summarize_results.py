"""Markdown summary of benchmark result JSONs (written by `python -m fastconv bench --json`), for README.md.

    python benchmarks/summarize_results.py benchmarks/results/*.json            # print the summary
    python benchmarks/summarize_results.py --readme README.md benchmarks/results/*.json
        # replace the text between <!-- BENCH_SUMMARY --> markers in README.md

Per file: the machine, then geometric means of the speed-up (torch time / fastconv time) per layout and op
family for forward and forward+backward, then the key layers of the brief's targets. Cases whose
correctness check failed, and timings the suite marked `noisy` (unstable after re-measurement; files written
before the mark existed have none), are excluded from the means (the suite does the same) and counted.
"""
import argparse
import json
import math
import re
import sys

MARK = "<!-- BENCH_SUMMARY -->"
# Layers shown one by one: (case name, what it is).
KEY_CASES = [
    ("resnet50.layer1.conv2_3x3", "ResNet-50 3x3, 64->64, 56x56"),
    ("resnet50.layer1.conv1_1x1", "ResNet-50 1x1 bottleneck"),
    ("resnet18.conv1", "ResNet stem 7x7/2"),
    ("vgg16.conv1_2", "VGG-16 conv1_2 3x3 at 224x224"),
    ("mobilenet.dw2_s1", "MobileNet depthwise 3x3"),
    ("lenet5.c1", "LeNet-5 C1 5x5, 1->6"),
    ("resnet18.maxpool", "ResNet max pool 3x3/2"),
    ("vgg16.pool1", "VGG-16 max pool 2x2"),
    ("densenet121.transition1.pool", "DenseNet 2x2 average pool"),
    ("unet.up1", "U-Net 2x2/2 transposed conv"),
]


def family(op):
    if op.startswith("conv_transpose"):
        return "transposed conv"
    if op.startswith("conv"):
        return "convolution"
    if "unpool" in op:
        return "max unpool"
    return "pooling"


def geomean(xs):
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def fmt(x):
    return "-" if x is None else f"{x:.2f}x"


def counted(m):
    """A mode's speed-up enters the means: measured, and not marked noisy."""
    return bool(m["speedup"]) and not m.get("noisy", False)


def speedup_text(m):
    return "noisy" if m.get("noisy") else fmt(m["speedup"])


def summarize(doc):
    results, machine, config = doc["results"], doc["machine"], doc["config"]
    cpu = machine.get("cpu_model") or machine.get("cpu", {}).get("model") or "?"
    lines = [f"**{config.get('device', 'cpu')} {config.get('dtype', '?')}**, suite `{config.get('suite', '?')}`, "
             f"{cpu}, {machine.get('logical_cpus', '?')} logical CPUs, {config.get('threads', '?')} threads, torch {machine.get('torch', '?')} "
             f"— speed-up = torch time / fastconv time (above 1: fastconv faster), geometric means:", ""]
    failed = sum(1 for r in results if r["status"] != "ok")
    noisy = sum(1 for r in results if r["status"] == "ok" for m in r["modes"].values() if m.get("noisy"))
    layouts = sorted({r["layout"] for r in results})
    families = ["convolution", "transposed conv", "pooling", "max unpool"]
    lines.append("| layout | mode | " + " | ".join(families) + " | all |")
    lines.append("|---|---|" + "---|" * (len(families) + 1))
    for layout in layouts:
        for mode, label in (("fwd", "forward"), ("fwdbwd", "fwd+bwd")):
            cells = []
            for fam in families + [None]:
                xs = [r["modes"][mode]["speedup"] for r in results
                      if r["status"] == "ok" and r["layout"] == layout and (fam is None or family(r["op"]) == fam)
                      and mode in r["modes"] and counted(r["modes"][mode])]
                cells.append(f"{fmt(geomean(xs))} ({len(xs)})" if xs else "-")
            lines.append(f"| {layout} | {label} | " + " | ".join(cells) + " |")
    lines += ["", f"(n) = cases; {failed} case(s) not ok." if failed else "(n) = cases; every case passed its "
              "correctness check.", ""]
    if noisy:
        lines[-2] += f" {noisy} run(s) with unstable timings (`noisy`) left out."
    by_name = {}
    for r in results:
        by_name.setdefault(r["name"], []).append(r)
    rows = []
    for name, what in KEY_CASES:
        for r in by_name.get(name, []):
            if r["status"] != "ok":
                continue
            f, b = r["modes"].get("fwd"), r["modes"].get("fwdbwd")
            rows.append(f"| {what} (`{name}`) | {r['layout']} | {f['torch']['median_ms']:.3f} / "
                        f"{f['fastconv']['median_ms']:.3f} ({speedup_text(f)}) | {b['torch']['median_ms']:.3f} / "
                        f"{b['fastconv']['median_ms']:.3f} ({speedup_text(b)}) |")
    if rows:
        lines += ["| layer | layout | forward ms torch / fastconv (speed-up) | fwd+bwd ms torch / fastconv (speed-up) |",
                  "|---|---|---|---|"] + rows + [""]
    return "\n".join(lines)


def summarize_models(doc):
    """`python -m fastconv bench --models` results: one row per network and layout (with --fold-bn, a column for
    fastconv's network with its BatchNorms folded, against torch's as it is)."""
    cfg, machine = doc["config"], doc["machine"]
    modes = ["inference", "training_step"] + (["inference_bn_folded"] if cfg.get("fold_bn") else [])
    titles = {"inference": "inference", "training_step": "training step", "inference_bn_folded": "inference, BN folded"}
    lines = [f"**whole networks**, batch {cfg['batch']}, {cfg['size']}x{cfg['size']}, float32, "
             f"{machine.get('cpu_model', '?')}, {cfg['threads']} threads, torch {machine.get('torch', '?')} — "
             "inference = eval-mode no_grad forward; training step = forward, cross-entropy, backward, SGD step"
             + ("; BN folded = fastconv.fold_batchnorm on fastconv's side only (opt-in)" if cfg.get("fold_bn") else "")
             + "; ms per step torch / fastconv (speed-up), medians of interleaved steps:", "",
             "| network | layout | " + " | ".join(titles[m] for m in modes) + " |", "|---|---|" + "---|" * len(modes)]
    by_key = {(r["model"], r["layout"], r["mode"]): r for r in doc["results"]}
    for model in cfg["models"]:
        for layout in ("nchw", "nhwc"):
            cells = []
            for mode in modes:
                r = by_key.get((model, layout, mode))
                if r is None:
                    cells = None
                    break
                cells.append(f"{r['torch_ms']:.0f} / {r['fastconv_ms']:.0f} ({r['speedup']:.2f}x)"
                             if r["status"] == "ok" else r["status"])
            if cells:
                lines.append(f"| {model} | {layout} | " + " | ".join(cells) + " |")
    s = doc["summary"]
    means = [f"{titles[mode]} {s[mode]['geomean_speedup']:.2f}x ({s[mode]['runs']})"
             for mode in modes if mode in s and s[mode]["geomean_speedup"]]
    lines += ["", "Geometric means: " + ", ".join(means) + ". Every network passed its same-numbers check "
              "(eval mode, against torch in float64)." if all(r["check"]["passed"] for r in doc["results"])
              else "Some networks FAILED their same-numbers check.", ""]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+")
    ap.add_argument("--readme", help="replace the BENCH_SUMMARY section of this file")
    args = ap.parse_args(argv)
    parts = []
    for path in args.json:
        with open(path) as f:
            doc = json.load(f)
        if "results" not in doc:  # not a benchmark document (the Winograd accuracy table)
            continue
        parts.append(f"From `{path}`:\n\n" + (summarize_models(doc) if doc.get("kind") == "models" else summarize(doc)))
    text = "\n".join(parts)
    if not args.readme:
        print(text)
        return 0
    with open(args.readme) as f:
        readme = f.read()
    pattern = re.compile(re.escape(MARK) + r".*?" + re.escape(MARK.replace("BENCH_SUMMARY", "/BENCH_SUMMARY")),
                         re.S)
    block = f"{MARK}\n{text}\n{MARK.replace('BENCH_SUMMARY', '/BENCH_SUMMARY')}"
    if pattern.search(readme):
        readme = pattern.sub(lambda _: block, readme)
    elif MARK in readme:
        readme = readme.replace(MARK, block, 1)
    else:
        print(f"{args.readme}: no {MARK} marker", file=sys.stderr)
        return 1
    with open(args.readme, "w") as f:
        f.write(readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
