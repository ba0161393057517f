"""The functional switch: torch.nn.functional convolution and pooling calls run on fastconv's kernels.

    with fastconv.enabled() as report:       # or fastconv.enable() ... fastconv.disable()
        y = model(x)                         # F.avg_pool2d, F.conv2d, ... inside forward run on fastconv
    print(report)                            # what ran where, and why

convert() swaps modules, so pooling written as a function call inside a forward (torchvision's inception_v3,
the global pooling of densenet121 or mobilenet_v2) stays torch's. This switch is a TorchFunctionMode: while
it is on, the torch functions the thread calls pass through it, and a call of one in _switch_routes.ROUTES
runs fastconv's function of the same signature when fastconv has kernels for its tensors' devices and dtypes
(and no tensor subclass with its own __torch_function__ is involved), torch's otherwise. A call fastconv
rejects is handed to torch: if torch rejects it too, torch's own error is raised, as without the switch; if
torch takes it, torch's result is returned and the report says why.

Autograd works through fastconv's own backward ops. torch.compile(fullgraph=True) of code run while the
switch is on traces the switch (the graph holds fastconv's ops), and so does torch.export.export called while
it is on. Under torch.compile the routing is decided when dynamo traces, so the reports count the traced
calls, not each run of the compiled code. Turn the switch on around the compiled call: enabled() inside
compiled code is a graph break (fullgraph=True refuses it).

Under torch.autocast a routed call computes in float32, as fastconv's modules do (fastconv/_autocast.py).
The switch is per thread, as torch's function modes are. It costs about a microsecond on every torch call made
while it is on (x.add(1) on a small tensor: 2.1 -> 3.1 us) and three on a routed one.
"""
import contextlib
import threading

import torch
from torch.overrides import TorchFunctionMode, _get_current_function_mode

from ._support import tensor_reason
from ._switch_routes import ROUTES

_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


class FunctionalReport:
    """Calls the switch routed: counts[(function, where, reason)] = number of calls; where is 'fastconv' or
    'torch', and reason says why a call stayed on torch ('' for fastconv)."""

    def __init__(self):
        self.counts = {}

    def calls(self, function=None, where=None):
        """How many calls (of `function`, e.g. 'F.avg_pool2d'; that ran on `where`)."""
        return sum(n for (f, w, _), n in self.counts.items()
                   if (function is None or f == function) and (where is None or w == where))

    def clear(self):
        self.counts.clear()

    def __str__(self):
        lines = [f"fastconv functional switch: {self.calls(where='fastconv')} call(s) on fastconv, "
                 f"{self.calls(where='torch')} on torch"]
        for (function, where, reason), n in sorted(self.counts.items()):
            why = f" ({reason})" if reason else ""
            lines.append(f"  {function} -> {where}{why}: {n} call{'' if n == 1 else 's'}")
        return "\n".join(lines)


_REPORT = FunctionalReport()  # every routed call of every thread: functional_report()
_lock = threading.Lock()
_local = threading.local()  # per thread: mode (the pushed _Switch or None), reports (of open enabled()), on


def _state():
    if not hasattr(_local, "reports"):
        _local.mode, _local.reports, _local.on = None, [], False
    return _local


def _record(function, where, reason=""):
    """Counts one call in the process-wide report and in the thread's open enabled() reports. Dynamo runs it
    while tracing instead of tracing it (assume_constant_result, set in _push): traced, the counts would
    become guards and every call would recompile."""
    key = (function, where, reason)
    with _lock:
        for report in (_REPORT, *getattr(_local, "reports", ())):
            report.counts[key] = report.counts.get(key, 0) + 1


def _unsupported(types, args, kwargs):
    """Why fastconv cannot take these tensors (None if it can): a device or dtype it has no kernels for, or a
    tensor subclass that overrides torch functions (what it means for a convolution is its own business)."""
    for t in types:
        if t not in _PLAIN_TYPES and t.__torch_function__ is not torch._C._disabled_torch_function_impl:
            return f"tensor subclass {t.__name__}"
    for key, value in (*enumerate(args), *kwargs.items()):
        if isinstance(value, torch.Tensor):
            is_input = key in (0, "input")
            reason = tensor_reason("input" if is_input else f"argument {key}", value, data=is_input)
            if reason is not None:
                return reason
    return None


class _Switch(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        # The mode is off inside this method (torch pops it while it runs): no recursion into it.
        if kwargs is None:
            kwargs = {}
        route = ROUTES.get(func)
        if route is None:
            return func(*args, **kwargs)
        name, fast = route
        reason = "no fastconv kernel" if fast is None else _unsupported(types, args, kwargs)
        if reason is None:
            try:
                out = fast(*args, **kwargs)
            except Exception as e:  # (FastconvError, or the op's own check): torch decides, outside this handler
                reason = f"fastconv refused the call: {(str(e).splitlines() or [type(e).__name__])[0]}"
            else:
                _record(name, "fastconv")
                return out
        out = func(*args, **kwargs)
        _record(name, "torch", reason)
        return out


def _push():
    state = _state()
    if state.mode is None:
        torch.compiler.assume_constant_result(_record)  # (imports torch._dynamo once: about a second)
        # Dynamo must inline __torch_function__ into the graphs it traces, but not compile it as a frame of its
        # own (which it does for calls made from eager code while torch.compile is active, e.g. after a
        # function fell back to eager): torch 2.13 guards such a frame on args but not on func, and reused the
        # one compiled for `x * 2` for F.avg_pool2d(x, 2), returning x * 2.
        torch._dynamo.eval_frame.skip_code(_Switch.__torch_function__.__code__)
        state.mode = _Switch()
        state.mode.__enter__()


def _pop_if_idle():
    state = _state()
    if state.mode is None or state.reports or state.on:
        return
    if _get_current_function_mode() is not state.mode:
        raise RuntimeError("fastconv: a TorchFunctionMode entered after the functional switch was turned on is "
                           "still active; leave it before turning the switch off")
    state.mode.__exit__(None, None, None)
    state.mode = None


@contextlib.contextmanager
def enabled():
    """Route torch.nn.functional convolution / pooling calls to fastconv in the body of the `with` (this
    thread); yields a FunctionalReport of the calls made there. Reentrant; also works as a decorator."""
    report = FunctionalReport()
    _push()
    _state().reports.append(report)
    try:
        yield report
    finally:
        _local.reports.remove(report)
        _pop_if_idle()


def enable():
    """Turn the switch on for the calling thread until disable()."""
    _state().on = True
    _push()


def disable():
    """Undo enable(); open enabled() blocks keep the switch on until they end."""
    _state().on = False
    _pop_if_idle()


def is_enabled():
    """Whether the switch is on in the calling thread."""
    return _state().mode is not None


def functional_report():
    """The report of every call routed since import (or its clear()), in any thread."""
    return _REPORT


__all__ = ["FunctionalReport", "enabled", "enable", "disable", "is_enabled", "functional_report"]
