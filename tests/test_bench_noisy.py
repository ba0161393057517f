"""Unstable benchmark timings (fastconv/bench/stability.py): with a simulated timer, a noisy case is measured
again, marked `noisy`, printed without a speed-up and left out of the geometric means; a stable one is not.
The timers return made-up seconds and never call the functions they time, so no test depends on this
machine's load."""
import glob
import importlib.util
import json
import math
import os
import random

import pytest
import torch

from fastconv.bench import report, stability, suite, zoo
from fastconv.bench.runner import TimingPolicy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A budget spent at once, never three times over: each measurement is one warm-up call per side and exactly
# min_repeats samples (a fake timer spends no real time).
POLICY = TimingPolicy(budget_s=1e-9, hard_factor=1e12, min_repeats=20, max_repeats=200, remeasure=2)


class FakeTimer:
    """Per-call seconds: `base[side]` times a factor from `noise(rng)`, side told apart by the function timed;
    `stable_after` measurements (time_pair calls, counted by their first warm-up) the noise stops."""

    def __init__(self, sides, base, noise, stable_after=None, seed=0):
        self.sides, self.base, self.noise = sides, base, noise
        self.rng = random.Random(seed)
        self.stable_after = stable_after
        self.samples = 0

    def sync(self):
        pass

    def time_calls(self, fn, calls):
        self.samples += 1
        side = self.sides.get(fn, 0)
        quiet = self.stable_after is not None and self.samples > self.stable_after
        return self.base[side] * (1.0 if quiet else self.noise(self.rng))


def run_torch(i):
    raise AssertionError("a fake timer never calls the timed function")


def run_fastconv(i):
    raise AssertionError("a fake timer never calls the timed function")


SIDES = {run_torch: 0, run_fastconv: 1}


def lognormal(sigma):
    return lambda rng: math.exp(rng.gauss(0.0, sigma))


def steady(rng):
    return 1.0 + 0.02 * rng.random()


def _measure(timer):
    return stability.measure(run_torch, run_fastconv, 4, timer, POLICY)


def test_stable_timer_is_measured_once():
    st, sf, verdict = _measure(FakeTimer(SIDES, (2e-3, 1e-3), steady))
    assert not verdict["noisy"] and verdict["reasons"] == [] and verdict["attempts"] == 1
    assert len(st.times_ms) == POLICY.min_repeats
    assert verdict["speedup"] == pytest.approx(2.0, rel=0.03) and verdict["ratio_iqr_pct"] < 5


def test_unstable_timer_is_remeasured_then_marked_noisy():
    st, sf, verdict = _measure(FakeTimer(SIDES, (2e-3, 1e-3), lognormal(1.0)))
    assert verdict["noisy"] and verdict["attempts"] == 1 + POLICY.remeasure
    assert any("spread" in r for r in verdict["reasons"]), verdict["reasons"]
    assert len(st.times_ms) == len(sf.times_ms) == 2 * POLICY.min_repeats  # re-measured with twice the repeats


def test_noise_that_passes_is_remeasured_once_and_kept():
    """Noisy for the first measurement only (its warm-up and samples): the second one stands."""
    timer = FakeTimer(SIDES, (2e-3, 1e-3), lognormal(1.0), stable_after=2 + 2 * POLICY.min_repeats)
    st, sf, verdict = _measure(timer)
    assert not verdict["noisy"] and verdict["attempts"] == 2
    assert verdict["speedup"] == pytest.approx(2.0)


def test_assess_reasons():
    quiet = [1.0 + 0.01 * (i % 3) for i in range(30)]
    assert not stability.assess([2 * t for t in quiet], quiet)["noisy"]
    # the busy machine's resnet18.avgpool: torch's samples stalled, 500x
    stalled = stability.assess([50.0] * 30, [0.1] * 30)
    assert stalled["noisy"] and stalled["reasons"] == ["implausible speed-up 500x"]
    # most torch samples slowed 3x, the minima tell otherwise
    slowed = stability.assess([3.0] * 20 + [1.0] * 10, [1.0] * 30)
    assert slowed["noisy"] and any("minima 1.00x" in r for r in slowed["reasons"]), slowed["reasons"]
    # a third of the pairs stalled on one side or the other: quartiles and medians look fine, the outliers do not
    spiky = stability.assess([1.0] * 20 + [40.0] * 5 + [1.0] * 5, [1.0] * 25 + [40.0] * 5)
    assert spiky["noisy"] and spiky["reasons"] == ["33% of the paired ratios are outliers"]


def _case_with(monkeypatch, timer):
    monkeypatch.setattr(suite, "make_timer", lambda device: timer)
    [case] = zoo.select(zoo.load(), "full", names=["mnist.conv1"])
    return suite.run_case(case, torch.device("cpu"), torch.float32, "nchw", POLICY, None)


def test_suite_marks_reports_and_leaves_out_a_noisy_case(monkeypatch, tmp_path):
    """End to end through run_case, the table, the geometric means and the JSON: the timer cannot tell torch
    from fastconv here, so the noisy case gets noise on both sides and the stable one a ratio of exactly 1."""
    noisy = _case_with(monkeypatch, FakeTimer({}, (1e-3,), lognormal(1.0)))
    stable = _case_with(monkeypatch, FakeTimer({}, (1e-3,), lambda rng: 1.0))
    for mode in suite.MODES:
        assert noisy["modes"][mode]["noisy"] and noisy["modes"][mode]["stability"]["attempts"] == 3
        assert not stable["modes"][mode]["noisy"] and stable["modes"][mode]["stability"]["attempts"] == 1
    noisy["modes"]["fwd"]["speedup"] = 500.95  # what a stalled timing looked like
    results = [noisy, stable]
    g = report.geomean_speedups(results)
    assert g["fwd"] == g["fwdbwd"] == g["all"] == 1.0
    assert g["fwd_cases"] == g["fwdbwd_cases"] == 1 and g["fwd_noisy"] == g["fwdbwd_noisy"] == 1
    text = report.table(results, {"device": "cpu", "dtype": "float32", "threads": 1, "remeasure": 2})
    assert "500.95" not in text and "500.9" not in text
    rows = [line for line in text.splitlines() if line.startswith("mnist.conv1")]
    assert [("noisy" in line) for line in rows] == [True, True, False, False]
    assert "left out as noisy: fwd 1, fwd+bwd 1 (timings still unstable after 2 re-measurements" in text
    doc = json.loads(json.dumps(report.document(results, {}, {}, None, 0.0), default=str))
    assert doc["results"][0]["modes"]["fwd"]["noisy"] is True
    pytest.importorskip("matplotlib")
    from fastconv.bench import plot

    plot.plot(results, tmp_path / "p.png", "noisy")  # the noisy case: a labelled row without bars
    assert (tmp_path / "p.png").stat().st_size > 0


def _summarize_module():
    spec = importlib.util.spec_from_file_location("summarize_results",
                                                  os.path.join(ROOT, "benchmarks", "summarize_results.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summarize_results_leaves_noisy_runs_out():
    s = _summarize_module()

    def rec(name, speedup, noisy=None):
        mode = {"speedup": speedup, "torch": {"median_ms": speedup}, "fastconv": {"median_ms": 1.0}}
        if noisy is not None:
            mode["noisy"] = noisy
        return {"name": name, "op": "conv2d", "layout": "nchw", "status": "ok", "modes": {"fwd": mode, "fwdbwd": mode}}

    doc = {"machine": {}, "config": {}, "results": [rec("resnet18.conv1", 500.0, True), rec("a", 2.0, False),
                                                    rec("b", 2.0)]}  # b: written before the mark existed
    text = s.summarize(doc)
    assert "| nchw | forward | 2.00x (2) |" in text and "2 run(s) with unstable timings (`noisy`) left out" in text
    assert "500.000 / 1.000 (noisy)" in text and "500.00x" not in text


def test_summarize_results_reads_the_committed_files(capsys):
    """The committed results, with or without `noisy` marks: the summary mentions noisy runs exactly when a file
    has some (files written before the mark existed count every run)."""
    files = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "results", "*.json")))
    assert files and _summarize_module().main(files) == 0
    out = capsys.readouterr().out
    marked = any(mode.get("noisy") for f in files for r in json.load(open(f)).get("results", [])
                 for mode in (r.get("modes") or {}).values() if isinstance(mode, dict))
    assert ("with unstable timings (`noisy`) left out" in out) == marked and "geometric means" in out
