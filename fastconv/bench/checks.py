"""Correctness check before timing: fastconv against torch on one fresh random data set, outputs (indices
exactly) and every gradient, with a tolerance relative to the magnitude of torch's result."""
import time

import torch

# max |fastconv - torch| / max |torch| allowed, by dtype (accumulation order differs between the libraries).
RTOL = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 5e-2}


def _channels_last(t):
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def rel_error(got, ref):
    """max |got - ref| / max |ref| (computed in float64); exact comparison for integer tensors (0 or inf)."""
    if got.shape != ref.shape:
        return float("inf")
    if not ref.is_floating_point():
        return 0.0 if torch.equal(got, ref) else float("inf")
    if ref.numel() == 0:
        return 0.0
    ref64, got64 = ref.double(), got.double()
    scale = ref64.abs().max().item()
    err = (got64 - ref64).abs().max().item()
    return err / scale if scale > 0 else err


class StepError(Exception):
    """An exception raised by one step of the check; `step` names it (e.g. "fastconv_fwd", "torch_bwd")."""

    def __init__(self, step, exc):
        super().__init__(f"{step}: {type(exc).__name__}: {exc}")
        self.step = step


class _Stopwatch:
    """Wall seconds of each step (synchronising a GPU), so the timing phase knows what the check warmed up."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.seconds = {}

    def __call__(self, name, fn, *args):
        if self.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        try:
            out = fn(*args)
        except Exception as exc:  # noqa: BLE001 - re-raised with the step's name
            raise StepError(name, exc) from exc
        if self.cuda:
            torch.cuda.synchronize()
        self.seconds[name] = time.perf_counter() - t0
        return out


def check(workload, fastconv_impl, torch_impl, data):
    """-> dict: passed, tolerance, the relative error of each output and gradient (by name), and the wall
    seconds of each call it made (first calls: they include one-time costs)."""
    tol = RTOL[workload.dtype]
    errors = {}
    watch = _Stopwatch(workload.device)
    out_t = watch("torch_fwd", workload.call, torch_impl, data)
    out_f = watch("fastconv_fwd", workload.call, fastconv_impl, data)
    if len(out_t) != len(out_f):
        return {"passed": False, "tolerance": tol, "errors": {}, "seconds": watch.seconds, "message":
                f"fastconv returned {len(out_f)} outputs, torch {len(out_t)}"}
    for i, (f, t) in enumerate(zip(out_f, out_t)):
        errors["output" if i == 0 else f"output{i}"] = rel_error(f.detach(), t.detach())
    # Informational: a different output memory format would make the next layer pay for a conversion.
    same_format = _channels_last(out_f[0]) == _channels_last(out_t[0])
    names = ("grad_input", "grad_weight", "grad_bias")
    grads_t = watch("torch_bwd", torch.autograd.grad, workload.primary(out_t), data.diff, data.grad_out)
    grads_f = watch("fastconv_bwd", torch.autograd.grad, workload.primary(out_f), data.diff, data.grad_out)
    for name, f, t in zip(names, grads_f, grads_t):
        errors[name] = rel_error(f, t)
    worst = max(errors.values())
    return {"passed": bool(worst <= tol), "tolerance": tol, "errors": errors, "seconds": watch.seconds,
            "output_memory_format_matches_torch": same_format,
            "message": "" if worst <= tol else f"max relative error {worst:.3g} > {tol:g}"}
