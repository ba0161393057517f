"""A zoo case bound to (device, dtype, layout): fresh random data sets, and one call of an implementation
(torch.nn.functional or fastconv.nn.functional, same names and signatures) forward or forward+backward.
Also the work each call does: flops (convolutions) and compulsory bytes moved (pooling)."""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as TF

from .zoo import CONV_OPS, CONV_TRANSPOSE_OPS, POOL_OPS, UNPOOL_OPS

INDEX_BYTES = 8  # pooling indices are int64


@dataclass
class DataSet:
    """One set of inputs for a call: `args` go to the op positionally (after them come the case's params),
    `diff` are the leaves gradients are taken for, `grad_out` the fixed random upstream gradient."""
    args: tuple
    diff: tuple
    grad_out: torch.Tensor = None


def _ntuple(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


class Workload:
    def __init__(self, case, device, dtype, layout):
        self.case, self.device, self.dtype = case, torch.device(device), dtype
        self.op, self.n = case.op, case.spatial_dims
        # channels_last applies to 4-d activations only; 1-d cases run in their one layout ("ncl").
        self.layout = layout if self.n == 2 else "ncl"
        self.params = dict(case.params)
        self.x_shape = case.input_shape("cuda" if self.device.type == "cuda" else "cpu")
        self._out = None  # (shape, channels_last) of the primary output, learnt from torch once

    # ---------- data ----------
    def _fmt(self, t):
        if self.layout == "nhwc" and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t.contiguous()

    def _randn(self, shape, gen, scale=1.0):
        t = torch.randn(shape, generator=gen, device=self.device, dtype=torch.float32) * scale
        return t.to(self.dtype)

    def weight_shape(self):
        layer = self.case.layer
        c_in = self.x_shape[1]
        groups = self.params.get("groups", 1)
        k = _ntuple(layer["kernel_size"], self.n)
        if self.op in CONV_TRANSPOSE_OPS:
            return (c_in, layer["out_channels"] // groups) + k
        return (layer["out_channels"], c_in // groups) + k

    def make_data(self, gen):
        """A fresh random DataSet (inputs ~ N(0,1), weights scaled by 1/sqrt(fan-in))."""
        x = self._fmt(self._randn(self.x_shape, gen)).requires_grad_()
        if self.op in CONV_OPS + CONV_TRANSPOSE_OPS:
            ws = self.weight_shape()
            w = self._fmt(self._randn(ws, gen, 1.0 / math.sqrt(math.prod(ws[1:])))).requires_grad_()
            b = None
            if self.case.layer.get("bias", True):
                out_channels = self.case.layer["out_channels"]
                b = self._randn((out_channels,), gen, 0.1).requires_grad_()
            args, diff = (x, w, b), tuple(t for t in (x, w, b) if t is not None)
        elif self.op in UNPOOL_OPS:
            args, diff = (x, self._unpool_indices(gen)), (x,)
        else:
            args, diff = (x,), (x,)
        data = DataSet(args=args, diff=diff)
        if self._out is None:
            with torch.no_grad():
                y = self.primary(self.call(TF, data))
            self._out = (tuple(y.shape), y.dim() == 4 and not y.is_contiguous()
                         and y.is_contiguous(memory_format=torch.channels_last))
        shape, channels_last = self._out
        go = self._randn(shape, gen)
        data.grad_out = go.contiguous(memory_format=torch.channels_last) if channels_last else go
        return data

    def _unpool_indices(self, gen):
        """Indices of a max pool of a random tensor whose pooled size is the unpool input (setup only,
        not timed: torch's pool is the data generator here)."""
        k = _ntuple(self.params["kernel_size"], self.n)
        s = _ntuple(self.params.get("stride") or self.params["kernel_size"], self.n)
        p = _ntuple(self.params.get("padding", 0), self.n)
        size = [(L - 1) * st - 2 * pa + kk for L, st, pa, kk in zip(self.x_shape[2:], s, p, k)]
        src = self._fmt(self._randn(tuple(self.x_shape[:2]) + tuple(size), gen))
        pool = TF.max_pool1d if self.n == 1 else TF.max_pool2d
        with torch.no_grad():
            _, idx = pool(src, k, s, p, return_indices=True)
        return idx

    # ---------- calls ----------
    def call(self, impl, data):
        """One forward of implementation module `impl` (torch.nn.functional or fastconv.nn.functional);
        returns a tuple of outputs (the first is the differentiable one)."""
        fn = getattr(impl, self.op)
        params = self.params
        if impl is TF and params.get("padding") == "causal":
            # torch has no padding='causal': what a torch WaveNet does is left-pad then convolve.
            x, w, b = data.args
            d = _ntuple(params.get("dilation", 1), 1)[0]
            x = TF.pad(x, ((w.shape[-1] - 1) * d, 0))
            out = fn(x, w, b, **{k: v for k, v in params.items() if k != "padding"})
        else:
            out = fn(*data.args, **params)
        return out if isinstance(out, tuple) else (out,)

    @staticmethod
    def primary(outputs):
        return outputs[0]

    def forward(self, impl, data):
        with torch.no_grad():
            return self.call(impl, data)

    def forward_backward(self, impl, data):
        out = self.primary(self.call(impl, data))
        return torch.autograd.grad(out, data.diff, data.grad_out)

    # ---------- work ----------
    @property
    def kind(self):
        """'compute' (report GFLOP/s) or 'memory' (report GB/s)."""
        return "compute" if self.op in CONV_OPS + CONV_TRANSPOSE_OPS else "memory"

    def _numel(self, shape):
        return math.prod(shape)

    def flops(self):
        """Forward flops of a convolution (2 per multiply-add); fwd+bwd counts 3x. None for pooling."""
        if self.kind != "compute":
            return None
        ws = self.weight_shape()
        n = self.x_shape[0]
        k = math.prod(ws[2:])
        if self.op in CONV_TRANSPOSE_OPS:  # every input pixel scatters C_out/g * k products
            return 2 * n * self.x_shape[1] * ws[1] * k * math.prod(self.x_shape[2:])
        c_out, c_in_per_group = ws[0], ws[1]
        return 2 * n * c_out * c_in_per_group * k * math.prod(self._out[0][2:])

    def bytes_moved(self):
        """(forward, forward+backward) compulsory bytes: every tensor read or written once.
        Pools: fwd reads x, writes y (+ int64 indices if returned); bwd reads grad_y, writes grad_x, and max pools
        also read their saved indices, lp pools the saved input and output. Unpool: fwd reads x and indices,
        writes y; bwd reads indices, gathers grad_y (x-sized) and writes grad_x."""
        e = torch.empty((), dtype=self.dtype).element_size()
        x = self._numel(self.x_shape)
        y = self._numel(self._out[0])
        if self.op in UNPOOL_OPS:
            fwd = x * e + x * INDEX_BYTES + y * e
            return fwd, fwd + x * INDEX_BYTES + 2 * x * e
        if self.op in POOL_OPS:
            returns_idx = bool(self.params.get("return_indices"))
            fwd = (x + y) * e + (y * INDEX_BYTES if returns_idx else 0)
            bwd = (x + y) * e
            if "max" in self.op:
                bwd += y * INDEX_BYTES
            elif self.op.startswith("lp"):
                bwd += (x + y) * e
            return fwd, fwd + bwd
        w = self._numel(self.weight_shape())
        fwd = (x + w + y) * e
        # bwd reads grad_y twice (for grad_x and grad_w), reads x and w, writes grad_x and grad_w
        return fwd, fwd + 2 * (y + x + w) * e
