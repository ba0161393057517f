"""One benchmark case end to end: build the workload, check fastconv against torch, time both (forward, and
forward+backward), and turn the times into rates, speed-ups and fractions of the machine's peak."""
import gc
import math
import traceback
import zlib

import torch
import torch.nn.functional as TF

from . import checks, probes as probes_mod
from .runner import make_timer
from .stability import measure
from .workloads import Workload

MODES = ("fwd", "fwdbwd")
MAX_SETS = {"cpu": 16, "cuda": 64}


def rotation_bytes(device):
    """How much data to rotate through so a call does not find its inputs in the cache the previous calls
    left warm: the last-level cache (CPU: from sysfs, 32 MiB if unknown; GPU: twice its L2)."""
    if device.type == "cuda":
        return 2 * getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
    return _cpu_llc_bytes()


def _cpu_llc_bytes(default=32 << 20):
    import glob

    sizes = []
    for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            sizes.append(int(digits) * mult)
    return max(sizes) if sizes else default


def _fastconv_functional():
    import fastconv.nn.functional as FF

    return FF


def _tensor_bytes(data):
    ts = [t for t in data.args if isinstance(t, torch.Tensor)] + [data.grad_out]
    return sum(t.numel() * t.element_size() for t in ts)


def _base_record(case, device, dtype, layout, wl):
    return {"name": case.name, "network": case.network, "op": case.op, "device": str(device),
            "dtype": str(dtype).replace("torch.", ""), "layout": wl.layout,
            "input_shape": list(wl.x_shape), "layer": case.layer, "params": case.params,
            "kind": wl.kind, "status": None, "message": "", "check": None, "modes": {}}


def run_case(case, device, dtype, layout, policy, peaks):
    """-> result record (a JSON-able dict). status: ok | FAIL (correctness) | missing (fastconv lacks the op)
    | error (an exception; message says which side raised it)."""
    wl = Workload(case, device, dtype, layout)
    rec = _base_record(case, device, dtype, layout, wl)
    ff = _fastconv_functional()
    if not hasattr(ff, case.op):
        rec.update(status="missing", message=f"fastconv.nn.functional has no {case.op}")
        return rec
    if case.params.get("padding") == "causal":
        rec["torch_variant"] = "F.pad (left) + conv1d: torch has no padding='causal'"
    gen = torch.Generator(device=wl.device).manual_seed(zlib.crc32(case.name.encode()))
    try:
        first = wl.make_data(gen)
    except Exception as exc:  # noqa: BLE001 - a bad zoo entry or an op torch rejects: report, keep going
        rec.update(status="error", message=f"torch/data setup: {type(exc).__name__}: {exc}")
        return rec
    target = rotation_bytes(wl.device)
    n_sets = max(2, min(MAX_SETS[wl.device.type], math.ceil(target / max(1, _tensor_bytes(first)))))
    sets = [first] + [wl.make_data(gen) for _ in range(n_sets - 1)]
    check_set = wl.make_data(gen)  # its own fresh data, not one of the timed sets
    try:
        rec["check"] = checks.check(wl, ff, TF, check_set)
    except checks.StepError as exc:  # fastconv raising on a signature torch accepts is a result
        rec.update(status="error", message=f"check, {exc}", traceback=traceback.format_exc(limit=4))
        return rec
    del check_set
    rec["status"] = "ok" if rec["check"]["passed"] else "FAIL"
    rec["message"] = rec["check"]["message"]
    flops = wl.flops()
    fwd_bytes, fwdbwd_bytes = wl.bytes_moved()
    rec["work"] = {"fwd": {"flops": flops, "bytes": fwd_bytes},
                   "fwdbwd": {"flops": 3 * flops if flops else None, "bytes": fwdbwd_bytes}}
    rec["data_sets"] = n_sets
    timer = make_timer(wl.device)
    peak = probes_mod.peak_for(peaks, wl.kind, dtype)
    sec = rec["check"]["seconds"]
    prior = {"fwd": (sec["torch_fwd"], sec["fastconv_fwd"]),
             "fwdbwd": (sec["torch_fwd"] + sec["torch_bwd"], sec["fastconv_fwd"] + sec["fastconv_bwd"])}
    try:
        for mode in MODES:
            call = wl.forward if mode == "fwd" else wl.forward_backward
            st, sf, verdict = measure(lambda i: call(TF, sets[i]), lambda i: call(ff, sets[i]), n_sets, timer,
                                      policy, prior[mode])
            rec["modes"][mode] = _mode_record(st, sf, rec["work"][mode], wl.kind, peak, verdict)
    except Exception as exc:  # noqa: BLE001 - e.g. out of memory: report the case, run the others
        rec.update(status="error", message=f"timing {mode}: {type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=4))
        rec["modes"] = {}
    del sets
    gc.collect()
    return rec


def _rate(work, kind, ms):
    """GFLOP/s (compute) or GB/s (memory) for `work` done in `ms` milliseconds."""
    amount = work["flops"] if kind == "compute" else work["bytes"]
    return amount / (ms * 1e-3) * 1e-9 if amount and ms > 0 else None


def _mode_record(st, sf, work, kind, peak, verdict):
    t_ms, f_ms = st.median, sf.median
    rate_t, rate_f = _rate(work, kind, t_ms), _rate(work, kind, f_ms)
    return {
        "torch": st.to_json(), "fastconv": sf.to_json(),
        "speedup": t_ms / f_ms if f_ms > 0 else None,  # > 1: fastconv faster; not a result when noisy
        "noisy": verdict["noisy"],  # unstable after every re-measurement: no speed-up printed, out of the means
        "stability": {k: v for k, v in verdict.items() if k not in ("noisy", "speedup")},
        "unit": "GFLOP/s" if kind == "compute" else "GB/s",
        "torch_rate": rate_t, "fastconv_rate": rate_f,
        "peak": peak,
        "torch_pct_peak": 100 * rate_t / peak if peak and rate_t else None,
        "fastconv_pct_peak": 100 * rate_f / peak if peak and rate_f else None,
    }
