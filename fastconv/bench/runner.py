"""Timing: torch and fastconv interleaved in one process on the same rotating random data sets, warm-up
excluded, an adaptive repeat count under a per-case time budget. CPU times with perf_counter, CUDA with
events after a synchronise."""
import gc
import math
import statistics
import time
from dataclasses import dataclass, field

import torch


class CpuTimer:
    def sync(self):
        pass

    def time_calls(self, fn, calls):
        """Seconds per call of fn(i) for i in calls (one sample)."""
        t0 = time.perf_counter()
        for i in calls:
            fn(i)
        return (time.perf_counter() - t0) / len(calls)


class CudaTimer:
    def __init__(self, device):
        self.device = device

    def sync(self):
        torch.cuda.synchronize(self.device)

    def time_calls(self, fn, calls):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        self.sync()  # nothing of the other implementation's sample is still queued
        start.record()
        for i in calls:
            fn(i)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / len(calls)


def make_timer(device):
    device = torch.device(device)
    return CudaTimer(device) if device.type == "cuda" else CpuTimer()


@dataclass
class Stats:
    """Per-call times of one implementation in milliseconds, in the order they were taken."""
    times_ms: list = field(default_factory=list)

    @property
    def median(self):
        return statistics.median(self.times_ms)

    def quartiles(self):
        if len(self.times_ms) < 2:
            return self.times_ms[0], self.times_ms[0]
        q = statistics.quantiles(self.times_ms, n=4, method="inclusive")
        return q[0], q[2]

    def to_json(self):
        q1, q3 = self.quartiles()
        return {"median_ms": self.median, "q1_ms": q1, "q3_ms": q3, "min_ms": min(self.times_ms),
                "max_ms": max(self.times_ms), "repeats": len(self.times_ms), "times_ms": list(self.times_ms)}


@dataclass
class TimingPolicy:
    budget_s: float = 2.0  # per case and mode, both implementations together (warm-up included)
    min_repeats: int = 5  # ... unless that would take more than hard_factor x budget_s; never fewer than 3
    hard_factor: float = 3.0
    max_repeats: int = 200
    min_sample_s: float = 2e-3  # a sample runs several calls when one call is shorter than this
    warmup_calls: int = 2
    remeasure: int = 2  # a noisy case and mode is timed again (twice the budget) up to this many times


def time_pair(run_torch, run_fastconv, n_sets, timer, policy, prior_seconds=None):
    """Interleaved timing of two implementations: run_x(i) does one call on data set i % n_sets.
    Samples alternate torch, fastconv, torch, fastconv... with the same data-set sequence for both.
    prior_seconds: (torch, fastconv) seconds of a call the caller already made (the correctness check), when
    those calls ran the same code paths. Returns (Stats torch, Stats fastconv), times per call in ms."""
    t_start = time.perf_counter()
    # Warm-up (excluded): first calls pay for allocation, lazy init, cold caches; the last one estimates the cost.
    # A side whose check call was already slow skips it: its one-time costs are paid, and another call would
    # spend a large part of the budget.
    est = []
    for run, prior in zip((run_torch, run_fastconv), prior_seconds or (None, None)):
        if prior is not None and prior > 0.1 * policy.budget_s:
            est.append(prior)
            continue
        for k in range(policy.warmup_calls):
            dt = timer.time_calls(run, [k % n_sets])
            if dt > 0.1 * policy.budget_s:  # a slow layer: one warm-up call is enough
                break
        est.append(dt)
    per_call = max(min(est), 1e-7)
    number = max(1, min(1000, math.ceil(policy.min_sample_s / per_call)))
    return _sample(run_torch, run_fastconv, n_sets, timer, policy, number, t_start)


def _sample(run_torch, run_fastconv, n_sets, timer, policy, number, t_start):
    """Alternating samples of `number` calls each until the budget (counted from t_start) allows no more."""
    stats = (Stats(), Stats())
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one sample would be charged to whichever implementation ran
    try:
        rep, cursor = 0, 0
        while rep < policy.max_repeats:
            calls = [(cursor + j) % n_sets for j in range(number)]
            cursor += number
            for s, run in zip(stats, (run_torch, run_fastconv)):
                s.times_ms.append(timer.time_calls(run, calls) * 1e3)
            rep += 1
            spent = time.perf_counter() - t_start
            if spent >= policy.budget_s and (rep >= policy.min_repeats
                                             or (rep >= 3 and spent >= policy.hard_factor * policy.budget_s)):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return stats
