"""Differential fuzzing of fastconv against torch: call specs, their generation, the worker processes that run
them and the rules that compare the two libraries (used by tests/test_fuzz.py).

How it works
------------
* A `Call` describes one call of a torch.nn.functional function, of a torch.nn module (constructor and forward)
  or of a raw op under torch.ops.fastconv (forward and backward ops), with its arguments. Tensor arguments are
  `T` specs (shape, dtype, memory layout, values, seed, requires_grad, device) and every argument renders as
  Python source: the same source builds the arguments in the worker and is printed as the reproducer of a
  failure, so a reproducer runs exactly what the fuzzer ran.
* The test process draws calls (`draw_call`: hypothesis draws a seed per call, or every choice with
  FASTCONV_FUZZ_DRAWS=hypothesis) and sends them one at a time to a long-lived worker process (`Worker`),
  started once per setting (threads, OpenMP environment). The worker builds the arguments twice, runs torch,
  then fastconv, then both backward passes, compares, and answers with a small result dict. If the worker
  dies (segfault, abort) or does not answer within the per-call timeout (hang), the parent records a crash or
  hang with the phase it was in and starts a new worker. If torch itself crashed or hung, the call runs again
  on fastconv alone (a crash or hang there is a failure; otherwise it is listed as a torch problem).

Rules (`execute`)
-----------------
* torch raises E: fastconv raises an instance of E. Raw ops: any exception (their contract is "reject bad
  arguments", torch has no such ops). torch's accidental exception types (`_ACCIDENTAL`): for AttributeError
  and IndexError (its Python code indexing a non-tensor or a short tuple) fastconv may raise TypeError or
  ValueError; for NotImplementedError (a kernel or F.pad lacking a dtype or rank) a RuntimeError.
* torch returns: fastconv returns the same structure, shapes, dtypes and devices; values within TOL of
  max|ref| (no absolute floor: denormals count), max pooling, adaptive max pooling and unpooling exactly, NaN
  and infinities at the same places; the same indices, except the documented -1 for a dilated max-pooling
  window with no tap inside the input (torch's value there is -inf; both sides' gradient there is left out);
  gradients (and second-order gradients for some calls) of every tensor argument and module parameter that
  requires grad, against a random grad_output. When torch's backward fails where its forward worked (some
  layouts, empty outputs) the reference is torch's gradient on contiguous copies, or zeros for empty tensors.
* Documented exceptions to "torch returns": fastconv's unsupported-dtype error (a TypeError naming float32
  and float64 when some data tensor or module parameter has another dtype; also accepted where torch's own
  kernel rejected the dtype, "not implemented for 'Long'"); tensors on different devices (cpu and meta:
  torch's meta kernels do not check, and may return garbage) where fastconv may raise a RuntimeError, and
  only shapes are compared otherwise; an empty result torch computed from window arguments >= 2**62, or an
  output whose sizes differ from the exact ones (torch's output-size arithmetic overflows), where fastconv
  may raise or return the exact size; the documented argument limits (README: pooling windows and
  transposed-convolution arguments below 2^31, convolution arguments below 2^62: a ValueError saying so); an
  allocation failure of torch's (no reference).
* fastconv's forward taking more than 2 s and 50x torch's time is a failure ("slow").
* torch's side runs on one thread (torch's own convolution backward hangs under OMP_THREAD_LIMIT=1 with
  two torch threads); fastconv's side runs with the setting's threads.
* Inputs on which torch misbehaves are not generated or are routed around, each noted where it is done:
  torch's max_pool1d without indices (hangs or segfaults for kernels from ~2**40: the reference takes the
  values of max_pool1d with indices), paddings above 2**22 with huge max-pooling windows (torch steps through
  the padding one dilation at a time), tuple kernel sizes for lp_pool1d, numpy ints for max_unpool and
  adaptive pooling (torch fails on them by accident), NaN / inf values in convolutions (0 * NaN through
  padding: torch's own backends disagree).
"""
import dataclasses
import math
import os
import pickle
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))

TOL = {"float32": 1e-4, "float64": 1e-10}
FAST_DTYPES = ("float32", "float64")
NUMEL_CAP = 100_000  # elements of any tensor the fuzzer builds (arguments, not outputs)
SLOW_FLOOR_S, SLOW_FACTOR = 2.0, 50  # fastconv's call is "slow" above both 2 s and 50x torch's time

# Thread / OpenMP settings a worker runs under: environment at start, torch.set_num_threads, and
# fastconv._C.set_min_parallel_work (0 forces the threaded paths on small shapes).
SETTINGS = {
    "default": dict(env={}, threads=None, min_work=None),
    "threaded": dict(env={}, threads=3, min_work=0),
    "omp_limit1": dict(env={"OMP_THREAD_LIMIT": "1"}, threads=None, min_work=0),
    "omp_dynamic": dict(env={"OMP_DYNAMIC": "true"}, threads=4, min_work=0),
    "omp_limit2_threads4": dict(env={"OMP_THREAD_LIMIT": "2"}, threads=4, min_work=0),
}


# ----------------------------------------------------------------------------------------------------------
# Values that render as source code
# ----------------------------------------------------------------------------------------------------------

class Expr:
    """An argument given by its source text (numpy ints, 0-d tensors, dtypes, object(), ...)."""

    def __init__(self, code):
        self.code = code

    def __repr__(self):
        return self.code

    def __eq__(self, other):
        return isinstance(other, Expr) and other.code == self.code

    def __hash__(self):
        return hash(self.code)


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


_TORCH_DTYPE = {
    "float32": "torch.float32", "float64": "torch.float64", "float16": "torch.float16",
    "bfloat16": "torch.bfloat16", "int64": "torch.int64", "int32": "torch.int32", "uint8": "torch.uint8",
    "bool": "torch.bool", "complex64": "torch.complex64",
}
_FLOATING = ("float32", "float64", "float16", "bfloat16", "complex64")


@dataclass(frozen=True)
class T:
    """A tensor argument. layout: contiguous | channels_last (the channel dim innermost in memory) |
    noncontig (every 2nd element of a twice-as-long last dim) | offset (storage offset 1) | reversed (all dims
    permuted in memory) | expand (stride 0 along dim `expand_dim`) | expand_all (a broadcast single value) |
    rowstride (every 2nd element of the first dim). values: normal | positive | ties | nan | inf | denormal |
    signed_zeros | huge | zeros. pool: for max_unpool arguments, (part, source shape, kernel, stride, padding,
    dilation, ceil_mode): the values (part 0) or indices (part 1) of torch's max pooling of a random source;
    index_fix: (kind, amount) makes indices out of range / another dtype."""
    shape: tuple
    dtype: str = "float32"
    layout: str = "contiguous"
    values: str = "normal"
    seed: int = 0
    rg: bool = False
    device: str = "cpu"
    expand_dim: int = 0
    pool: tuple = None
    index_fix: tuple = None
    contiguous: bool = False  # the same values, copied contiguous (torch's second opinion)

    def numel(self):
        return _prod(self.shape)

    def wants_grad(self):
        return self.rg and self.dtype in _FLOATING and self.pool is None or (
            self.rg and self.pool is not None and self.pool[0] == 0 and self.dtype in _FLOATING)

    def _physical(self):
        """(shape to build, suffix that views it as self.shape)."""
        shape, r, lay = tuple(self.shape), len(self.shape), self.layout
        if lay == "channels_last" and r >= 3:
            perm = (0,) + tuple(range(2, r)) + (1,)  # built N, *spatial, C
            inv = [0] * r
            for i, p in enumerate(perm):
                inv[p] = i
            return tuple(shape[p] for p in perm), f".permute{tuple(inv)}"
        if lay == "noncontig" and r >= 1:
            return shape[:-1] + (2 * shape[-1],), "[..., ::2]"
        if lay == "rowstride" and r >= 1:
            return (2 * shape[0],) + shape[1:], "[::2]"
        if lay == "offset":
            return (self.numel() + 1,), f"[1:].view({shape})"
        if lay == "reversed" and r >= 2:
            perm = tuple(reversed(range(r)))
            return tuple(shape[p] for p in perm), f".permute{perm}"
        if lay == "expand" and r >= 1:
            d = self.expand_dim % r
            return shape[:d] + (1,) + shape[d + 1:], f".expand{shape}"
        if lay == "expand_all" and r >= 1:
            return (1,) * r, f".expand{shape}"
        return shape, ""

    def code(self):
        if self.contiguous:
            return f"{dataclasses.replace(self, contiguous=False).code()}.contiguous()"
        if self.pool is not None:
            return self._pool_code()
        phys, view = self._physical()
        n = _prod(phys)
        dt = self.dtype
        if self.device == "meta":
            base = f"torch.empty({phys}, dtype={_TORCH_DTYPE[dt]}, device='meta')"
        else:
            base = self._values_code(n, dt) + f".reshape({phys})"
        if self.rg and dt in _FLOATING:
            base += ".requires_grad_()"
        return base + view

    def _values_code(self, n, dt):
        gen = f"torch.Generator().manual_seed({self.seed})"
        v = f"torch.randn({n}, generator={gen}, dtype=torch.float64)"
        kind = self.values
        if kind == "positive":
            v += ".abs().add(0.05)"
        elif kind == "ties":
            v += ".mul(1.5).round()"
        elif kind == "nan":
            v = f"{v}.masked_fill(torch.arange({n}) % 5 == 2, float('nan'))"
        elif kind == "inf":
            v = (f"{v}.masked_fill(torch.arange({n}) % 7 == 3, float('inf'))"
                 f".masked_fill(torch.arange({n}) % 7 == 5, float('-inf'))")
        elif kind == "denormal":
            v += ".mul(1e-310)" if dt == "float64" else ".mul(1e-39)"
        elif kind == "signed_zeros":
            v += ".sign().mul(0.0)"
        elif kind == "huge":
            v += ".mul(1e30)" if dt != "float64" else ".mul(1e300)"
        elif kind == "zeros":
            v += ".mul(0.0)"
        if dt in ("int64", "int32"):
            return v + f".mul(3).round().nan_to_num(0, 0, 0).to({_TORCH_DTYPE[dt]})"
        if dt == "uint8":
            return v + ".abs().mul(3).round().nan_to_num(0, 0, 0).to(torch.uint8)"
        if dt == "bool":
            return v + ".gt(0)"
        if dt == "float64":
            return v
        return v + f".to({_TORCH_DTYPE[dt]})"

    def _pool_code(self):
        part, src_shape = self.pool[:2]
        src = T(tuple(src_shape), "float64", "contiguous", self.values, self.seed).code()
        if self.pool[2] == "adaptive":  # (part, source shape, "adaptive", output size)
            v = f"torch.nn.functional.adaptive_max_pool2d({src}, {self.pool[3]}, return_indices=True)[{part}]"
        else:
            k, s, p, d, ceil = self.pool[2:]
            v = (f"torch.nn.functional.max_pool{len(k)}d({src}, {k}, {s}, {p}, {d}, {ceil}, "
                 f"return_indices=True)[{part}]")
        if part == 0:
            if self.dtype != "float64":
                v += f".to({_TORCH_DTYPE[self.dtype]})"
        elif self.index_fix is not None:
            kind, amount = self.index_fix
            if kind == "add_first":  # first index moved by `amount` (out of range)
                v = f"(lambda i: i + (torch.arange(i.numel()).view(i.shape) == 0) * {amount})({v})"
            elif kind == "dtype":
                v += f".to({_TORCH_DTYPE[amount]})"
            elif kind == "shift_all":
                v = f"({v} + {amount})"
        if self.layout == "channels_last" and len(self.shape) == 4:
            v += ".contiguous(memory_format=torch.channels_last)"
        elif self.layout == "noncontig" and len(self.shape) >= 1:
            v = f"(lambda t: torch.stack([t, t], -1).flatten(-2)[..., ::2])({v})"
        elif self.layout == "reversed" and len(self.shape) >= 2:
            v += ".transpose(0, -1).contiguous().transpose(0, -1)"
        if self.device == "meta":
            v += ".to('meta')"
        if part == 0 and self.rg and self.dtype in _FLOATING:
            v += ".detach().requires_grad_()"
        return v


def _render(value, tensors):
    """Source of an argument value; tensors get names x0, x1, ... (appended to `tensors`)."""
    if isinstance(value, T):
        name = f"x{len(tensors)}"
        tensors.append((name, value))
        return name
    if isinstance(value, Expr):
        return value.code
    if isinstance(value, float):
        if math.isnan(value):
            return "float('nan')"
        if math.isinf(value):
            return "float('inf')" if value > 0 else "float('-inf')"
        return repr(value)
    if isinstance(value, tuple):
        items = [_render(v, tensors) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v, tensors) for v in value) + "]"
    return repr(value)


# ----------------------------------------------------------------------------------------------------------
# Calls
# ----------------------------------------------------------------------------------------------------------

@dataclass
class Call:
    """One call to compare. api: functional (torch.nn.functional.op vs fastconv.nn.functional.op), module
    (torch.nn.op(*ctor) vs fastconv.nn.op(*ctor), both called with args) or raw (a reference in this file vs
    torch.ops.fastconv.op). window: (spatial, kernel, stride, padding, dilation, input sizes) of a max pooling
    with plain int arguments, for the documented index -1 rule. expect: see _torch_size_overflowed."""
    family: str
    api: str
    op: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    ctor: tuple = ()
    ctor_kwargs: dict = field(default_factory=dict)
    seed: int = 0
    gradgrad: bool = False
    exact: bool = False  # values are selected, not computed (max pooling, unpooling): compare exactly
    window: tuple = None
    expect: tuple = None  # the exact output spatial sizes (Python ints) when every size argument is a plain int
    causal: bool = False  # conv1d padding='causal' (a fastconv extension): torch's side pads explicitly

    def tensors(self):
        names = []
        _render(self.args, names)
        _render(self.kwargs and tuple(self.kwargs.values()), names)
        return names

    def _torch_pool1d_via_indices(self):
        """torch's max_pool1d without indices (its max_pool1d_impl kernel) hangs or segfaults for kernel sizes
        from about 2**40 (torch bug): torch's side computes max_pool1d with indices and keeps the values."""
        if self.op == "max_pool1d":
            return self.kwargs.get("return_indices", False) is False and len(self.args) <= 6
        if self.op == "MaxPool1d":
            return self.ctor_kwargs.get("return_indices", False) is False
        return False

    def render(self, side):
        """-> (list of statements, expression) for side 'torch' or 'fastconv'."""
        tensors = []
        via_indices = side == "torch" and self._torch_pool1d_via_indices()
        kwargs = dict(self.kwargs, return_indices=True) if via_indices and self.api == "functional" else self.kwargs
        ctor_kwargs = dict(self.ctor_kwargs, return_indices=True) if via_indices else self.ctor_kwargs
        args = ", ".join(_render(a, tensors) for a in self.args)
        kw = ", ".join(f"{k}={_render(v, tensors)}" for k, v in kwargs.items())
        call_args = ", ".join(x for x in (args, kw) if x)
        lines = [f"{name} = {t.code()}" for name, t in tensors]
        if self.api == "functional":
            if side == "torch" and self.causal:
                expr = _causal_reference_expr(self)
            else:
                mod = "torch.nn.functional" if side == "torch" else "fastconv.nn.functional"
                expr = f"{mod}.{self.op}({call_args})"
        elif self.api == "module":
            ctor_t = []
            ctor = ", ".join(x for x in (", ".join(_render(a, ctor_t) for a in self.ctor),
                                         ", ".join(f"{k}={_render(v, ctor_t)}"
                                                   for k, v in ctor_kwargs.items())) if x)
            if side == "torch" and self.causal:
                ctor = ctor.replace("padding='causal'", "padding=0")
                lines.append(f"torch.manual_seed({self.seed}); m = torch.nn.{self.op}({ctor})")
                expr = _causal_module_expr(self, call_args)
            else:
                mod = "torch.nn" if side == "torch" else "fastconv.nn"
                lines.append(f"torch.manual_seed({self.seed}); m = {mod}.{self.op}({ctor})")
                expr = f"m({call_args})"
        else:
            mod = "fuzz_support.RawRef" if side == "torch" else "torch.ops.fastconv"
            expr = f"{mod}.{self.op}({call_args})"
        if via_indices:
            expr += "[0]"
        return lines, expr

    def repro(self):
        """A standalone reproducer (statements joined by '; '), running fastconv's side and torch's side."""
        lines_f, expr_f = self.render("fastconv")
        _, expr_t = self.render("torch")
        imports = "import torch, fastconv" + (", numpy" if "numpy." in " ".join(lines_f) + expr_f else "")
        if self.api == "raw":
            imports += "; import sys; sys.path.insert(0, 'tests'); import fuzz_support"
        body = "; ".join(lines_f)
        if self.api == "module":
            body = body.replace("; m = fastconv.nn.", "; m = fastconv.nn.")
        return f"{imports}; {body + '; ' if body else ''}print(fc := {expr_f}); print(ref := {expr_t})" \
            if self.api != "module" else \
            f"{imports}; {body}; print(fc := {expr_f})  # torch: {expr_t} with m = torch.nn.{self.op}(same args)"

    def size(self):
        """For choosing the smallest reproducer of a failure class."""
        return len(self.repro())


def _causal_reference_expr(call):
    """torch's equivalent of fastconv's conv1d(..., padding='causal'): left padding dilation * (k - 1)."""
    a = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), call.args))
    a.update(call.kwargs)
    tensors = []
    x, w = _render(a["input"], tensors), _render(a["weight"], tensors)
    b = _render(a.get("bias"), tensors)
    d = a.get("dilation", 1)
    d_src = _render(d, tensors)
    s = _render(a.get("stride", 1), tensors)
    g = _render(a.get("groups", 1), tensors)
    plain = _plain_ints(_no_numpy(d), 1)
    dd = str(plain[0]) if plain else "1"
    return (f"torch.nn.functional.conv1d(torch.nn.functional.pad({x}, ({dd} * ({w}.shape[-1] - 1), 0)), {w}, "
            f"{b}, {s}, 0, {d_src}, {g})")


def _causal_module_expr(call, call_args):
    """torch's Conv1d(padding=0) on the input padded on the left by dilation * (k - 1) with the padding_mode."""
    mode = call.ctor_kwargs.get("padding_mode", "zeros")
    mode = "constant" if mode == "zeros" else mode
    return (f"m(torch.nn.functional.pad({call_args}, (m.dilation[0] * (m.kernel_size[0] - 1), 0), "
            f"mode={mode!r}))")


# ----------------------------------------------------------------------------------------------------------
# References for the raw ops (their contract: 4-d tensors, exact list lengths, the functional API's rules)
# ----------------------------------------------------------------------------------------------------------

class _RawRefs:
    @staticmethod
    def _check(tensors, lists):
        import torch
        for t in tensors:
            if not isinstance(t, torch.Tensor) or t.dim() != 4:
                raise ValueError("raw op: 4-d tensor expected")
        for v, n in lists:
            if not isinstance(v, (list, tuple)) or len(v) != n:
                raise ValueError("raw op: wrong list length")

    def conv2d(self, x, w, b, stride, padding, dilation, groups, mode):
        import torch
        F = torch.nn.functional
        self._check((x, w), ((stride, 2), (padding, 4), (dilation, 2)))
        if mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError("raw conv2d: bad padding_mode")
        if any(p < 0 for p in padding):
            raise ValueError("raw conv2d: negative padding")
        hl, hh, wl, wh = padding
        if x.shape[0] and x.shape[1] and (x.shape[2] == 0 or x.shape[3] == 0):
            # torch's conv2d rejects an empty plane (only the batch or the channels may be empty); padding it
            # first with F.pad (as below for asymmetric padding) would hide that
            raise ValueError("raw conv2d: empty input plane")
        if mode == "zeros" and hl == hh and wl == wh:
            return F.conv2d(x, w, b, stride, (hl, wl), dilation, groups)
        # F.pad's modes: constant / reflect / replicate / circular
        xp = F.pad(x, (wl, wh, hl, hh), mode="constant" if mode == "zeros" else mode)
        return F.conv2d(xp, w, b, stride, 0, dilation, groups)

    def conv_transpose2d(self, x, w, b, stride, padding, output_padding, groups, dilation):
        import torch
        self._check((x, w), ((stride, 2), (padding, 2), (output_padding, 2), (dilation, 2)))
        out = torch.nn.functional.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)
        if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
            # torch casts a bias of another dtype, and skips the weight's dtype check for an empty batch; the raw
            # op takes one dtype (the functional API does the casting)
            raise EitherRaiseOr(out)
        return out

    def max_pool2d_with_indices(self, x, k, s, p, d, ceil):
        import torch
        self._check((x,), ((k, 2), (s, 2), (p, 2), (d, 2)))
        return torch.nn.functional.max_pool2d(x, k, s, p, d, ceil, True)

    def avg_pool2d(self, x, k, s, p, ceil, cip, div):
        import torch
        self._check((x,), ((k, 2), (s, 2), (p, 2)))
        return torch.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div)

    def adaptive_avg_pool2d(self, x, out):
        import torch
        self._check((x,), ((out, 2),))
        if any(o is None for o in out):
            raise ValueError("raw op: None size")
        return torch.nn.functional.adaptive_avg_pool2d(x, out)

    def adaptive_max_pool2d(self, x, out):
        import torch
        self._check((x,), ((out, 2),))
        if any(o is None for o in out):
            raise ValueError("raw op: None size")
        return torch.nn.functional.adaptive_max_pool2d(x, out, True)

    def max_unpool2d(self, x, ind, out):
        import torch
        self._check((x, ind), ((out, 2),))
        return torch.ops.aten.max_unpool2d(x, ind, out)


    # backward ops: the reference is autograd through the forward reference (or a scatter / gather by indices)
    @staticmethod
    def _vjp(make_out, leaf_shape, dtype, g, other):
        """Gradient of make_out(leaf, other) at a zero leaf of leaf_shape against g; with a meta tensor among
        them, everything on meta (shapes only, as torch's meta kernels)."""
        import torch
        meta = "meta" in (g.device.type, other.device.type)
        leaf = torch.zeros(tuple(leaf_shape), dtype=dtype, device="meta" if meta else g.device,
                           requires_grad=True)
        if meta:
            g, other = g.to("meta"), other.to("meta")
        out = make_out(leaf, other.detach())
        if out.shape != g.shape:
            raise ValueError(f"raw backward: grad_output of shape {tuple(g.shape)} for an output of shape "
                             f"{tuple(out.shape)}")
        if out.numel() == 0 or leaf.numel() == 0:  # torch's backward kernels reject some empty gradients
            return torch.zeros_like(leaf)
        return torch.autograd.grad(out, leaf, g)[0]

    def _float(self, *ts):
        import torch
        for t in ts:
            if not isinstance(t, torch.Tensor) or not t.is_floating_point():
                raise TypeError("raw op: floating tensor expected")

    def conv2d_backward_input(self, g, w, input_size, stride, padding, dilation, groups, mode):
        self._check((g, w), ((input_size, 4), (stride, 2), (padding, 4), (dilation, 2)))
        self._float(g, w)
        return self._vjp(lambda x, w_: self.conv2d(x, w_, None, stride, padding, dilation, groups, mode),
                         input_size, g.dtype, g, w)

    def conv2d_backward_weight(self, g, x, weight_size, stride, padding, dilation, groups, mode):
        self._check((g, x), ((weight_size, 4), (stride, 2), (padding, 4), (dilation, 2)))
        self._float(g, x)
        return self._vjp(lambda w, x_: self.conv2d(x_, w, None, stride, padding, dilation, groups, mode),
                         weight_size, g.dtype, g, x)

    def conv_backward_bias(self, g):
        self._check((g,), ())
        self._float(g)
        return g.sum((0, 2, 3))

    def avg_pool2d_backward(self, g, input_size, k, s, p, ceil, cip, div):
        import torch
        self._check((g,), ((input_size, 2), (k, 2), (s, 2), (p, 2)))
        self._float(g)
        return self._vjp(lambda x, _: torch.nn.functional.avg_pool2d(x, k, s, p, ceil, cip, div),
                         tuple(g.shape[:2]) + tuple(input_size), g.dtype, g, g)

    def adaptive_avg_pool2d_backward(self, g, input_size, channels_last):
        import torch
        self._check((g,), ((input_size, 4),))
        self._float(g)
        return self._vjp(lambda x, _: torch.nn.functional.adaptive_avg_pool2d(x, tuple(g.shape[-2:])), input_size,
                         g.dtype, g, g)

    def _scatter(self, g, ind, n, c, h, w, lowest=-1):
        """grad_output scattered (added) by flat per-plane indices; -1 (max pooling: a window without taps)
        adds nothing."""
        import torch
        self._check((g, ind), ())
        self._float(g)
        if ind.dtype != torch.int64:
            raise TypeError("raw op: int64 indices expected")
        if ind.shape != g.shape or tuple(g.shape[:2]) != (n, c) or min(h, w) < 0:
            raise ValueError("raw op: shapes do not match")
        if "meta" in (g.device.type, ind.device.type):
            return torch.empty((n, c, h, w), dtype=g.dtype, device="meta")
        flat_i, flat_g = ind.reshape(n, c, -1), g.reshape(n, c, -1)
        if flat_i.numel() and ((flat_i < lowest) | (flat_i >= h * w)).any():
            raise ValueError("raw op: index out of range")
        keep = flat_i >= 0
        out = torch.zeros(n, c, h * w + 1, dtype=g.dtype)
        out.scatter_add_(2, torch.where(keep, flat_i, h * w), flat_g)
        return out[:, :, :h * w].reshape(n, c, h, w)

    def max_pool2d_backward(self, g, ind, input_size):
        self._check((g,), ((input_size, 2),))
        return self._scatter(g, ind, g.shape[0], g.shape[1], *input_size)

    def max_pool2d_backward_window(self, g, ind, input_size, k, s, p, d):
        """As max_pool2d_backward, for a (grad_output, indices) that a max pooling of input_size with this
        window (either ceil_mode) produces: torch's shape checks on a meta input decide."""
        import torch
        self._check((g,), ((input_size, 2), (k, 2), (s, 2), (p, 2), (d, 2)))
        x = torch.empty(tuple(g.shape[:2]) + tuple(input_size), device="meta")
        shapes = []
        for ceil in (False, True):
            try:
                shapes.append(torch.nn.functional.max_pool2d(x, k, s, p, d, ceil).shape)
            except RuntimeError as e:
                err = e
        result = self._scatter(g, ind, g.shape[0], g.shape[1], *input_size)
        if not shapes or g.shape not in shapes:  # the window does not fit: raising is right, so is the scatter
            raise EitherRaiseOr(result)
        return result

    def adaptive_max_pool2d_backward(self, g, ind, input_size, channels_last):
        self._check((g,), ((input_size, 4),))
        return self._scatter(g, ind, *input_size, lowest=0)

    def _gather(self, x, ind, lowest=-1):
        import torch
        self._check((x, ind), ())
        self._float(x)
        if ind.dtype != torch.int64:
            raise TypeError("raw op: int64 indices expected")
        n, c, h, w = x.shape
        if tuple(ind.shape[:2]) != (n, c):
            raise ValueError("raw op: shapes do not match")
        if "meta" in (x.device.type, ind.device.type):
            return torch.empty(ind.shape, dtype=x.dtype, device="meta")
        flat = ind.reshape(n, c, -1)
        if flat.numel() and ((flat < lowest) | (flat >= h * w)).any():
            raise ValueError("raw op: index out of range")
        # -1 (a max-pooling window without taps) gathers 0
        got = x.reshape(n, c, -1).gather(2, flat.clamp(min=0)).reshape(ind.shape)
        return got.masked_fill(ind == -1, 0)

    def max_pool2d_gather(self, x, ind):
        return self._gather(x, ind)

    def adaptive_max_pool2d_gather(self, x, ind):
        return self._gather(x, ind, lowest=0)  # adaptive windows are never empty


RawRef = _RawRefs()


class EitherRaiseOr(Exception):
    """Raised by a reference when the call is invalid but computing `value` is an acceptable answer too."""

    def __init__(self, value):
        super().__init__("raising or returning the value are both acceptable")
        self.value = value


# ----------------------------------------------------------------------------------------------------------
# Worker side: run one call on both libraries and compare
# ----------------------------------------------------------------------------------------------------------

def _exc_info(e):
    msg = str(e).strip().splitlines()
    return {"type": type(e).__name__, "mro": [c.__name__ for c in type(e).__mro__],
            "msg": (msg[0] if msg else "")[:300]}


def _is_unsupported_dtype_error(e, call, ns):
    """fastconv's documented error for a dtype it does not implement on the CPU: a TypeError naming float32 and
    float64, raised when some data tensor argument (not an indices tensor) or a module parameter has another
    dtype."""
    import torch
    if not isinstance(e, TypeError):
        return False
    msg = str(e)
    if "float32" not in msg or "float64" not in msg:
        return False
    dtypes = [t.dtype for _, t in call.tensors() if not (t.pool is not None and t.pool[0] == 1)]
    m = ns.get("m")
    if isinstance(m, torch.nn.Module):
        dtypes += [str(p.dtype).replace("torch.", "") for p in m.parameters()]
    return any(dt not in FAST_DTYPES for dt in dtypes)


# torch's kernels' own rejection of a dtype ("max_pool2d" not implemented for 'Long'): fastconv's documented
# unsupported-dtype TypeError is then as good an answer.
_TORCH_DTYPE_REJECTION = re.compile(r"not implemented for '\w+'")


# torch ran out of memory (its padded copy or column buffer for a huge padding or dilation)
_ALLOC_FAILURE = re.compile(r"can't allocate memory|not enough memory|std::bad_alloc|out of memory", re.I)


def _torch_size_overflowed(call, out):
    """torch returned an output whose spatial sizes differ from the exact ones (call.expect)."""
    if call.expect is None:
        return False
    outs, _ = _flatten_out(out)
    if not outs or outs[0].dim() < len(call.expect):
        return False
    return tuple(outs[0].shape[outs[0].dim() - len(call.expect):]) != tuple(call.expect)


# README "Argument limits": pooling windows and transposed-convolution arguments below 2^31, convolution
# stride / padding / dilation below 2^62; beyond them fastconv raises a ValueError saying so.
_DOCUMENTED_LIMIT = re.compile(r"must be smaller than 2\^(31|62)\b")
# where every size argument must be below 2^31: any ValueError is within the documented limits there
_WINDOW_FAMILIES = ("max_pool", "avg_pool", "lp_pool", "conv_transpose")


def _torch_overflowed(call, out):
    """torch's output-size arithmetic overflows int64 for window arguments from 2**62 (kernel_size
    2**63 - 1 gives an output of length 1): an empty result computed from such arguments is no reference, and
    fastconv may raise instead."""
    def big(v):
        if isinstance(v, int) and not isinstance(v, bool):
            return abs(v) >= 2**62
        if isinstance(v, (tuple, list)):
            return any(big(x) for x in v)
        return False
    outs, _ = _flatten_out(out)
    return bool(outs) and any(o.numel() == 0 for o in outs) and (
        big(call.args) or big(tuple(call.kwargs.values())) or big(call.ctor) or
        big(tuple(call.ctor_kwargs.values())))


# fastconv's rejection of a dilation with a 0 in it (torch's oneDNN path and its empty-batch path take it)
_ZERO_DILATION = re.compile(r"dilation must be positive, got [\[(][^\])]*\b0\b")
# fastconv's rejection of negative padding, which torch's F.pad (modules with a non-zero padding_mode) takes
# as cropping
_NEGATIVE_PADDING = re.compile(r"padding must be non-negative")


def _meta_involved(call):
    """Some tensor argument (or the module's parameters) on the meta device: torch's meta kernels skip many
    checks (devices that differ, a bias of the wrong length) and torch returns a result there; fastconv may
    instead raise (a RuntimeError), and when both return only shapes and dtypes are compared."""
    devices = {t.device for _, t in call.tensors()}
    if call.api == "module":
        devices.add(call.ctor_kwargs.get("device", "cpu"))
    return "meta" in devices


def _flatten_out(out):
    import torch
    if isinstance(out, torch.Tensor):
        return [out], "Tensor"
    if isinstance(out, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in out):
        return list(out), f"{type(out).__name__}[{len(out)}]"
    return None, type(out).__name__


def _cmp_tensor(got, ref, what, exact):
    """None if `got` matches `ref`, else a description."""
    import torch
    if got.shape != ref.shape:
        return f"{what}: shape {tuple(got.shape)} != torch's {tuple(ref.shape)}"
    if got.dtype != ref.dtype:
        return f"{what}: dtype {got.dtype} != torch's {ref.dtype}"
    if got.device != ref.device:
        return f"{what}: device {got.device} != torch's {ref.device}"
    if ref.device.type == "meta" or ref.numel() == 0:
        return None
    if ref.is_complex():
        return _cmp_tensor(torch.view_as_real(got.detach().resolve_conj()),
                           torch.view_as_real(ref.detach().resolve_conj()), what, exact)
    if not ref.is_floating_point():
        if not torch.equal(got, ref):
            bad = (got != ref).nonzero()[0].tolist()
            return (f"{what}: {int((got != ref).sum())} of {ref.numel()} values differ, first at {bad}: "
                    f"{got[tuple(bad)].item()} != torch's {ref[tuple(bad)].item()}")
        return None
    g, r = got.detach().double(), ref.detach().double()
    gn, rn = torch.isnan(g), torch.isnan(r)
    if not torch.equal(gn, rn):
        bad = (gn != rn).nonzero()[0].tolist()
        return (f"{what}: NaN positions differ ({int(gn.sum())} vs torch's {int(rn.sum())}), first at {bad}: "
                f"{g[tuple(bad)].item()} vs torch's {r[tuple(bad)].item()}")
    gi, ri = torch.isinf(g) & ~gn, torch.isinf(r) & ~rn
    if not torch.equal(gi, ri) or not torch.equal(g[ri], r[ri]):
        bad = ((gi != ri) | (ri & (g != r))).nonzero()[0].tolist()
        return (f"{what}: infinities differ ({int(gi.sum())} vs torch's {int(ri.sum())}), first at {bad}: "
                f"{g[tuple(bad)].item()} vs torch's {r[tuple(bad)].item()}")
    fin = ~(rn | ri)
    if not fin.any():
        return None
    diff = (g - r).abs().masked_fill(~fin, 0)
    err = diff.max().item()
    if exact:
        ok = err == 0
        tol_txt = "exact"
    else:
        scale = r.abs().masked_fill(~fin, 0).max().item()
        tol = TOL.get(str(ref.dtype).replace("torch.", ""), 1e-3) * scale  # no floor: denormals count
        ok = err <= tol
        tol_txt = f"tol {tol:.3g}"
    if not ok:
        bad = (diff == err).nonzero()[0].tolist()
        return (f"{what}: max abs error {err:.4g} ({tol_txt}) at {bad}: {g[tuple(bad)].item()!r} vs torch's "
                f"{r[tuple(bad)].item()!r}")
    return None


def _empty_window_mask(call, out_shape):
    """Bool mask over a max pooling's output: windows with no tap inside the input (fastconv: index -1)."""
    import torch
    spatial, kernel, stride, padding, dilation, in_sizes = call.window
    out_sizes = out_shape[-spatial:]
    masks = []
    for L, O, k, s, p, d in zip(in_sizes, out_sizes, kernel, stride, padding, dilation):
        m = []
        for o in range(O):
            start = o * s - p
            j0 = 0 if start >= 0 else -(start // d) if (-start) % d == 0 else -start // d + 1
            m.append(not (j0 < k and start + j0 * d < L))
        masks.append(torch.tensor(m, dtype=torch.bool))
    if spatial == 1:
        mask = masks[0]
    else:
        mask = masks[0][:, None] | masks[1][None, :]
    return mask.expand(out_shape)


class _Side:
    def __init__(self):
        self.ns = None
        self.out = None
        self.exc = None
        self.tb = None


def _run_side(call, side):
    import numpy
    import torch
    import fastconv
    s = _Side()
    s.ns = {"torch": torch, "fastconv": fastconv, "numpy": numpy, "fuzz_support": sys.modules[__name__]}
    lines, expr = call.render(side)
    try:
        for line in lines:
            exec(line, s.ns)
        s.out = eval(expr, s.ns)
    except Exception as e:  # noqa: BLE001  (every exception is data here)
        s.exc = e
        s.tb = traceback.format_exc(limit=-3)
    return s


def _grad_inputs(call, ns):
    import torch
    names = [name for name, t in call.tensors() if t.wants_grad()]
    items = [(name, ns[name]) for name in names if isinstance(ns.get(name), torch.Tensor)
             and ns[name].requires_grad]
    m = ns.get("m")
    if isinstance(m, torch.nn.Module):
        items += [(f"m.{n}", p) for n, p in m.named_parameters() if p.requires_grad]
    return items


def _grads(outs, grad_outs, inputs, create_graph):
    import torch
    pairs = [(o, g) for o, g in zip(outs, grad_outs) if g is not None and o.requires_grad]
    if not pairs:
        return None
    gs = torch.autograd.grad([o for o, _ in pairs], [t for _, t in inputs], [g for _, g in pairs],
                             allow_unused=True, create_graph=create_graph)
    return list(gs)


# torch exception types that are accidents of torch's implementation rather than a contract: AttributeError
# (its Python code calls a tensor method on a non-tensor argument), IndexError (a dimension or a too-short
# tuple indexed out of range), ZeroDivisionError (its Python meta kernels divide by a zero stride: fastconv's
# ValueError), NotImplementedError (the RuntimeError subclass its kernels raise for a dtype or
# rank they lack, e.g. F.pad's "Padding size 4 is not supported for 6D input"). For these fastconv may raise
# the type it raises for that defect: a TypeError or ValueError (AttributeError, IndexError), a RuntimeError
# (NotImplementedError).
_ACCIDENTAL = {"AttributeError": (TypeError, ValueError), "IndexError": (TypeError, ValueError),
               "ZeroDivisionError": (ValueError,), "NotImplementedError": (RuntimeError,)}


def _exc_matches(fc_exc, ref_exc, call):
    if call.api == "raw":
        return isinstance(fc_exc, Exception)
    if isinstance(fc_exc, type(ref_exc)):
        return True
    return isinstance(fc_exc, _ACCIDENTAL.get(type(ref_exc).__name__, ()))


class _reference_threads:
    """torch's side runs on one thread: torch's own kernels hang under the restricted OpenMP settings (e.g.
    the weight gradient of F.conv2d never returns with OMP_THREAD_LIMIT=1 and 2 torch threads), and the
    reference does not depend on its thread count. fastconv's side runs with the setting's threads."""

    def __enter__(self):
        import torch
        self.n = torch.get_num_threads()
        if self.n != 1:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch
        if self.n != 1:
            torch.set_num_threads(self.n)


def execute(call, phase=lambda name: None, fastconv_only=False):
    """Runs `call` on torch and fastconv; -> result dict (outcome: match | both_raised | unsupported_ok |
    fail; kind and detail for a failure; torch_exc / fc_exc: exception infos). fastconv_only: after torch
    crashed or hung on the call, run fastconv's side alone (forward and, if it returns, backward)."""
    import torch
    if fastconv_only:
        phase("fastconv")
        got = _run_side(call, "fastconv")
        if got.exc is None:
            outs, _ = _flatten_out(got.out)
            phase("fastconv backward")
            if outs and outs[0].requires_grad and outs[0].is_floating_point():
                try:
                    outs[0].sum().backward()
                except Exception:  # noqa: BLE001
                    pass
        return {"outcome": "torch_problem", "fc_exc": _exc_info(got.exc) if got.exc else None,
                "fastconv": "raised " + type(got.exc).__name__ if got.exc else "returned " + _describe(got.out)}
    phase("torch")
    t0 = time.perf_counter()
    with _reference_threads():
        ref = _run_side(call, "torch")
    ref_t = time.perf_counter() - t0
    phase("fastconv")
    t0 = time.perf_counter()
    got = _run_side(call, "fastconv")
    got_t = time.perf_counter() - t0
    res = {"torch_exc": _exc_info(ref.exc) if ref.exc else None,
           "fc_exc": _exc_info(got.exc) if got.exc else None}
    if got_t > SLOW_FLOOR_S and got_t > SLOW_FACTOR * ref_t:
        return dict(res, outcome="fail", kind="slow",
                    detail=f"fastconv took {got_t:.2f} s, torch {ref_t:.3f} s (fastconv "
                           f"{'raised ' + type(got.exc).__name__ if got.exc else 'returned'})")
    if ref.exc is not None and _ALLOC_FAILURE.search(str(ref.exc)) and not isinstance(ref.exc, EitherRaiseOr):
        # torch ran out of memory (a padded copy or column buffer for a huge padding / dilation): no
        # reference; fastconv may return (unchecked) or raise a RuntimeError
        if got.exc is None or isinstance(got.exc, RuntimeError):
            return dict(res, outcome="both_raised" if got.exc is not None else "no_reference")
    if isinstance(ref.exc, EitherRaiseOr):
        if got.exc is not None:
            return dict(res, outcome="both_raised")
        ref.out, ref.exc, res["torch_exc"] = ref.exc.value, None, None
    if ref.exc is None and _torch_size_overflowed(call, ref.out):
        # torch's output-size arithmetic overflowed (32-bit in places: MaxPool1d(2**31 - 1, dilation=2) on 3
        # elements gives 7 outputs, Conv1d(padding=2**32 + 1) pads by 1): no reference. fastconv may raise,
        # or return the exact size.
        if got.exc is not None:
            if isinstance(got.exc, (ValueError, RuntimeError)):
                return dict(res, outcome="no_reference")
        else:
            outs, _ = _flatten_out(got.out)
            if outs and tuple(outs[0].shape[len(outs[0].shape) - len(call.expect):]) == tuple(call.expect):
                return dict(res, outcome="no_reference")
            return dict(res, outcome="fail", kind="output mismatch",
                        detail=f"fastconv returned {_describe(got.out)}, the exact output size is {call.expect} "
                               f"(torch's overflowed: {_describe(ref.out)})")
    if ref.exc is not None:
        if got.exc is not None:
            if _exc_matches(got.exc, ref.exc, call):
                return dict(res, outcome="both_raised")
            if _TORCH_DTYPE_REJECTION.search(str(ref.exc)) and _is_unsupported_dtype_error(got.exc, call, got.ns):
                return dict(res, outcome="unsupported_ok")
            if _meta_involved(call):
                # torch's meta kernels check little and compute shapes in wrapping int64: they fail late (a
                # TypeError from new_empty, an IndexError) where torch's CPU kernels and fastconv raise a
                # RuntimeError about the argument; any exception is an answer there
                return dict(res, outcome="device_ok")
            return dict(res, outcome="fail", kind="exception type",
                        detail=f"torch raised {type(ref.exc).__name__}({_exc_info(ref.exc)['msg']!r}), fastconv "
                               f"raised {type(got.exc).__name__}({_exc_info(got.exc)['msg']!r})")
        return dict(res, outcome="fail", kind="fastconv returned where torch raised",
                    detail=f"torch raised {type(ref.exc).__name__}({_exc_info(ref.exc)['msg']!r}); fastconv "
                           f"returned {_describe(got.out)}")
    if got.exc is not None:
        if _is_unsupported_dtype_error(got.exc, call, got.ns):
            return dict(res, outcome="unsupported_ok")
        if _meta_involved(call) and (isinstance(got.exc, RuntimeError) or call.api == "raw"):
            return dict(res, outcome="device_ok")  # (a raw op may raise any exception type)
        if _ZERO_DILATION.search(str(got.exc)):
            # torch checks dilation >= 0 only; its reference kernels then reject 0, its oneDNN backend computes
            # with it (float32 transposed convolution): fastconv rejects it for every dtype (README)
            return dict(res, outcome="backend_ok")
        if _NEGATIVE_PADDING.search(str(got.exc)) and call.ctor_kwargs.get("padding_mode", "zeros") != "zeros":
            return dict(res, outcome="backend_ok")  # torch crops (F.pad); fastconv rejects it (README)
        if _torch_overflowed(call, ref.out) and isinstance(got.exc, (ValueError, RuntimeError)):
            return dict(res, outcome="both_raised")
        limit = _DOCUMENTED_LIMIT.search(str(got.exc))
        every = (call.args, call.kwargs, call.ctor, call.ctor_kwargs)
        if isinstance(got.exc, ValueError) and (
                limit and _has_big_int(every, 2**int(limit.group(1))) or
                call.family in _WINDOW_FAMILIES and _has_big_int(every, 2**31)):
            return dict(res, outcome="limit_ok")
        if _ALLOC_FAILURE.search(str(got.exc)) and _has_big_int((call.args, call.kwargs, call.ctor,
                                                                 call.ctor_kwargs), 2**31):
            # torch truncates some arguments >= 2**31 to 32 bits (Conv1d(padding=2**32 + 1) pads by 1):
            # fastconv, computing the true output size, may run out of memory instead
            return dict(res, outcome="both_raised")
        return dict(res, outcome="fail", kind="fastconv raised where torch returned",
                    detail=f"fastconv raised {type(got.exc).__name__}({_exc_info(got.exc)['msg']!r}); torch "
                           f"returned {_describe(ref.out)}", tb=got.tb)
    phase("compare")
    ref_outs, ref_kind = _flatten_out(ref.out)
    got_outs, got_kind = _flatten_out(got.out)
    if ref_outs is None or got_outs is None or ref_kind != got_kind:
        return dict(res, outcome="fail", kind="result structure",
                    detail=f"fastconv returned {got_kind}, torch {ref_kind}")
    if _meta_involved(call):  # torch's result on / from meta tensors is no reference for values
        for i, (g, r) in enumerate(zip(got_outs, ref_outs)):
            if g.shape != r.shape or g.dtype != r.dtype:
                return dict(res, outcome="fail", kind="output mismatch",
                            detail=f"output {i}: {_describe(g)} != torch's {_describe(r)} (mixed devices)")
        return dict(res, outcome="device_ok")
    # documented: a dilated max-pooling window with no tap inside the input gets index -1 (torch: -inf and an
    # index outside the window) and no gradient.
    empty = None
    if call.window is not None and ref_outs[0].device.type == "cpu":
        empty = _empty_window_mask(call, tuple(ref_outs[0].shape))
        if not empty.any():
            empty = None
    for i, (g, r) in enumerate(zip(got_outs, ref_outs)):
        what = "output" if len(ref_outs) == 1 else ("values" if i == 0 else "indices")
        if what == "indices" and empty is not None and g.shape == r.shape and g.dtype == r.dtype:
            allowed = empty & (g == -1)
            r = torch.where(allowed, g, r)
        err = _cmp_tensor(g, r, what, call.exact or i > 0)
        if err:
            # a second opinion: torch on contiguous copies of the same values. Where torch's two answers
            # differ and fastconv's matches the contiguous one, torch is wrong (its transposed convolution
            # with a non-contiguous grouped weight and a stride near 2**31 is), not fastconv.
            plain = _contiguous_reference_outputs(call)
            if plain is not None and len(plain) == len(got_outs) and all(
                    _cmp_tensor(g2, r2, "", call.exact or j > 0) is None for j, (g2, r2) in
                    enumerate(zip(got_outs, plain))):
                return dict(res, outcome="no_reference")
            if not (call.exact or i > 0) and _as_precise_as_torch(call, got_outs[:1], ref_outs[:1], None, None):
                continue
            return dict(res, outcome="fail", kind=f"{what.split(':')[0]} mismatch", detail=err)
    # gradients
    ref_in = _grad_inputs(call, ref.ns)
    got_in = _grad_inputs(call, got.ns)
    if not ref_in or ref_outs[0].device.type == "meta":
        return dict(res, outcome="match")
    if _has_big_int((call.args, call.kwargs, call.ctor, call.ctor_kwargs), 2**24):
        # torch's convolution backward hangs for strides near 2**31: fastconv's backward runs unchecked
        phase("fastconv backward")
        outs = [o for o in got_outs if o.is_floating_point() and o.requires_grad]
        if outs:
            try:
                torch.autograd.grad(outs, [t for _, t in got_in], [torch.ones_like(o) for o in outs],
                                    allow_unused=True)
            except Exception:  # noqa: BLE001
                pass
        return dict(res, outcome="match")
    if [n for n, _ in ref_in] != [n for n, _ in got_in]:
        return dict(res, outcome="fail", kind="gradient inputs",
                    detail=f"fastconv's grad inputs {[n for n, _ in got_in]} != {[n for n, _ in ref_in]}")
    phase("torch backward")
    grad_outs = []
    for k, r in enumerate(ref_outs):
        if r.is_floating_point() and r.requires_grad:
            gen = torch.Generator().manual_seed(call.seed + 17 * k + 1)
            go = torch.randn(r.shape, generator=gen, dtype=torch.float64).to(r.dtype)
            if k == 0 and empty is not None:
                go = go.masked_fill(empty, 0)
            grad_outs.append(go)
        else:
            grad_outs.append(None)
    for k, (g, r) in enumerate(zip(got_outs, ref_outs)):
        if grad_outs[k] is not None and not g.requires_grad:
            return dict(res, outcome="fail", kind="output does not require grad",
                        detail=f"fastconv's output {k} does not require grad; torch's does")
    gg = call.gradgrad
    try:
        with _reference_threads():
            ref_g = _grads(ref_outs, grad_outs, ref_in, gg)
    except Exception as e:  # noqa: BLE001
        ref_g, ref_gexc = None, e
    else:
        ref_gexc = None
    phase("fastconv backward")
    try:
        got_g = _grads(got_outs, [None if go is None else go.clone() for go in grad_outs], got_in, gg)
    except Exception as e:  # noqa: BLE001
        got_g, got_gexc = None, e
        got_tb = traceback.format_exc(limit=-3)
    else:
        got_gexc = None
    if ref_gexc is not None and got_gexc is None:
        # torch's backward fails where its forward worked: on some layouts (max_unpool's backward: "view size
        # is not compatible"), or on empty outputs (adaptive pooling: "Expected grad_output to have non-zero
        # size"). The reference is then torch's gradient of the same values in contiguous tensors; for empty
        # tensors, zeros.
        alt = _contiguous_reference_grads(call, grad_outs, gg)
        if alt is not None:
            ref_g, ref_gexc = alt, None
        elif any(o.numel() == 0 for o in ref_outs) or any(t.numel() == 0 for _, t in ref_in):
            if all(g is None or not g.detach().any() for g in got_g):
                return dict(res, outcome="match")
    if ref_gexc is not None:
        if got_gexc is not None and _exc_matches(got_gexc, ref_gexc, call):
            return dict(res, outcome="match")
        return dict(res, outcome="fail", kind="backward: exception",
                    detail=f"torch's backward raised {type(ref_gexc).__name__}({str(ref_gexc)[:200]!r}); "
                           f"fastconv's {'raised ' + type(got_gexc).__name__ if got_gexc else 'returned'}")
    if got_gexc is not None:
        return dict(res, outcome="fail", kind="backward raised where torch's returned",
                    detail=f"{type(got_gexc).__name__}: {_exc_info(got_gexc)['msg']}", tb=got_tb)
    if ref_g is None:
        return dict(res, outcome="match")
    phase("compare grads")
    for (name, t), gr, gg_ in zip(ref_in, ref_g, got_g):
        gr = torch.zeros_like(t) if gr is None else gr
        gg_ = torch.zeros_like(t) if gg_ is None else gg_
        err = _cmp_tensor(gg_, gr, f"grad {name}", False)
        if err and not _as_precise_as_torch(call, [g_ for g_ in got_g], ref_g, grad_outs, [n for n, _ in ref_in]):
            return dict(res, outcome="fail", kind="gradient mismatch", detail=err)
        if err:
            break
    if gg:
        phase("torch double backward")
        # second order: d/d(inputs) of sum(grad_i * v_i)
        try:
            with _reference_threads():
                ref2 = _second_order(ref_in, ref_g, grad_outs, call.seed, ref_outs)
            ref2_exc = None
        except Exception as e:  # noqa: BLE001
            ref2, ref2_exc = None, e
        phase("fastconv double backward")
        try:
            got2 = _second_order(got_in, got_g, None, call.seed, got_outs)
            got2_exc = None
        except Exception as e:  # noqa: BLE001
            got2, got2_exc = None, e
        if ref2_exc is not None or got2_exc is not None:
            if ref2_exc is not None and got2_exc is not None:
                return dict(res, outcome="match")
            return dict(res, outcome="fail", kind="double backward: exception",
                        detail=f"torch: {type(ref2_exc).__name__ if ref2_exc else 'returned'}; fastconv: "
                               f"{type(got2_exc).__name__ + ': ' + str(got2_exc)[:200] if got2_exc else 'returned'}")
        if ref2 is not None and got2 is not None:
            for (name, t), a, b in zip(ref_in, ref2, got2):
                a = torch.zeros_like(t) if a is None else a
                b = torch.zeros_like(t) if b is None else b
                err = _cmp_tensor(b, a, f"second-order grad {name}", False)
                if err:
                    return dict(res, outcome="fail", kind="second-order gradient mismatch", detail=err)
    return dict(res, outcome="match")


def _float64_call(call):
    """`call` with its float32 tensors (and a float32 module) in float64: the same values, exactly."""
    def widen(v):
        if isinstance(v, T):
            return dataclasses.replace(v, dtype="float64") if v.dtype == "float32" else v
        if isinstance(v, tuple):
            return tuple(widen(x) for x in v)
        if isinstance(v, list):
            return [widen(x) for x in v]
        return v
    ctor_kwargs = dict(call.ctor_kwargs)
    if ctor_kwargs.get("dtype") == Expr("torch.float32"):
        ctor_kwargs["dtype"] = Expr("torch.float64")
    return dataclasses.replace(call, args=widen(call.args), kwargs={k: widen(v) for k, v in call.kwargs.items()},
                               ctor_kwargs=ctor_kwargs)


def _as_precise_as_torch(call, got, ref, grad_outs, names):
    """float32 results that miss TOL: fastconv's error against torch in float64 (the same values, exactly
    representable) is at most 4x torch's own float32 error, plus TOL. Long reductions that cancel (a bias
    gradient summing hundreds of terms to ~1e-3) have float32 errors far above TOL * max|result|, for torch
    too. got / ref: outputs (grad_outs None) or gradients of `names`."""
    import torch
    if not ref or any(r is not None and r.dtype != torch.float32 for r in ref):
        return False
    wide = _float64_call(call)
    with _reference_threads():
        side = _run_side(wide, "torch")
        if side.exc is not None:
            return False
        outs, _ = _flatten_out(side.out)
        if outs is None:
            return False
        if grad_outs is None:
            truth = outs[:len(ref)]
        else:
            inputs = dict(_grad_inputs(wide, side.ns))
            if [n for n in names if n not in inputs]:
                return False
            gos = [None if go is None else go.double() for go in grad_outs]
            try:
                truth = _grads(outs, gos, [(n, inputs[n]) for n in names], False)
            except Exception:  # noqa: BLE001
                return False
    for g, r, t in zip(got, ref, truth):
        if g is None or r is None or t is None:
            continue
        g, r, t = g.detach().double(), r.detach().double(), t.detach().double()
        if g.shape != t.shape or not torch.isfinite(t).all():
            return False
        torch_err = (r - t).abs().max().item() if t.numel() else 0.0
        ours = (g - t).abs().max().item() if t.numel() else 0.0
        if ours > 4 * torch_err + TOL["float32"] * (t.abs().max().item() if t.numel() else 0.0):
            return False
    return True


def _contiguous_call(call):
    """`call` with every tensor argument built contiguous (the same values)."""
    def contiguous(v):
        if isinstance(v, T):
            return dataclasses.replace(v, contiguous=True)
        if isinstance(v, tuple):
            return tuple(contiguous(x) for x in v)
        if isinstance(v, list):
            return [contiguous(x) for x in v]
        return v
    return dataclasses.replace(call, args=contiguous(call.args),
                               kwargs={k: contiguous(v) for k, v in call.kwargs.items()})


def _contiguous_reference_outputs(call):
    """torch's outputs for `call` on contiguous tensors, or None."""
    plain = _contiguous_call(call)
    if plain == call:
        return None
    with _reference_threads():
        side = _run_side(plain, "torch")
    if side.exc is not None:
        return None
    outs, _ = _flatten_out(side.out)
    return outs


def _contiguous_reference_grads(call, grad_outs, create_graph):
    """torch's gradients for `call` with every tensor argument built contiguous (the same values), or None."""
    plain = _contiguous_call(call)
    try:
        with _reference_threads():
            side = _run_side(plain, "torch")
            if side.exc is not None:
                return None
            outs, _ = _flatten_out(side.out)
            return _grads(outs, grad_outs, _grad_inputs(plain, side.ns), create_graph)
    except Exception:  # noqa: BLE001
        return None


def _second_order(inputs, grads, _unused, seed, outs):
    import torch
    terms = []
    for k, g in enumerate(grads):
        if g is not None and g.requires_grad:
            gen = torch.Generator().manual_seed(seed + 31 * k + 7)
            v = torch.randn(g.shape, generator=gen, dtype=torch.float64).to(g.dtype)
            terms.append((g * v).sum())
    if not terms:
        return None
    total = sum(terms)
    return list(torch.autograd.grad(total, [t for _, t in inputs], allow_unused=True))


def _describe(out):
    import torch
    if isinstance(out, torch.Tensor):
        return f"Tensor{tuple(out.shape)} {str(out.dtype).replace('torch.', '')}"
    if isinstance(out, (tuple, list)):
        return "(" + ", ".join(_describe(o) for o in out) + ")"
    return type(out).__name__


# ----------------------------------------------------------------------------------------------------------
# Worker process
# ----------------------------------------------------------------------------------------------------------

def _send(f, obj):
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(struct.pack("<I", len(data)) + data)
    f.flush()


def _recv_blocking(f):
    head = f.read(4)
    if len(head) < 4:
        return None
    (n,) = struct.unpack("<I", head)
    return pickle.loads(f.read(n))


def worker_main():
    """Entry point of a worker process: answers ('call', Call) messages on stdin with phase and result
    messages on the original stdout (file descriptor 1 is redirected to stderr so that prints cannot corrupt
    the channel)."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    inp = sys.stdin.buffer
    import faulthandler
    faulthandler.enable()
    try:
        import resource
        mem = int(os.environ.get("FASTCONV_FUZZ_MEM_BYTES", str(3 << 30)))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    except Exception:  # noqa: BLE001
        pass
    import warnings
    warnings.simplefilter("ignore")
    import torch
    import fastconv
    setting = SETTINGS[os.environ.get("FASTCONV_FUZZ_SETTING", "default")]
    if setting["threads"] is not None:
        torch.set_num_threads(setting["threads"])
    if setting["min_work"] is not None:
        fastconv._C.set_min_parallel_work(setting["min_work"])
    _send(out, ("ready", {"threads": torch.get_num_threads(), "pid": os.getpid()}))
    while True:
        msg = _recv_blocking(inp)
        if msg is None or msg[0] == "exit":
            break
        kind, call = msg
        try:
            result = execute(call, phase=lambda name: _send(out, ("phase", name)),
                             fastconv_only=kind == "call_fastconv")
        except Exception as e:  # noqa: BLE001  (a bug of the harness itself: report it, keep going)
            if _ALLOC_FAILURE.search(str(e)) or isinstance(e, MemoryError):  # huge outputs and their gradients
                result = {"outcome": "no_reference", "detail": repr(e)[:200]}
            else:
                result = {"outcome": "fail", "kind": "harness error", "detail": repr(e),
                          "tb": traceback.format_exc()}
        _send(out, ("result", result))


class Worker:
    """A worker process for one setting; call() runs one Call with a timeout, restarting the worker after a
    crash or a hang."""

    def __init__(self, setting, timeout):
        self.setting = setting
        self.timeout = timeout
        self.proc = None
        self.starts = 0
        self.start_seconds = 0.0

    def start(self):
        t0 = time.perf_counter()
        env = dict(os.environ)
        env.update(SETTINGS[self.setting]["env"])
        env["FASTCONV_FUZZ_SETTING"] = self.setting
        env["PYTHONPATH"] = HERE + os.pathsep + env.get("PYTHONPATH", "")
        if "FASTCONV_FUZZ_MEM_BYTES" not in env:
            env["FASTCONV_FUZZ_MEM_BYTES"] = str(_memory_limit())
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", "import fuzz_support; fuzz_support.worker_main()"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, env=env,
                                     cwd=os.path.dirname(HERE))
        self._buf = b""
        msg = self._recv(180.0)
        if msg is None or msg[0] != "ready":
            raise RuntimeError(f"fuzz worker for {self.setting} did not start: {msg!r}\n{self._stderr_tail()}")
        self.info = msg[1]
        self.starts += 1
        self.start_seconds += time.perf_counter() - t0

    def _recv(self, timeout):
        """One message, or None on EOF, or 'timeout'."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            if len(self._buf) >= 4:
                (n,) = struct.unpack("<I", self._buf[:4])
                if len(self._buf) >= 4 + n:
                    data, self._buf = self._buf[4:4 + n], self._buf[4 + n:]
                    return pickle.loads(data)
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return "timeout"
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buf += chunk

    def _stderr_tail(self, n=1500):
        try:
            self.err.seek(0)
            data = self.err.read().decode(errors="replace")
            return data[-n:]
        except Exception:  # noqa: BLE001
            return ""

    def call(self, call):
        """-> result dict (see execute), or a crash / hang result. When torch itself crashes or hangs, the call
        is run again on fastconv alone, in a new worker: outcome torch_problem, or a fastconv crash / hang."""
        res = self._call(call, "call")
        if res.get("outcome") == "torch_problem" and res.get("kind") in ("crash", "hang"):
            again = self._call(call, "call_fastconv")
            torch_detail = f"torch {res['kind']}: {res['detail']}"
            if again.get("kind") in ("crash", "hang"):
                again["outcome"] = "fail"
                again["detail"] += f"; {torch_detail}"
                return again
            res["detail"] = f"{torch_detail}; fastconv alone: {again.get('fastconv')}"
            res["seconds"] += again.get("seconds", 0.0)
        return res

    def _call(self, call, kind):
        if self.proc is None:
            self.start()
        t0 = time.perf_counter()
        try:
            _send(self.proc.stdin, (kind, call))
        except (BrokenPipeError, OSError):
            self._restart()
            _send(self.proc.stdin, (kind, call))
        phase = "sent"
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._recv(max(0.0, deadline - time.monotonic()))
            if msg == "timeout":
                self.kill()
                return {"outcome": "torch_problem" if phase.startswith("torch") else "fail",
                        "kind": "hang", "detail": f"no answer within {self.timeout:.0f} s (phase: {phase})",
                        "phase": phase, "seconds": time.perf_counter() - t0}
            if msg is None:
                rc = self.proc.wait()
                tail = self._stderr_tail()
                self.proc = None
                sig = f"signal {-rc} ({_signame(-rc)})" if rc < 0 else f"exit code {rc}"
                return {"outcome": "torch_problem" if phase.startswith("torch") else "fail", "kind": "crash",
                        "detail": f"worker died with {sig} (phase: {phase})", "phase": phase,
                        "stderr": tail, "seconds": time.perf_counter() - t0}
            if msg[0] == "phase":
                phase = msg[1]
                continue
            res = msg[1]
            res["seconds"] = time.perf_counter() - t0
            return res

    def _restart(self):
        self.kill()
        self.start()

    def kill(self):
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=30)
            except Exception:  # noqa: BLE001
                pass
            self.proc = None

    def close(self):
        if self.proc is not None:
            try:
                _send(self.proc.stdin, ("exit", None))
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.kill()
            self.proc = None


def _signame(n):
    import signal
    try:
        return signal.Signals(n).name
    except ValueError:
        return "?"


def _memory_limit():
    """Address-space limit of a worker: a call that asks for far too much memory fails (an exception),
    instead of taking the machine down."""
    try:
        with open("/proc/meminfo") as f:
            total = int(f.readline().split()[1]) * 1024
        return max(2 << 30, min(3 << 30, int(total * 0.4)))
    except Exception:  # noqa: BLE001
        return 3 << 30


# ----------------------------------------------------------------------------------------------------------
# Failure bookkeeping
# ----------------------------------------------------------------------------------------------------------

_ARG_NAMES = re.compile(r"\b(kernel_size|stride|padding|dilation|output_padding|groups|output_size|"
                        r"divisor_override|input_size)\b")


def _normalize(msg):
    msg = _ARG_NAMES.sub("ARG", msg)
    msg = re.sub(r"0x[0-9a-f]+", "0x?", msg)
    msg = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", msg)
    msg = re.sub(r"\(N(, N)*,?\)|\[N(, N)*\]", "(..)", msg)
    return msg[:90]


def signature(call, res):
    """Deduplication key of a failure: api, op, kind and the shape of the message."""
    kind = res.get("kind", "?")
    if kind in ("crash", "hang"):
        detail = f"{res.get('phase')}"
        if kind == "crash":
            detail += " " + re.sub(r"\(phase.*", "", res.get("detail", ""))
    elif kind == "exception type":
        te, fe = res["torch_exc"], res["fc_exc"]
        detail = f"torch {te['type']} / fastconv {fe['type']}: {_normalize(fe['msg'])}"
    elif kind == "fastconv raised where torch returned":
        detail = f"{res['fc_exc']['type']}: {_normalize(res['fc_exc']['msg'])}"
    elif kind == "fastconv returned where torch raised":
        detail = f"torch {res['torch_exc']['type']}: {_normalize(res['torch_exc']['msg'])}"
    else:
        detail = _normalize(res.get("detail", "")).split(":")[0]
    return (call.api, call.op, kind, detail)


class Record:
    """Counts and failures of one (family, setting)."""

    def __init__(self, family, setting):
        self.family, self.setting = family, setting
        self.counts = {}
        self.failures = {}  # signature -> [count, smallest call, its result]
        self.torch_problems = {}  # the same for calls on which torch itself crashed or hung
        self.seconds = 0.0
        self.stopped_early = False
        self.slowest = []  # (seconds, call) of the slowest calls
        self.hangs = self.crashes = 0  # worker kills and deaths, torch's included


    def add(self, call, res):
        out = res.get("outcome")
        key = out if out != "fail" else ("crash" if res.get("kind") == "crash" else
                                         "hang" if res.get("kind") == "hang" else "fail")
        self.counts["calls"] = self.counts.get("calls", 0) + 1
        self.counts[f"{call.api}"] = self.counts.get(f"{call.api}", 0) + 1
        self.counts[key] = self.counts.get(key, 0) + 1
        self.hangs += res.get("kind") == "hang" or "torch hang" in res.get("detail", "")
        self.crashes += res.get("kind") == "crash" or "torch crash" in res.get("detail", "")
        secs = res.get("seconds", 0.0)
        if len(self.slowest) < 3 or secs > self.slowest[-1][0]:
            self.slowest = sorted(self.slowest + [(secs, call)], key=lambda sc: -sc[0])[:3]
        if out in ("fail", "torch_problem"):
            sig = signature(call, res)
            book = self.failures if out == "fail" else self.torch_problems
            entry = book.get(sig)
            if entry is None:
                book[sig] = [1, call, res]
            else:
                entry[0] += 1
                if call.size() < entry[1].size():
                    entry[1], entry[2] = call, res

    def report(self, which="failures"):
        lines = []
        book = self.failures if which == "failures" else self.torch_problems
        for sig, (n, call, res) in sorted(book.items(), key=lambda kv: (-kv[1][0], kv[0])):
            lines.append(f"[{self.setting}] {sig[0]} {sig[1]}: {sig[2]} x{n}: {res.get('detail', '')[:400]}")
            lines.append(f"    repro: {call.repro()}")
            if res.get("stderr"):
                tail = [ln for ln in res["stderr"].splitlines() if ln.strip()][-6:]
                lines.append("    stderr: " + " | ".join(tail)[:600])
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Generation (hypothesis draws in the test process)
# ----------------------------------------------------------------------------------------------------------

# Argument values where ints are expected: boundary and overflowing ints, and other Python types.
WEIRD_INTS = (0, -1, -3, 2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, 2**63, -2**63, 2**64, 10**30, 65537)
WEIRD_TYPES = (2.0, 1.5, True, False, "2", None, [], [2], [2, 2, 2], (2.0, 1), Expr("numpy.int64(2)"),
               Expr("torch.tensor(2)"), Expr("torch.tensor(2.0)"), Expr("object()"), float("nan"), float("inf"),
               Expr("torch.tensor([2, 2])"), Expr("numpy.float32(2.0)"), (1, None), b"2")
_MODULE_DTYPES = ("float32", "float64", "float16", "bfloat16")
OTHER_DTYPES = ("float16", "bfloat16", "int64", "int32", "uint8", "bool", "complex64")


class Draw:
    """Drawing helpers. Two sources: 'seed' (default) draws one integer from hypothesis per call and makes the
    choices with a random.Random seeded by it, biased to the ends of integer ranges (~50 times faster than a
    hypothesis draw per choice, which is what lets the CI budget run thousands of calls); 'hypothesis' draws
    every choice from hypothesis (its own boundary bias; FASTCONV_FUZZ_DRAWS=hypothesis)."""

    def __init__(self, data, source=None):
        import random
        import hypothesis.strategies as st
        self.st = st
        self.data = data
        self.source = source or os.environ.get("FASTCONV_FUZZ_DRAWS", "seed")
        if self.source == "seed":
            self.rng = random.Random(data.draw(st.integers(0, 2**63 - 1), label="seed"))

    def int(self, lo, hi):
        if self.source != "seed":
            return self.data.draw(self.st.integers(lo, hi))
        r = self.rng.random()
        if r < 0.06:
            return lo
        if r < 0.1:
            return hi
        return self.rng.randint(lo, hi)

    def pick(self, seq):
        seq = list(seq)
        if self.source != "seed":
            return self.data.draw(self.st.sampled_from(seq))
        return seq[self.rng.randrange(len(seq))]

    def chance(self, pct):
        if self.source != "seed":
            return self.data.draw(self.st.integers(0, 99)) < pct
        return self.rng.random() * 100 < pct

    def weighted(self, items):
        total = sum(w for w, _ in items)
        r = self.int(0, total - 1) if self.source != "seed" else self.rng.randrange(total)
        for w, v in items:
            if r < w:
                return v
            r -= w
        return items[-1][1]

    def seed(self):
        if self.source != "seed":
            return self.int(0, 2**31 - 1)
        return self.rng.randrange(2**31)


def cap_shape(shape, cap=NUMEL_CAP // 2):
    """Halves the largest dims until the shape (and its twice-as-large noncontig storage) fits the cap."""
    shape = list(shape)
    while _prod(shape) > cap:
        i = max(range(len(shape)), key=lambda j: shape[j])
        shape[i] = max(1, shape[i] // 2)
    return tuple(shape)


_LAYOUTS = ((40, "contiguous"), (14, "channels_last"), (12, "noncontig"), (6, "offset"), (6, "reversed"),
            (9, "expand"), (4, "expand_all"), (5, "rowstride"))
_VALUES = ((72, "normal"), (6, "ties"), (4, "nan"), (3, "inf"), (4, "denormal"), (4, "signed_zeros"),
           (2, "huge"), (2, "zeros"), (3, "positive"))


# Convolutions: no NaN, infinities or overflowing values. 0 * NaN, 0 * inf and inf - inf make the NaN pattern
# depend on the algorithm (zero padding or cropped taps multiplied or skipped, GEMM / Winograd tiles), and
# torch's own backends differ there (its im2col weight gradient multiplies padding, its direct paths skip it).
_CONV_VALUES = tuple((w, v) for w, v in _VALUES if v not in ("inf", "huge", "nan"))


def tensor(d, shape, dtype="float32", rg_pct=50, values=None, layout=None, conv=False):
    shape = cap_shape(shape)
    values = values or d.weighted(_CONV_VALUES if conv else _VALUES)
    return T(tuple(shape), dtype, layout or d.weighted(_LAYOUTS), values, d.seed(),
             d.chance(rg_pct), "cpu", d.int(0, 5))


def random_shape(d, rank=None):
    rank = d.int(0, 6) if rank is None else rank
    return cap_shape(tuple(d.weighted(((6, 1), (6, 2), (4, 3), (2, 0), (2, 5))) for _ in range(rank)))


def mutate_tensor(d, t):
    """One defect of a tensor argument: rank, a zero-size dim, dtype, device, or not a tensor at all."""
    what = d.weighted(((5, "rank"), (5, "zero"), (4, "dtype"), (2, "meta"), (2, "pytype"), (1, "bigdim")))
    if what == "rank":
        return dataclasses.replace(t, shape=random_shape(d))
    if what == "zero" and len(t.shape):
        i = d.int(0, len(t.shape) - 1)
        return dataclasses.replace(t, shape=t.shape[:i] + (0,) + t.shape[i + 1:])
    if what == "dtype":
        return dataclasses.replace(t, dtype=d.pick(OTHER_DTYPES + ("float64", "float32")))
    if what == "meta":
        return dataclasses.replace(t, device="meta")
    if what == "bigdim" and len(t.shape):
        i = d.int(0, len(t.shape) - 1)
        shape = t.shape[:i] + (d.int(20, 4000),) + t.shape[i + 1:]
        return dataclasses.replace(t, shape=cap_shape(shape))
    return d.pick((None, 1.0, Expr("[[1.0, 2.0]]"), Expr("numpy.ones((1, 1, 4, 4))"), "x"))


def int_form(d, values, odd=True):
    """A valid spelling of per-axis ints: int (all equal), tuple, list, and with odd: numpy ints, 1-tuple."""
    values = tuple(values)
    same = all(v == values[0] for v in values)
    form = d.weighted(((10, "int" if same else "tuple"), (6, "tuple"), (3, "list"), (1 if odd else 0, "numpy"),
                       (1 if odd else 0, "one" if same else "tuple")))
    if form == "int":
        return values[0]
    if form == "list":
        return list(values)
    if form == "numpy":
        return tuple(Expr(f"numpy.int64({v})") for v in values)
    if form == "one":
        return (values[0],)
    return values


def weird_int_arg(d, spatial):
    """An invalid or extreme per-axis int argument."""
    kind = d.weighted(((6, "int"), (4, "entry"), (3, "type"), (1, "length")))
    if kind == "int":
        return d.pick(WEIRD_INTS)
    if kind == "entry":
        vals = [d.int(1, 3) for _ in range(spatial)]
        vals[d.int(0, spatial - 1)] = d.pick(WEIRD_INTS + (2.0, None, True))
        return tuple(vals)
    if kind == "length":
        return tuple(d.int(1, 3) for _ in range(d.pick((0, 3, 4) if spatial == 2 else (0, 2, 3))))
    return d.pick(WEIRD_TYPES)


def n_mutations(d, dtype="float32"):
    """How many defects a call gets (an unsupported dtype counts as one)."""
    if dtype not in FAST_DTYPES:
        return 0
    return d.weighted(((58, 0), (35, 1), (7, 2)))


def _dtype(d):
    dt = d.weighted(((45, "float32"), (40, "float64"), (15, "other")))
    return d.pick(OTHER_DTYPES) if dt == "other" else dt


def _batch_shape(d, channels, sizes):
    unbatched = d.chance(12)
    n = d.weighted(((6, 1), (5, 2), (2, 0), (2, 3)))
    return ((channels,) if unbatched else (n, channels)) + tuple(sizes)


def _meta_all(call_args):
    """All tensor arguments moved to the meta device."""
    def conv(v):
        if isinstance(v, T):
            return dataclasses.replace(v, device="meta")
        if isinstance(v, tuple):
            return tuple(conv(x) for x in v)
        return v
    return conv(call_args)


def _no_numpy(v):
    """v with numpy ints and 0-d tensors spelled as plain ints: torch's max_unpool and adaptive pooling fail on
    those by accident (torch._check(numpy.bool_), len(numpy.int64)) where fastconv accepts them."""
    if isinstance(v, Expr) and re.fullmatch(r"(numpy\.int64|torch\.tensor)\((-?\d+)\)", v.code):
        return int(re.fullmatch(r"(numpy\.int64|torch\.tensor)\((-?\d+)\)", v.code).group(2))
    if isinstance(v, tuple):
        return tuple(_no_numpy(x) for x in v)
    if isinstance(v, list):
        return [_no_numpy(x) for x in v]
    return v


def _has_big_int(v, limit):
    """Some plain int in v (nested tuples / lists / dicts) has |value| >= limit."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return abs(v) >= limit
    if isinstance(v, dict):
        v = tuple(v.values())
    if isinstance(v, (tuple, list)):
        return any(_has_big_int(x, limit) for x in v)
    return False


def _plain_ints(v, n):
    """v as a tuple of n Python ints, or None when it is not a plain spelling."""
    if type(v) is int:
        return (v,) * n
    if isinstance(v, (tuple, list)) and all(type(x) is int for x in v):
        if len(v) == n:
            return tuple(v)
        if len(v) == 1:
            return (v[0],) * n
    return None


# ---- convolution -------------------------------------------------------------------------------------------

def gen_conv(d, api):
    spatial = d.pick((1, 2))
    module = api == "module"
    dw = d.chance(20)
    groups = (d.int(1, 8) if d.chance(70) else d.pick((64, 256, 1024, 2048))) if dw else \
        d.weighted(((6, 1), (2, 2), (1, 3)))
    cin_pg = 1 if dw else d.int(1, 4)
    cout_pg = d.weighted(((6, 1), (3, 2), (1, 3))) if dw else d.int(1, 4)
    wide = groups >= 64  # depthwise over many channels: small kernels and planes, so that no tensor is capped
    if wide:
        cout_pg = 1
    cin, cout = groups * cin_pg, groups * cout_pg
    big = d.chance(6) and not wide
    k = tuple(d.int(1, 5 if not wide else 3) if not big else d.int(6, 120 if dw else 24) for _ in range(spatial))
    dil = tuple(d.weighted(((6, 1), (2, 2), (1, 3))) if not wide else 1 for _ in range(spatial))
    stride = tuple(d.weighted(((6, 1), (2, 2), (1, 3))) for _ in range(spatial))
    pmode = "zeros"
    if module:
        pmode = d.weighted(((6, "zeros"), (2, "reflect"), (2, "replicate"), (2, "circular")))
    pkind = d.weighted(((8, "int"), (2, "same"), (1, "valid"), (1 if spatial == 1 else 0, "causal")))
    if pkind == "same":
        stride = (1,) * spatial
    pads = tuple(d.int(0, 3) for _ in range(spatial)) if pkind == "int" else (0,) * spatial
    sizes = []
    for i in range(spatial):
        need = dil[i] * (k[i] - 1) + 1 - (2 * pads[i] if pkind == "int" else 0)
        if pkind in ("same", "causal"):
            need = 1
        need = max(need, pads[i] + 1 if pmode != "zeros" else 1,
                   dil[i] * (k[i] - 1) if (pkind == "same" and pmode != "zeros") else 1)
        sizes.append(max(1, need) + d.int(0, 6 if not wide else 1))
    dtype = _dtype(d)
    shape = _batch_shape(d, cin, sizes)
    if wide and _prod(shape) > NUMEL_CAP // 2:
        shape = (cin,) + tuple(sizes)
    x = tensor(d, shape, dtype, rg_pct=50, conv=True)
    w = tensor(d, (cout, cin_pg) + k, dtype if d.chance(95) else _dtype(d), rg_pct=70, conv=True)
    has_bias = d.chance(60)
    b = tensor(d, (cout,), dtype if d.chance(95) else _dtype(d), rg_pct=70, conv=True) if has_bias else None
    padding = {"int": int_form(d, pads), "same": "same", "valid": "valid", "causal": "causal"}[pkind]
    if w.shape != (cout, cin_pg) + k:  # cap_shape shrank a huge kernel: keep the input large enough
        k = w.shape[2:]
    args = {"input": x, "weight": w, "bias": b, "stride": int_form(d, stride), "padding": padding,
            "dilation": int_form(d, dil), "groups": groups}
    ctor = {"in_channels": cin, "out_channels": cout, "kernel_size": int_form(d, k), "stride": args["stride"],
            "padding": padding, "dilation": args["dilation"], "groups": groups, "bias": has_bias,
            "padding_mode": pmode, "dtype": Expr(f"torch.{dtype}") if dtype in _MODULE_DTYPES else
            Expr("torch.float32")}
    for _ in range(n_mutations(d, dtype)):
        slot = d.weighted(((6, "input"), (3, "weight"), (2, "bias"), (3, "stride"), (3, "padding"),
                           (3, "dilation"), (3, "groups"), (2, "channels"), (2, "meta_all"), (1, "pmode")))
        if slot == "input":
            args["input"] = mutate_tensor(d, x)
        elif slot == "weight":
            args["weight"] = mutate_tensor(d, w)
            ctor["kernel_size"] = weird_int_arg(d, spatial)
        elif slot == "bias":
            args["bias"] = mutate_tensor(d, b) if b is not None and d.chance(50) else \
                tensor(d, (cout + d.pick((1, -1 if cout > 1 else 2)),), dtype)
            ctor["bias"] = d.pick((True, False, 0, 1, None, "yes"))
        elif slot == "stride":
            args["stride"] = ctor["stride"] = weird_int_arg(d, spatial)
        elif slot == "padding":
            args["padding"] = ctor["padding"] = d.pick(("same", "valid", "causal", "full", "SAME", "")) \
                if d.chance(40) else weird_int_arg(d, spatial)
        elif slot == "dilation":
            args["dilation"] = ctor["dilation"] = weird_int_arg(d, spatial)
        elif slot == "groups":
            g = d.pick(WEIRD_INTS + (2.0, True, None, "2", Expr("numpy.int64(2)"), cin + 1, 2 * groups))
            args["groups"] = ctor["groups"] = g
        elif slot == "channels":
            args["weight"] = dataclasses.replace(w, shape=(cout, cin_pg + d.pick((1, -1 if cin_pg > 1 else 2)))
                                                 + tuple(w.shape[2:]))
            ctor["in_channels"] = cin + d.pick((1, groups))
        elif slot == "meta_all":
            args["input"], args["weight"], args["bias"] = _meta_all((args["input"], args["weight"],
                                                                     args["bias"]))
            if module and d.chance(50):
                ctor["device"] = "meta"
        elif slot == "pmode":
            ctor["padding_mode"] = d.pick(("zeros", "reflect", "replicate", "circular", "constant", "bogus"))
    seed = d.seed()
    if not module:
        kwargs = {}
        for name in ("bias", "stride", "padding", "dilation", "groups"):
            if d.chance(80) or name in ("bias",):
                kwargs[name] = args[name]
        if d.chance(30):  # positional spelling
            call_args = (args["input"], args["weight"], args["bias"], args["stride"], args["padding"],
                         args["dilation"], args["groups"])
            kwargs = {}
        else:
            call_args = (args["input"], args["weight"])
        causal = spatial == 1 and (call_args[4:5] == ("causal",) or kwargs.get("padding") == "causal")
        eff = dict(zip(("input", "weight", "bias", "stride", "padding", "dilation", "groups"), call_args))
        eff = _effective(eff, {"stride": 1, "padding": 0, "dilation": 1})
        eff.update(kwargs)
        w_ = eff["weight"]
        kernel = tuple(w_.shape[2:]) if isinstance(w_, T) and len(w_.shape) == spatial + 2 else None
        return Call("conv", "functional", f"conv{spatial}d", call_args, kwargs, seed=seed,
                    gradgrad=d.chance(10), causal=causal,
                    expect=_conv_expect(spatial, eff["input"], kernel, eff["stride"], eff["padding"],
                                        eff["dilation"]))
    ctor_kw = {k2: v for k2, v in ctor.items() if k2 not in ("in_channels", "out_channels", "kernel_size")}
    if ctor["padding_mode"] != "zeros":
        # torch's F.pad (non-zero padding modes) rejects numpy ints by accident
        ctor_kw["padding"] = _no_numpy(ctor_kw["padding"])
    kernel = _plain_ints(_no_numpy(ctor["kernel_size"]), spatial)
    return Call("conv", "module", f"Conv{spatial}d", (args["input"],), {},
                (ctor["in_channels"], ctor["out_channels"], ctor["kernel_size"]), ctor_kw, seed=seed,
                gradgrad=d.chance(10), causal=ctor["padding"] == "causal" and spatial == 1,
                expect=None if _truncated_same_padding(ctor_kw, spatial) else
                _conv_expect(spatial, args["input"], kernel, ctor_kw["stride"], ctor_kw["padding"],
                             ctor_kw["dilation"]))


def _truncated_same_padding(ctor_kw, spatial):
    """torch's Conv2d(padding='same', padding_mode != 'zeros') computes its pads by zipping dilation with the
    kernel size: a 1-tuple dilation pads one axis only, and the output is not the input's size."""
    dilation = ctor_kw.get("dilation")
    return (ctor_kw.get("padding") == "same" and ctor_kw.get("padding_mode", "zeros") != "zeros"
            and isinstance(dilation, (tuple, list)) and len(dilation) != spatial)


# ---- transposed convolution --------------------------------------------------------------------------------

def gen_conv_transpose(d, api):
    spatial = d.pick((1, 2))
    module = api == "module"
    groups = d.weighted(((6, 1), (2, 2), (1, 3), (1, 4)))
    cin_pg, cout_pg = d.int(1, 3), d.int(1, 3)
    cin, cout = groups * cin_pg, groups * cout_pg
    k = tuple(d.int(1, 5) if not d.chance(5) else d.int(6, 20) for _ in range(spatial))
    dil = tuple(d.weighted(((6, 1), (2, 2), (1, 3))) for _ in range(spatial))
    stride = tuple(d.weighted(((5, 1), (3, 2), (2, 3), (1, 5))) for _ in range(spatial))
    pads = tuple(d.int(0, max(0, dil[i] * (k[i] - 1) // 2)) for i in range(spatial))
    opad = tuple(d.int(0, max(stride[i], dil[i]) - 1) if d.chance(40) else 0 for i in range(spatial))
    sizes = tuple(d.int(1, 8) for _ in range(spatial))
    dtype = _dtype(d)
    x = tensor(d, _batch_shape(d, cin, sizes), dtype, conv=True)
    w = tensor(d, (cin, cout_pg) + k, dtype if d.chance(95) else _dtype(d), rg_pct=70, conv=True)
    has_bias = d.chance(60)
    b = tensor(d, (cout,), dtype, rg_pct=70, conv=True) if has_bias else None
    args = {"input": x, "weight": w, "bias": b, "stride": int_form(d, stride), "padding": int_form(d, pads),
            "output_padding": int_form(d, opad), "groups": groups, "dilation": int_form(d, dil)}
    ctor = {"stride": args["stride"], "padding": args["padding"], "output_padding": args["output_padding"],
            "groups": groups, "bias": has_bias, "dilation": args["dilation"], "padding_mode": "zeros",
            "dtype": Expr(f"torch.{dtype}") if dtype in _MODULE_DTYPES else Expr("torch.float32")}
    kernel_ctor = int_form(d, k)
    cin_ctor, cout_ctor = cin, cout
    output_size = None
    if module and d.chance(40):
        default = [(sizes[i] - 1) * stride[i] - 2 * pads[i] + dil[i] * (k[i] - 1) + 1 for i in range(spatial)]
        output_size = [o + d.int(0, max(stride[i], dil[i]) - 1) for i, o in enumerate(default)]
        if d.chance(30):
            output_size = list(x.shape[:-spatial]) + output_size
        ctor["output_padding"] = 0
    for _ in range(n_mutations(d, dtype)):
        slot = d.weighted(((6, "input"), (3, "weight"), (1, "bias"), (3, "stride"), (3, "padding"),
                           (3, "output_padding"), (2, "dilation"), (2, "groups"), (1, "meta_all"),
                           (2, "output_size"), (1, "pmode")))
        if slot == "input":
            args["input"] = mutate_tensor(d, x)
        elif slot == "weight":
            args["weight"] = mutate_tensor(d, w)
            kernel_ctor = weird_int_arg(d, spatial)
        elif slot == "bias":
            args["bias"] = tensor(d, (cout + 1,), dtype)
            cout_ctor = d.pick((0, -1, cout + 1))
        elif slot == "stride":
            args["stride"] = ctor["stride"] = weird_int_arg(d, spatial)
        elif slot == "padding":
            args["padding"] = ctor["padding"] = d.pick((weird_int_arg(d, spatial), 50, (0, 50)[:spatial],
                                                        "same", "valid"))
        elif slot == "output_padding":
            args["output_padding"] = ctor["output_padding"] = d.pick(
                (weird_int_arg(d, spatial), max(max(stride), max(dil)), tuple(s for s in stride)))
        elif slot == "dilation":
            args["dilation"] = ctor["dilation"] = weird_int_arg(d, spatial)
        elif slot == "groups":
            args["groups"] = ctor["groups"] = d.pick(WEIRD_INTS + (2.0, True, None, cin + 1))
        elif slot == "meta_all":
            args["input"], args["weight"], args["bias"] = _meta_all((args["input"], args["weight"],
                                                                     args["bias"]))
        elif slot == "output_size":
            output_size = d.pick(([0] * spatial, [-1] * spatial, [2**40] * spatial, [3] * (spatial + 1), 5,
                                  "5", [100] * spatial))
        elif slot == "pmode":
            ctor["padding_mode"] = d.pick(("reflect", "circular", "bogus"))
    for name in ("stride", "dilation"):
        # torch's transposed convolution takes ~stride^2 time (14 s at stride 65537): none from 2**12 to 2**24
        if _has_big_int(args[name], 2**12) and not _has_big_int(args[name], 2**24):
            args[name] = ctor[name] = 3
    seed = d.seed()
    if not module:
        names = ("bias", "stride", "padding", "output_padding", "groups", "dilation")
        w_ = args["weight"]
        kernel = tuple(w_.shape[2:]) if isinstance(w_, T) and len(w_.shape) == spatial + 2 else None
        if d.chance(30):
            return Call("conv_transpose", "functional", f"conv_transpose{spatial}d",
                        (args["input"], args["weight"]) + tuple(args[n] for n in names), {}, seed=seed,
                        gradgrad=d.chance(10),
                        expect=_conv_expect(spatial, args["input"], kernel, args["stride"], args["padding"],
                                            args["dilation"], True, args["output_padding"]))
        kwargs = {n: args[n] for n in names if d.chance(80) or n == "bias"}
        eff = _effective(kwargs, {"stride": 1, "padding": 0, "output_padding": 0, "dilation": 1})
        return Call("conv_transpose", "functional", f"conv_transpose{spatial}d", (args["input"], args["weight"]),
                    kwargs, seed=seed, gradgrad=d.chance(10),
                    expect=_conv_expect(spatial, args["input"], kernel, eff["stride"], eff["padding"],
                                        eff["dilation"], True, eff["output_padding"]))
    fwd = (args["input"],) if output_size is None else (args["input"], output_size)
    kernel = _plain_ints(_no_numpy(kernel_ctor), spatial)
    expect = None if output_size is not None else _conv_expect(
        spatial, args["input"], kernel, ctor["stride"], ctor["padding"], ctor["dilation"], True,
        ctor["output_padding"])
    return Call("conv_transpose", "module", f"ConvTranspose{spatial}d", fwd, {},
                (cin_ctor, cout_ctor, kernel_ctor), ctor, seed=seed, gradgrad=d.chance(10), expect=expect)


# ---- pooling -----------------------------------------------------------------------------------------------

def _pool_window(d, spatial, is_max, dilated=True):
    big = d.chance(6)
    k = tuple(d.int(1, 4) if not big else d.int(5, 60) for _ in range(spatial))
    dil = tuple(d.weighted(((6, 1), (2, 2), (1, 3))) if dilated else 1 for _ in range(spatial))
    stride = None if d.chance(25) else tuple(d.weighted(((3, 1), (4, 2), (2, 3), (1, 7))) for _ in range(spatial))
    pads = []
    for i in range(spatial):
        hi = k[i] // 2
        if is_max:
            hi = min(hi, ((k[i] - 1) * dil[i] + 1) // 2)
        pads.append(d.int(0, hi) if d.chance(50) else 0)
    ceil = d.chance(35)
    sizes = tuple(max(1, dil[i] * (k[i] - 1) + 1 - 2 * pads[i]) + d.int(0, 7) for i in range(spatial))
    return k, stride, tuple(pads), dil, ceil, sizes


def _window_of(spatial, args, x):
    """(spatial, k, s, p, d, in_sizes) when every window argument is a plain int spelling, else None."""
    if not isinstance(x, T) or len(x.shape) < spatial + 1:
        return None
    args = {name: _no_numpy(v) for name, v in args.items()}
    k = _plain_ints(args["kernel_size"], spatial)
    s = args["stride"]
    s = k if s is None or s == [] or s == () else _plain_ints(s, spatial)
    p = _plain_ints(args["padding"], spatial)
    dl = _plain_ints(args.get("dilation", 1), spatial)
    if None in (k, s, p, dl) or any(v <= 0 for v in k + s + dl) or any(v < 0 for v in p):
        return None
    return (spatial, k, s, p, dl, tuple(x.shape[-spatial:]))


_POOL_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False}


def _effective(passed, defaults):
    """The arguments a call gets: its defaults, overridden by those it passes."""
    eff = dict(defaults)
    eff.update(passed)
    return eff


def _pool_expect(spatial, eff, x):
    """Exact pooled sizes (torch's pooling_output_shape in Python ints) for plain int window arguments."""
    win = _window_of(spatial, eff, x)
    ceil = eff.get("ceil_mode", False)
    if win is None or type(ceil) is not bool:
        return None
    _, k, s, p, dl, sizes = win
    out = []
    for size, kk, ss, pp, dd in zip(sizes, k, s, p, dl):
        o = (size + 2 * pp - dd * (kk - 1) - 1 + (ss - 1 if ceil else 0)) // ss + 1
        if ceil and (o - 1) * ss >= size + pp:
            o -= 1
        out.append(o)
    return tuple(out)


def _conv_expect(spatial, x, kernel, stride, padding, dilation, transposed=False, output_padding=0):
    """Exact output sizes of a (transposed) convolution for plain int arguments, else None."""
    if not isinstance(x, T) or len(x.shape) < spatial + 1 or kernel is None:
        return None
    if padding == "valid":
        padding = 0
    elif padding == "same" and not transposed:
        return tuple(x.shape[-spatial:]) if _plain_ints(_no_numpy(stride), spatial) == (1,) * spatial else None
    if isinstance(padding, str):
        return None
    s, p, dl = (_plain_ints(_no_numpy(v), spatial) for v in (stride, padding, dilation))
    op = _plain_ints(_no_numpy(output_padding), spatial)
    if None in (s, p, dl, op) or min(s + dl) <= 0 or min(p) < 0:
        return None
    sizes = x.shape[-spatial:]
    if transposed:
        return tuple((L - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
                     for L, kk, ss, pp, dd, oo in zip(sizes, kernel, s, p, dl, op))
    return tuple((L + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for L, kk, ss, pp, dd in zip(sizes, kernel, s, p, dl))


def _pool_mutations(d, args, x, spatial, extra=()):
    for _ in range(n_mutations(d, x.dtype)):
        slot = d.weighted(((6, "input"), (4, "kernel_size"), (3, "stride"), (3, "padding"), (2, "dilation"),
                           (1, "meta"), (2, "hugewin")) + tuple(extra))
        if slot == "input":
            args["input"] = mutate_tensor(d, x)
        elif slot in ("kernel_size", "stride", "padding", "dilation"):
            if slot in args:
                args[slot] = weird_int_arg(d, spatial)
        elif slot == "meta":
            args["input"] = _meta_all(args["input"])
        elif slot == "hugewin":  # huge windows, valid ones among them: where pooling loops used to hang
            big = d.pick((2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, 100000, 2**16 + 1, 2**20, 2**22 + 1))
            args["kernel_size"] = big if d.chance(50) else tuple([big] + [1] * (spatial - 1))
            # a padding near kernel/2 makes the output valid; torch's max pooling steps through the padding
            # one dilation at a time (O(padding) per output), so only up to 2**22
            if "padding" in args and d.chance(60):
                args["padding"] = d.pick((big // 2, big // 2 - 1, big // 3)) if big <= 2**22 + 1 else \
                    d.pick((0, 1, 2**20))
            if "stride" in args and d.chance(40):
                args["stride"] = d.pick((big, 1, 2**62))
            if "dilation" in args and d.chance(20):
                args["dilation"] = d.pick((2**31, 2**62, 1))
        else:
            yield slot


def gen_max_pool(d, api):
    spatial = d.pick((1, 2))
    k, stride, pads, dil, ceil, sizes = _pool_window(d, spatial, True)
    c = d.int(1, 6)
    dtype = _dtype(d)
    x = tensor(d, _batch_shape(d, c, sizes), dtype,
               values=d.weighted(((60, "normal"), (12, "ties"), (6, "nan"), (6, "inf"), (6, "denormal"),
                                  (6, "signed_zeros"), (4, "zeros"))))
    ret = d.chance(60)
    args = {"input": x, "kernel_size": int_form(d, k), "stride": None if stride is None else int_form(d, stride),
            "padding": int_form(d, pads), "dilation": int_form(d, dil), "ceil_mode": ceil, "return_indices": ret}
    for slot in _pool_mutations(d, args, x, spatial, ((1, "flags"),)):
        if slot == "flags":
            args[d.pick(("ceil_mode", "return_indices"))] = d.pick((1, 0, "yes", None, Expr("numpy.bool_(True)")))
    seed = d.seed()
    if api == "functional":
        kwargs = {n: args[n] for n in ("stride", "padding", "dilation", "ceil_mode", "return_indices")
                  if d.chance(75) or n == "return_indices"}
        eff = _effective(dict(kwargs, kernel_size=args["kernel_size"]), _POOL_DEFAULTS)
        return Call("max_pool", "functional", f"max_pool{spatial}d", (args["input"], args["kernel_size"]), kwargs,
                    seed=seed, gradgrad=d.chance(10), exact=True, window=_window_of(spatial, eff, args["input"]),
                    expect=_pool_expect(spatial, eff, args["input"]))
    ctor = {n: args[n] for n in ("stride", "padding", "dilation", "return_indices", "ceil_mode")}
    return Call("max_pool", "module", f"MaxPool{spatial}d", (args["input"],), {}, (args["kernel_size"],), ctor,
                seed=seed, gradgrad=d.chance(10), exact=True, window=_window_of(spatial, args, args["input"]),
                expect=_pool_expect(spatial, args, args["input"]))


def gen_avg_pool(d, api):
    spatial = d.pick((1, 2))
    k, stride, pads, _, ceil, sizes = _pool_window(d, spatial, False, dilated=False)
    c = d.int(1, 6)
    dtype = _dtype(d)
    x = tensor(d, _batch_shape(d, c, sizes), dtype)
    args = {"input": x, "kernel_size": int_form(d, k), "stride": None if stride is None else int_form(d, stride),
            "padding": int_form(d, pads), "ceil_mode": ceil, "count_include_pad": d.chance(60)}
    if spatial == 2:
        args["divisor_override"] = None if d.chance(70) else d.pick((1, 2, 3, 7, -2, -1))
    for slot in _pool_mutations(d, args, x, spatial, ((2, "divisor"), (1, "flags"))):
        if slot == "divisor" and spatial == 2:
            args["divisor_override"] = d.pick((0, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1, -2**63, 2**64,
                                               2.0, True, "2", Expr("numpy.int64(3)"), Expr("torch.tensor(3)")))
        elif slot == "flags":
            args[d.pick(("ceil_mode", "count_include_pad"))] = d.pick((1, 0, "yes", None))
    seed = d.seed()
    names = ("stride", "padding", "ceil_mode", "count_include_pad") + (("divisor_override",) if spatial == 2
                                                                       else ())
    if api == "functional":
        kwargs = {n: args[n] for n in names if d.chance(75)}
        eff = _effective(dict(kwargs, kernel_size=args["kernel_size"]), _POOL_DEFAULTS)
        return Call("avg_pool", "functional", f"avg_pool{spatial}d", (args["input"], args["kernel_size"]), kwargs,
                    seed=seed, gradgrad=d.chance(10), expect=_pool_expect(spatial, eff, args["input"]))
    return Call("avg_pool", "module", f"AvgPool{spatial}d", (args["input"],), {}, (args["kernel_size"],),
                {n: args[n] for n in names}, seed=seed, gradgrad=d.chance(10),
                expect=_pool_expect(spatial, _effective(args, _POOL_DEFAULTS), args["input"]))


def gen_lp_pool(d, api):
    spatial = d.pick((1, 2))
    k, stride, _, _, ceil, sizes = _pool_window(d, spatial, False, dilated=False)
    sizes = tuple(max(s, kk) for s, kk in zip(sizes, k))
    c = d.int(1, 5)
    dtype = _dtype(d)
    x = tensor(d, _batch_shape(d, c, sizes), dtype,
               values=d.weighted(((60, "positive"), (25, "normal"), (5, "zeros"), (5, "ties"), (5, "nan"))))
    norm = d.pick((2, 2.0, 1, 1.0, 3.0, 1.5, 0.5, 4, float("inf"), float("-inf"), -1.0))
    args = {"input": x, "norm_type": norm, "kernel_size": int_form(d, k),
            "stride": None if stride is None else int_form(d, stride), "ceil_mode": ceil}
    for slot in _pool_mutations(d, args, x, spatial, ((2, "norm"),)):
        if slot == "norm":
            args["norm_type"] = d.pick((float("nan"), "2", None, True, Expr("torch.tensor(2.0)"), 1e308, -2**63, 0,
                                        0.0))
    if isinstance(args["norm_type"], float) and math.isinf(args["norm_type"]) and _has_big_int(
            (args["kernel_size"], args["stride"]), 2**31):
        # torch's lp_pool with norm_type=inf runs max_pool without indices: it hangs or segfaults for huge
        # kernels (see Call._torch_pool1d_via_indices)
        args["norm_type"] = 2.0
    if spatial == 1 and isinstance(args["kernel_size"], (tuple, list)) and len(args["kernel_size"]) == 1:
        # torch's lp_pool1d takes an int kernel_size only (a 1-tuple passes avg_pool1d, then fails in
        # out.mul(kernel_size) with a TypeError): outside torch's API, not compared
        args["kernel_size"] = args["kernel_size"][0]
    seed = d.seed()
    if api == "functional":
        kwargs = {n: args[n] for n in ("stride", "ceil_mode") if d.chance(75)}
        eff = _effective(dict(kwargs, kernel_size=args["kernel_size"]), _POOL_DEFAULTS)
        return Call("lp_pool", "functional", f"lp_pool{spatial}d", (args["input"], args["norm_type"],
                                                                      args["kernel_size"]), kwargs, seed=seed,
                    expect=_pool_expect(spatial, eff, args["input"]))
    eff = _effective({"kernel_size": args["kernel_size"], "stride": args["stride"], "ceil_mode": args["ceil_mode"]},
                     _POOL_DEFAULTS)
    return Call("lp_pool", "module", f"LPPool{spatial}d", (args["input"],), {},
                (args["norm_type"], args["kernel_size"]), {"stride": args["stride"], "ceil_mode": args["ceil_mode"]},
                seed=seed, expect=_pool_expect(spatial, eff, args["input"]))


def gen_max_unpool(d, api):
    spatial = d.pick((1, 2))
    k, stride, pads, dil, ceil, sizes = _pool_window(d, spatial, True)
    dil = dil if d.chance(20) else (1,) * spatial
    sizes = tuple(max(1, dil[i] * (k[i] - 1) + 1 - 2 * pads[i]) + d.int(0, 7) for i in range(spatial))
    ceil = ceil and d.chance(30)
    stride = stride or k
    c = d.int(1, 5)
    src_shape = cap_shape(_batch_shape(d, c, sizes))
    if len(src_shape) < spatial + 1 or any(s == 0 for s in src_shape[-spatial - 1:]):
        src_shape = (1, c) + sizes
    sizes = src_shape[-spatial:]
    out_sizes = [(sizes[i] + 2 * pads[i] - dil[i] * (k[i] - 1) - 1 + ((stride[i] - 1) if ceil else 0))
                 // stride[i] + 1 for i in range(spatial)]
    for i in range(spatial):
        if ceil and (out_sizes[i] - 1) * stride[i] >= sizes[i] + pads[i]:
            out_sizes[i] -= 1
    pooled_shape = tuple(src_shape[:-spatial]) + tuple(out_sizes)
    dtype = _dtype(d)
    values = d.weighted(((80, "normal"), (10, "ties"), (5, "nan"), (5, "signed_zeros")))
    seed = d.seed()
    pool = (tuple(k), tuple(stride), tuple(pads), tuple(dil), ceil)
    lay = d.weighted(((6, "contiguous"), (2, "channels_last"), (1, "noncontig"), (1, "reversed")))
    x = T(pooled_shape, dtype, lay, values, seed, d.chance(50), pool=(0, src_shape) + pool)
    ind = T(pooled_shape, "int64", d.weighted(((8, lay), (1, "contiguous"), (1, "channels_last"))), values, seed,
            pool=(1, src_shape) + pool)
    output_size = None
    if d.chance(50):
        output_size = list(sizes) if d.chance(70) else list(src_shape[:-spatial]) + list(sizes)
        if len(output_size) == spatial + 3:
            output_size = output_size[1:]
    # torch's max_unpool rejects numpy ints (torch._check(numpy.bool_)) and 1-tuples (IndexError) by accident
    args = {"input": x, "indices": ind, "kernel_size": int_form(d, k, False), "stride": int_form(d, stride, False),
            "padding": int_form(d, pads, False), "output_size": output_size}
    if d.chance(15):
        args["stride"] = None
    plane = _prod(output_size[-spatial:] if output_size else
                  [(o - 1) * s + kk - 2 * p for o, s, kk, p in zip(out_sizes, stride, k, pads)])
    for _ in range(n_mutations(d, dtype)):
        slot = d.weighted(((3, "input"), (4, "indices"), (3, "kernel_size"), (2, "stride"), (2, "padding"),
                           (4, "output_size"), (1, "meta")))
        if slot == "input":
            args["input"] = mutate_tensor(d, x) if d.chance(50) else dataclasses.replace(x, pool=None)
        elif slot == "indices":
            fix = d.pick((("add_first", plane), ("add_first", plane + 1), ("add_first", -10**6),
                          ("add_first", -1), ("add_first", 2**40), ("dtype", "int32"), ("dtype", "float32"),
                          ("shift_all", 1), ("shift_all", -1)))
            args["indices"] = dataclasses.replace(ind, index_fix=fix) if d.chance(80) else mutate_tensor(d, ind)
        elif slot in ("kernel_size", "stride", "padding"):
            args[slot] = weird_int_arg(d, spatial)
        elif slot == "output_size":
            args["output_size"] = d.pick(([0] * spatial, [-1] * spatial, [2**31] * spatial, [2**62] * spatial,
                                          [s + 1 for s in sizes], [s * 3 for s in sizes], [1] * (spatial + 1), 7,
                                          "7", [2.0] * spatial, [None] * spatial, []))
        elif slot == "meta":
            args["input"], args["indices"] = _meta_all((args["input"], args["indices"]))
    call_seed = d.seed()
    for name in ("kernel_size", "stride", "padding", "output_size"):
        args[name] = _no_numpy(args[name])
        if spatial == 2 and name != "output_size" and isinstance(args[name], (tuple, list)) and \
                len(args[name]) == 1:  # torch's max_unpool2d indexes [1] of it (IndexError) by accident
            args[name] = args[name][0]
    if api == "functional":
        kwargs = {n: args[n] for n in ("stride", "padding", "output_size") if d.chance(75)}
        return Call("max_unpool", "functional", f"max_unpool{spatial}d",
                    (args["input"], args["indices"], args["kernel_size"]), kwargs, seed=call_seed, exact=True)
    fwd = (args["input"], args["indices"]) + ((args["output_size"],) if args["output_size"] is not None else ())
    return Call("max_unpool", "module", f"MaxUnpool{spatial}d", fwd, {}, (args["kernel_size"],),
                {"stride": args["stride"], "padding": args["padding"]}, seed=call_seed, exact=True)


def _gen_adaptive(d, api, kind):
    spatial = d.pick((1, 2))
    big = d.chance(8)
    sizes = tuple(d.int(1, 10) if not big else d.int(11, 3000 if spatial == 1 else 300) for _ in range(spatial))
    c = d.int(1, 5)
    dtype = _dtype(d)
    x = tensor(d, _batch_shape(d, c, sizes), dtype,
               values=d.weighted(((70, "normal"), (10, "ties"), (5, "nan"), (5, "inf"), (5, "denormal"),
                                  (5, "signed_zeros"))) if kind == "max" else None)
    sizes = x.shape[-spatial:]
    outs = tuple(d.int(1, s + 3) if d.chance(80) else d.int(1, 2 * s + 5) for s in sizes)
    if spatial == 1:
        out = outs[0] if d.chance(70) else (outs[0],)
    else:
        out = int_form(d, outs)
        if d.chance(15):
            out = (outs[0], None) if d.chance(50) else (None, outs[1])
    args = {"input": x, "output_size": out}
    if kind == "max":
        args["return_indices"] = d.chance(60)
    for _ in range(n_mutations(d, dtype)):
        slot = d.weighted(((5, "input"), (6, "output_size"), (1, "meta"), (1, "flags")))
        if slot == "input":
            args["input"] = mutate_tensor(d, x)
        elif slot == "output_size":
            args["output_size"] = d.pick((0, -1, (0,) * spatial, 2**31, 2**31 - 1, 2**62, 2**63, 65537,
                                          (1,) * (spatial + 1), None, 2.0, "2", [], True, (None,) * spatial,
                                          10**6, (2**31,) * spatial, (0, 3)[:spatial]))
        elif slot == "meta":
            args["input"] = _meta_all(args["input"])
        elif slot == "flags" and kind == "max":
            args["return_indices"] = d.pick((1, 0, "yes", None))
    seed = d.seed()
    exact = kind == "max"
    if api == "functional":
        fargs = (args["input"], args["output_size"])
        kwargs = {"return_indices": args["return_indices"]} if kind == "max" else {}
        return Call(f"adaptive_{kind}", "functional", f"adaptive_{kind}_pool{spatial}d", fargs, kwargs,
                    seed=seed, exact=exact, gradgrad=d.chance(10))
    ctor = {"return_indices": args["return_indices"]} if kind == "max" else {}
    name = f"Adaptive{'Avg' if kind == 'avg' else 'Max'}Pool{spatial}d"
    return Call(f"adaptive_{kind}", "module", name, (args["input"],), {}, (args["output_size"],), ctor, seed=seed,
                exact=exact, gradgrad=d.chance(10))


def gen_adaptive_avg(d, api):
    return _gen_adaptive(d, api, "avg")


def gen_adaptive_max(d, api):
    return _gen_adaptive(d, api, "max")


# ---- raw ops (torch.ops.fastconv.*) ------------------------------------------------------------------------

def _raw_list(d, values, n):
    """A valid list of n ints or a defective one."""
    if not d.chance(25):
        return list(values)
    kind = d.weighted(((5, "entry"), (2, "length"), (1, "type")))
    if kind == "entry":
        v = list(values)
        v[d.int(0, n - 1)] = d.pick((0, -1, -2**63, 2**31, 2**62, 2**63 - 1))
        return v
    if kind == "length":
        return [1] * d.pick((0, 1, n + 1))
    return d.pick((2.0, None, [2.0] * n, "2"))


def gen_raw(d, api):
    op = d.pick(("conv2d", "conv_transpose2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
                 "adaptive_max_pool2d", "max_unpool2d"))
    dtype = _dtype(d)

    def x4(shape, **kw):
        t = tensor(d, shape, dtype, conv=op.startswith("conv"), **kw)
        if d.chance(15):
            t = mutate_tensor(d, t)
        return t

    n = d.weighted(((6, 1), (3, 2), (1, 0)))
    seed = d.seed()
    if op == "conv2d":
        groups = d.weighted(((6, 1), (2, 2), (2, 3)))
        cin_pg, cout_pg = d.int(1, 3), d.int(1, 3)
        k = [d.int(1, 4), d.int(1, 4)]
        dil = [d.int(1, 2), d.int(1, 2)]
        st = [d.int(1, 3), d.int(1, 3)]
        pads = [d.int(0, 2) for _ in range(4)]
        mode = d.weighted(((6, "zeros"), (2, "reflect"), (2, "replicate"), (2, "circular"), (1, "bogus")))
        hw = [max(dil[0] * (k[0] - 1) + 1, 3) + d.int(0, 4), max(dil[1] * (k[1] - 1) + 1, 3) + d.int(0, 4)]
        x = x4((n, groups * cin_pg, *hw))
        w = x4((groups * cout_pg, cin_pg, *k), rg_pct=70)
        b = x4((groups * cout_pg,), rg_pct=70) if d.chance(50) else None
        args = (x, w, b, _raw_list(d, st, 2), _raw_list(d, pads, 4), _raw_list(d, dil, 2),
                d.pick((groups,) * 8 + (0, -1, groups + 1)), mode)
        return Call("raw", "raw", op, args, seed=seed)
    if op == "conv_transpose2d":
        groups = d.weighted(((6, 1), (2, 2)))
        cin_pg, cout_pg = d.int(1, 3), d.int(1, 3)
        k = [d.int(1, 4), d.int(1, 4)]
        dil = [d.int(1, 2), d.int(1, 2)]
        st = [d.int(1, 3), d.int(1, 3)]
        pads = [d.int(0, (dil[i] * (k[i] - 1)) // 2) for i in range(2)]
        opad = [d.int(0, max(st[i], dil[i]) - 1) for i in range(2)]
        x = x4((n, groups * cin_pg, d.int(1, 6), d.int(1, 6)))
        w = x4((groups * cin_pg, cout_pg, *k), rg_pct=70)
        b = x4((groups * cout_pg,), rg_pct=70) if d.chance(50) else None
        args = (x, w, b, _raw_list(d, st, 2), _raw_list(d, pads, 2), _raw_list(d, opad, 2),
                d.pick((groups,) * 8 + (0, -1, 5)), _raw_list(d, dil, 2))
        return Call("raw", "raw", op, args, seed=seed)
    if op in ("max_pool2d_with_indices", "avg_pool2d"):
        is_max = op.startswith("max")
        k, stride, pads, dil, ceil, sizes = _pool_window(d, 2, is_max, dilated=is_max)
        stride = stride or k
        x = x4((n, d.int(1, 4)) + sizes)
        if is_max:
            args = (x, _raw_list(d, k, 2), _raw_list(d, stride, 2), _raw_list(d, pads, 2), _raw_list(d, dil, 2),
                    ceil)
            win = None
            if all(isinstance(v, list) and len(v) == 2 and all(type(i) is int and i >= 0 for i in v)
                   for v in args[1:5]) and isinstance(x, T) and len(x.shape) == 4 and min(args[1] + args[2] +
                                                                                      args[4]) > 0:
                win = (2, tuple(args[1]), tuple(args[2]), tuple(args[3]), tuple(args[4]), tuple(x.shape[-2:]))
            return Call("raw", "raw", op, args, seed=seed, exact=True, window=win)
        div = None if d.chance(70) else d.pick((1, 3, -2, 0, 2**31, 2**62))
        args = (x, _raw_list(d, k, 2), _raw_list(d, stride, 2), _raw_list(d, pads, 2), ceil, d.chance(50), div)
        return Call("raw", "raw", op, args, seed=seed)
    if op in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        sizes = (d.int(1, 9), d.int(1, 9))
        x = x4((n, d.int(1, 4)) + sizes)
        out = _raw_list(d, [d.int(1, sizes[0] + 2), d.int(1, sizes[1] + 2)], 2)
        return Call("raw", "raw", op, (x, out), seed=seed, exact=op == "adaptive_max_pool2d")
    # max_unpool2d
    k, stride, pads, dil, ceil, sizes = _pool_window(d, 2, True, dilated=False)
    stride = stride or k
    src = (max(n, 1), d.int(1, 4)) + sizes
    outs = [(sizes[i] + 2 * pads[i] - (k[i] - 1) - 1 + ((stride[i] - 1) if ceil else 0)) // stride[i] + 1
            for i in range(2)]
    for i in range(2):
        if ceil and (outs[i] - 1) * stride[i] >= sizes[i] + pads[i]:
            outs[i] -= 1
    pshape = src[:2] + tuple(outs)
    pool = (tuple(k), tuple(stride), tuple(pads), tuple(dil), ceil)
    x = T(pshape, dtype, "contiguous", "normal", seed, d.chance(50), pool=(0, src) + pool)
    plane = sizes[0] * sizes[1]
    fix = None if d.chance(60) else d.pick((("add_first", plane), ("add_first", -1), ("add_first", 2**40),
                                            ("dtype", "int32"), ("shift_all", 1)))
    ind = T(pshape, "int64", "contiguous", "normal", seed, pool=(1, src) + pool, index_fix=fix)
    out = _raw_list(d, list(sizes), 2)
    return Call("raw", "raw", op, (x, ind, out), seed=d.seed(), exact=True)


def gen_raw_backward(d, api):
    """The backward ops, called directly with consistent arguments (from a valid forward) or with one or two
    defects (sizes that do not match, indices out of range, wrong ranks and dtypes)."""
    op = d.pick(("conv2d_backward_input", "conv2d_backward_weight", "conv_backward_bias", "max_pool2d_backward",
                 "max_pool2d_backward_window", "max_pool2d_gather", "avg_pool2d_backward",
                 "adaptive_avg_pool2d_backward", "adaptive_max_pool2d_backward", "adaptive_max_pool2d_gather"))
    dtype = d.weighted(((45, "float32"), (45, "float64"), (10, "other")))
    dtype = d.pick(OTHER_DTYPES) if dtype == "other" else dtype
    n, c = d.weighted(((6, 1), (3, 2), (1, 0))), d.int(1, 4)
    seed = d.seed()

    def t(shape, **kw):
        return T(cap_shape(tuple(shape)), dtype, kw.pop("layout", d.weighted(_LAYOUTS)),
                 kw.pop("values", "normal"), d.seed(), False, "cpu", d.int(0, 5), **kw)

    def size_list(values):
        values = list(values)
        if d.chance(20):
            kind = d.weighted(((4, "off"), (2, "neg"), (2, "huge"), (1, "length")))
            i = d.int(0, len(values) - 1)
            if kind == "off":
                values[i] += d.pick((1, -1, 2))
            elif kind == "neg":
                values[i] = d.pick((-1, -2**63))
            elif kind == "huge":
                values[i] = d.pick((2**31, 2**40, 2**62, 2**63 - 1))
            else:
                values = values[:-1] if d.chance(50) else values + [1]
        return values

    def maybe_bad(tensor):
        return mutate_tensor(d, tensor) if d.chance(10) else tensor

    if op.startswith("conv"):
        groups = d.weighted(((6, 1), (2, 2)))
        cin_pg, cout_pg = d.int(1, 3), d.int(1, 3)
        k = [d.int(1, 4), d.int(1, 4)]
        dil, st = [d.int(1, 2), d.int(1, 2)], [d.int(1, 3), d.int(1, 3)]
        pads = [d.int(0, 2) for _ in range(4)]
        mode = d.weighted(((6, "zeros"), (2, "reflect"), (2, "replicate"), (2, "circular")))
        hw = [max(dil[0] * (k[0] - 1) + 1, 3) + d.int(0, 4), max(dil[1] * (k[1] - 1) + 1, 3) + d.int(0, 4)]
        oh = (hw[0] + pads[0] + pads[1] - dil[0] * (k[0] - 1) - 1) // st[0] + 1
        ow = (hw[1] + pads[2] + pads[3] - dil[1] * (k[1] - 1) - 1) // st[1] + 1
        g = maybe_bad(t((n, groups * cout_pg, oh, ow)))
        if op == "conv_backward_bias":
            return Call("raw_backward", "raw", op, (g,), seed=seed)
        wshape = [groups * cout_pg, cin_pg] + k
        xshape = [n, groups * cin_pg] + hw
        lists = (size_list(st), size_list(pads), size_list(dil), d.pick((groups,) * 8 + (0, -1, 3)),
                 d.pick((mode,) * 10 + ("bogus",)))
        if op == "conv2d_backward_input":
            return Call("raw_backward", "raw", op, (g, maybe_bad(t(wshape)), size_list(xshape)) + lists, seed=seed)
        return Call("raw_backward", "raw", op, (g, maybe_bad(t(xshape)), size_list(wshape)) + lists, seed=seed)
    if op.startswith("adaptive"):
        hw = (d.int(1, 9), d.int(1, 9))
        out = (d.int(1, hw[0] + 2), d.int(1, hw[1] + 2))
        src = (max(n, 1), c) + hw
        if op == "adaptive_avg_pool2d_backward":
            g = maybe_bad(t((n, c) + out))
            return Call("raw_backward", "raw", op, (g, size_list((n, c) + hw), d.chance(50)), seed=seed)
        ind = T(src[:2] + out, "int64", "contiguous", "normal", seed, pool=(1, src, "adaptive", out),
                index_fix=None if d.chance(70) else d.pick((("add_first", hw[0] * hw[1]), ("add_first", -2),
                                                          ("add_first", 2**40), ("dtype", "int32"))))
        if op == "adaptive_max_pool2d_gather":
            return Call("raw_backward", "raw", op, (maybe_bad(t(src)), maybe_bad(ind)), seed=seed)
        g = maybe_bad(t(src[:2] + out))
        return Call("raw_backward", "raw", op, (g, maybe_bad(ind), size_list(src), d.chance(50)), seed=seed)
    k, stride, pads, dil, ceil, sizes = _pool_window(d, 2, op != "avg_pool2d_backward",
                                                     dilated=op != "avg_pool2d_backward")
    stride = stride or k
    src = (max(n, 1), c) + sizes
    outs = [(sizes[i] + 2 * pads[i] - dil[i] * (k[i] - 1) - 1 + ((stride[i] - 1) if ceil else 0)) // stride[i] + 1
            for i in range(2)]
    for i in range(2):
        if ceil and (outs[i] - 1) * stride[i] >= sizes[i] + pads[i]:
            outs[i] -= 1
    if op == "avg_pool2d_backward":
        g = maybe_bad(t((n, c) + tuple(outs)))
        div = None if d.chance(70) else d.pick((1, 3, -2, 0, 2**31, 2**62))
        return Call("raw_backward", "raw", op, (g, size_list(sizes), size_list(k), size_list(stride),
                                                size_list(pads), ceil, d.chance(50), div), seed=seed)
    pool = (tuple(k), tuple(stride), tuple(pads), tuple(dil), ceil)
    plane = sizes[0] * sizes[1]
    ind = T(src[:2] + tuple(outs), "int64", "contiguous", "normal", seed, pool=(1, src) + pool,
            index_fix=None if d.chance(70) else d.pick((("add_first", plane), ("add_first", -2),
                                                      ("add_first", 2**40), ("dtype", "int32"), ("shift_all", 1))))
    if op == "max_pool2d_gather":
        return Call("raw_backward", "raw", op, (maybe_bad(t(src)), maybe_bad(ind)), seed=seed)
    g = maybe_bad(t(src[:2] + tuple(outs)))
    if op == "max_pool2d_backward":
        return Call("raw_backward", "raw", op, (g, maybe_bad(ind), size_list(sizes)), seed=seed)
    return Call("raw_backward", "raw", op, (g, maybe_bad(ind), size_list(sizes), size_list(k), size_list(stride),
                                            size_list(pads), size_list(dil)), seed=seed)


GENERATORS = {
    "conv": gen_conv, "conv_transpose": gen_conv_transpose, "max_pool": gen_max_pool, "avg_pool": gen_avg_pool,
    "lp_pool": gen_lp_pool, "max_unpool": gen_max_unpool, "adaptive_avg": gen_adaptive_avg,
    "adaptive_max": gen_adaptive_max, "raw": gen_raw, "raw_backward": gen_raw_backward,
}
FAMILIES = tuple(GENERATORS)


def draw_call(data, family):
    d = Draw(data)
    api = "raw" if family.startswith("raw") else d.weighted(((65, "functional"), (35, "module")))
    return GENERATORS[family](d, api)
