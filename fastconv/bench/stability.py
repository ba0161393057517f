"""Unstable timings, found per case and mode from the paired samples, measured again, and marked `noisy`.

torch's sample i and fastconv's sample i ran back to back on the same data, so their ratio cancels what
slows both (a busy machine, a frequency change); a stall that hits one side shows up as a ratio far from the
others. On a busy machine the quick suite once reported resnet18.avgpool at 500.95x (0.81x when quiet) and a
geometric mean of 2.34x (1.17x): one such case, reported as a result. A case is noisy when its paired ratios
spread widely, when the speed-up from the medians disagrees with the one from the minima (the least disturbed
samples) or with the median of the paired ratios, when many ratios are outliers, or when the speed-up itself
is implausible. A noisy case is timed again with twice the budget, up to TimingPolicy.remeasure times; if it
stays noisy the table prints no speed-up for it and the geometric means leave it out.

The limits were set on the committed full-suite runs of a quiet machine (392 case-modes each, float32 and
float64): they flag 6 and 0 of them, the bimodal pooling layers, before any re-measurement.
"""
import dataclasses
import statistics

from .runner import time_pair

LIMITS = {
    "ratio_spread": 0.4,  # IQR of the paired ratios / their median (quiet runs: 90% under 0.16)
    "estimate_gap": 1.5,  # factor between the medians' speed-up and the minima's (quiet: 90% within 1.11)
    "paired_gap": 1.25,  # factor between the medians' speed-up and the median paired ratio (quiet: within 1.1)
    "outlier_fraction": 0.3,  # ratios beyond Tukey's fences, 1.5 IQR past the quartiles (quiet: at most 0.26)
    "implausible": 100.0,  # a speed-up beyond 100x either way is a stall (the committed runs peak at 28x)
}


def _gap(a, b):
    """The factor between two positive numbers, >= 1."""
    return max(a / b, b / a)


def assess(torch_ms, fastconv_ms, limits=LIMITS):
    """Paired per-call times of one case and mode -> {"noisy": bool, "reasons": [str], and the figures}."""
    ratios = [t / f for t, f in zip(torch_ms, fastconv_ms) if t > 0 and f > 0]
    speedup = statistics.median(torch_ms) / statistics.median(fastconv_ms)
    reasons = []
    if not 1 / limits["implausible"] <= speedup <= limits["implausible"]:
        reasons.append(f"implausible speed-up {speedup:.3g}x")
    figures = {"speedup": speedup}
    if len(ratios) >= 2:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        median = statistics.median(ratios)
        iqr = q3 - q1
        minima = min(torch_ms) / min(fastconv_ms)
        outliers = sum(1 for r in ratios if r < q1 - 1.5 * iqr or r > q3 + 1.5 * iqr) / len(ratios)
        figures.update(ratio_median=median, ratio_iqr_pct=100 * iqr / median, min_ratio=minima,
                       outlier_fraction=outliers)
        if iqr / median > limits["ratio_spread"]:
            reasons.append(f"paired ratios spread {100 * iqr / median:.0f}% of their median")
        if _gap(speedup, minima) > limits["estimate_gap"]:
            reasons.append(f"medians give {speedup:.2f}x, minima {minima:.2f}x")
        if _gap(speedup, median) > limits["paired_gap"]:
            reasons.append(f"medians give {speedup:.2f}x, paired ratios {median:.2f}x")
        if outliers > limits["outlier_fraction"]:
            reasons.append(f"{100 * outliers:.0f}% of the paired ratios are outliers")
    return {"noisy": bool(reasons), "reasons": reasons, **figures}


def measure(run_torch, run_fastconv, n_sets, timer, policy, prior_seconds=None):
    """time_pair, then again with twice the budget and repeats while the verdict is noisy, at most
    policy.remeasure more times. -> (Stats torch, Stats fastconv, verdict): the last measurement, and its
    verdict with "attempts" (1 when the first was stable)."""
    st, sf = time_pair(run_torch, run_fastconv, n_sets, timer, policy, prior_seconds)
    verdict = assess(st.times_ms, sf.times_ms)
    longer = dataclasses.replace(policy, budget_s=2 * policy.budget_s,
                                 min_repeats=min(policy.max_repeats, 2 * policy.min_repeats))
    attempts = 1
    while verdict["noisy"] and attempts <= policy.remeasure:
        # already warm: the medians as the prior let time_pair skip the warm-up of slow layers
        st, sf = time_pair(run_torch, run_fastconv, n_sets, timer, longer, (st.median / 1e3, sf.median / 1e3))
        verdict = assess(st.times_ms, sf.times_ms)
        attempts += 1
    verdict["attempts"] = attempts
    return st, sf, verdict
