"""A PNG of the speed-up per layer: horizontal log-scale bars, forward and forward+backward, a line at 1.0."""
import math


def plot(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(results)  # cases without timings (missing, error) keep a labelled, empty row
    if not any(r["modes"] for r in rows):
        raise ValueError("nothing to plot: no case has timings")
    def noisy(r):
        return any(m.get("noisy") for m in r["modes"].values())

    labels = [f'{r["name"]} [{r["layout"]}]' + ("" if r["status"] == "ok" else f' ({r["status"]})')
              + (" (noisy)" if noisy(r) else "") for r in rows]

    def speedups(mode):  # no bar where there is no result (a noisy mode's ratio is not one)
        return [(r["modes"][mode]["speedup"] or float("nan")) if r["modes"] and not r["modes"][mode].get("noisy")
                else float("nan") for r in rows]

    fwd, both = speedups("fwd"), speedups("fwdbwd")
    h = 0.4
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(rows)))
    ys = range(len(rows))
    ax.barh([y - h / 2 for y in ys], fwd, height=h, label="forward", color="#4c72b0")
    ax.barh([y + h / 2 for y in ys], both, height=h, label="forward + backward", color="#dd8452")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    finite = [v for v in fwd + both if v == v and v > 0]
    lo, hi = min(finite + [1.0]), max(finite + [1.0])
    ax.set_xlim(10 ** math.floor(math.log10(lo) - 0.05), 10 ** math.ceil(math.log10(hi) + 0.05))
    ax.set_yticks(list(ys))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up = torch time / fastconv time  (> 1: fastconv faster, log scale)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
