"""The results as a readable table (stdout) and as a JSON document holding every raw figure."""
import json
import math

from .suite import MODES

MODE_LABEL = {"fwd": "fwd", "fwdbwd": "fwd+bwd"}
SCHEMA = 1


def geomean_speedups(results):
    """Geometric mean of torch_time / fastconv_time over the cases that passed, per mode and over both; cases
    whose timings stayed noisy are left out and counted ({mode}_noisy)."""
    out = {}
    every = []
    for mode in MODES:
        timed = [r["modes"][mode] for r in results
                 if r["status"] == "ok" and mode in r["modes"] and r["modes"][mode]["speedup"]]
        xs = [m["speedup"] for m in timed if not m.get("noisy")]  # results written before `noisy` have none
        every += xs
        out[mode] = math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None
        out[f"{mode}_cases"] = len(xs)
        out[f"{mode}_noisy"] = len(timed) - len(xs)
    out["all"] = math.exp(sum(map(math.log, every)) / len(every)) if every else None
    return out


def counts(results):
    c = {}
    for r in results:
        c[r["status"]] = c.get(r["status"], 0) + 1
    return c


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def _iqr_pct(stats):
    return 100 * (stats["q3_ms"] - stats["q1_ms"]) / stats["median_ms"] if stats["median_ms"] > 0 else None


def _speedup_cell(m):
    if m.get("noisy"):
        return "noisy"  # never a ratio the timings do not support (see stability.py)
    return _fmt(m["speedup"], ".2f") + "x" if m["speedup"] else "-"


def table(results, config):
    """Plain-text table: one row per case and mode (cases without timings: one row with their status)."""
    head = ("case", "op", "layout", "check", "mode", "torch ms", "fastconv ms", "speed-up", "IQR% t/f",
            "fastconv rate", "% peak")
    rows = []
    for r in results:
        base = (r["name"], r["op"], r["layout"])
        if not r["modes"]:
            rows.append(base + (r["status"], "", "", "", "", "", "", ""))
            continue
        for mode in MODES:
            m = r["modes"][mode]
            iqr = f'{_fmt(_iqr_pct(m["torch"]), ".0f")}/{_fmt(_iqr_pct(m["fastconv"]), ".0f")}'
            rate = f'{_fmt(m["fastconv_rate"], ".1f")} {m["unit"]}' if m["fastconv_rate"] else "-"
            rows.append(base + (r["status"] if mode == MODES[0] else "", MODE_LABEL[mode],
                                _fmt(m["torch"]["median_ms"], ".3f"), _fmt(m["fastconv"]["median_ms"], ".3f"),
                                _speedup_cell(m), iqr, rate,
                                _fmt(m["fastconv_pct_peak"], ".1f")))
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    right = {5, 6, 7, 8, 9, 10}

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    g = geomean_speedups(results)
    out.append("")
    out.append(f"speed-up = torch time / fastconv time (>1: fastconv faster), medians; device {config['device']}, "
               f"dtype {config['dtype']}, {config['threads']} threads")
    out.append("geometric mean of speed-ups over passing cases: "
               + ", ".join(f"{MODE_LABEL[m]} {_fmt(g[m], '.2f')}x ({g[m + '_cases']} cases)" for m in MODES)
               + f", all {_fmt(g['all'], '.2f')}x")
    noisy = {m: g[f"{m}_noisy"] for m in MODES if g[f"{m}_noisy"]}
    if noisy:
        out.append("left out as noisy: " + ", ".join(f"{MODE_LABEL[m]} {n}" for m, n in noisy.items())
                   + f" (timings still unstable after {config.get('remeasure', 0)} re-measurements: paired "
                   "torch/fastconv ratios spread, or medians and minima disagree; see `stability` in the JSON)")
    c = counts(results)
    out.append("cases: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    failed = [r for r in results if r["status"] in ("FAIL", "error")]
    for r in failed:
        out.append(f"  {r['status']} {r['name']} [{r['layout']}]: {r['message']}")
    return "\n".join(out)


def document(results, config, machine, peaks, elapsed_s):
    return {"schema": SCHEMA, "config": config, "machine": machine, "probes": peaks,
            "summary": {"geomean_speedup": geomean_speedups(results), "status_counts": counts(results),
                        "elapsed_s": elapsed_s},
            "results": results}


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")
