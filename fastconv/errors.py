"""Exception classes of fastconv's Python API.

fastconv checks its arguments in Python and says which argument is wrong; torch checks most of the same
things in C++ and raises RuntimeError (TORCH_CHECK), or TypeError from its argument parser, or
NotImplementedError for a dtype it has no kernel for. So that code written around torch
(``except RuntimeError``) catches fastconv's errors too, while code written around fastconv's earlier
releases (``except ValueError`` / ``except TypeError``) keeps working, every error fastconv's functional API
and modules raise is a FastconvError, which is a RuntimeError, and also an instance of the Python type that
names the kind of mistake:

    FastconvError          RuntimeError                     device mismatch; base of all of the below
    FastconvValueError     RuntimeError, ValueError          a bad value: negative padding, shape mismatch
    FastconvTypeError      RuntimeError, TypeError           a bad argument type: ceil_mode="False",
                                                             stride=(1.5, 2), groups=None
    FastconvDtypeError     RuntimeError, TypeError,          a tensor dtype fastconv has no kernel for
                           NotImplementedError               (torch: "... not implemented for 'Long'")
    FastconvOverflowError  RuntimeError, ValueError,         an int argument past int64 (torch: ValueError
                           TypeError, OverflowError          for a bare int, TypeError inside a tuple) or past
                                                             a documented limit ("must be smaller than 2^31")
    FastconvIndexError     RuntimeError, IndexError          an index out of range
    FastconvScriptError    RuntimeError                      torch.jit.script of a fastconv module

Errors the C++ ops raise through the dispatcher (ValueError / TypeError / IndexError, from TORCH_CHECK_VALUE
and friends) are re-raised by the functional API as the matching class above, with the same message.
"""
import re


class FastconvError(RuntimeError):
    """Base class of the errors fastconv's Python API raises; a RuntimeError, as torch's own checks are."""


class FastconvValueError(FastconvError, ValueError):
    """An argument has a bad value (a RuntimeError as torch's checks, and a ValueError)."""


class FastconvTypeError(FastconvError, TypeError):
    """An argument has a bad type (a TypeError as from torch's argument parser, and a RuntimeError)."""


class FastconvDtypeError(FastconvTypeError, NotImplementedError):
    """A tensor has a dtype fastconv has no kernel for: a TypeError, and a NotImplementedError (a
    RuntimeError) as torch's "not implemented for 'Long'"."""


class FastconvOverflowError(FastconvValueError, TypeError, OverflowError):
    """An int argument does not fit in int64, or is past one of fastconv's documented argument limits (README
    "Argument limits"). torch raises ValueError ("Overflow when unpacking long long") for a bare int, TypeError
    ("failed to unpack the object at pos 1 ...") for one inside a tuple, and OverflowError or RuntimeError where
    its own arithmetic overflows: this is all of them."""


class FastconvIndexError(FastconvError, IndexError):
    """An index is out of range (an IndexError, and a RuntimeError)."""


class FastconvScriptError(FastconvError):
    """torch.jit.script was asked to compile a fastconv module or function (not supported)."""


_WIDER = {ValueError: FastconvValueError, TypeError: FastconvTypeError, IndexError: FastconvIndexError}


_LIMIT = re.compile(r"must be smaller than 2\^\d+")


def widened(exc):
    """exc (raised by a C++ op through the dispatcher) as the fastconv class for its exact type, with the same
    message (an argument past a documented limit: FastconvOverflowError); exc itself when it already is a
    FastconvError or is of another type (a plain RuntimeError, say)."""
    cls = _WIDER.get(type(exc))
    if cls is FastconvValueError and _LIMIT.search(str(exc)):
        cls = FastconvOverflowError
    if cls is None:
        return exc
    try:
        new = cls(*exc.args)
    except Exception:  # cannot happen for these classes; keep the original rather than lose it
        return exc
    new.__traceback__ = exc.__traceback__
    return new


__all__ = ["FastconvError", "FastconvValueError", "FastconvTypeError", "FastconvDtypeError", "FastconvOverflowError",
           "FastconvIndexError", "FastconvScriptError"]
