"""TorchScript: fastconv's modules and functions cannot be compiled by torch.jit.script (their argument checks
and normalisation are ordinary Python: f-strings, numbers.Integral, tuples of any length, try blocks, which
TorchScript's compiler rejects deep inside a helper). torch.jit.script calls __prepare_scriptable__ on every
module of the tree it is given (and on every Python function a scripted function calls), before compiling
anything; fastconv's define it to raise one FastconvScriptError that says what works instead: torch.jit.trace
(which records the fastconv ops, so the traced module runs fastconv's kernels and can be saved), torch.export
and torch.compile.
"""
from ..errors import FastconvScriptError

_ADVICE = ("TorchScript cannot compile fastconv's Python argument checks. Use torch.jit.trace(model, "
           "example_inputs) instead: it records fastconv's ops, runs fastconv's kernels and can be saved with "
           "torch.jit.save (import fastconv before torch.jit.load); or torch.export.export(model, args), or "
           "torch.compile(model).")


def script_error(what):
    return FastconvScriptError(f"torch.jit.script does not support {what}. {_ADVICE}")


def refuse_script_module(self):
    """__prepare_scriptable__ of fastconv's modules."""
    raise script_error(f"fastconv.nn.{type(self).__name__} (a fastconv module)")


def refuse_script_function(fn):
    """Marks a function of fastconv.nn.functional so that torch.jit.script of it, or of code that calls it,
    raises FastconvScriptError up front."""
    def prepare():
        raise script_error(f"fastconv.nn.functional.{fn.__name__} (a fastconv function)")

    fn.__prepare_scriptable__ = prepare
    return fn
