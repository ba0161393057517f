"""Argument checks of the fake (meta) implementations: the C++ ops' own checks (csrc/bindings/tensor_checks.h,
conv_args.cpp, pool_ops.cpp, pool_window_args.cpp, adaptive_pool_args.cpp; csrc/common/*.h), with the same
exception types (ValueError / TypeError / RuntimeError), so a call that fails eagerly on the CPU also fails on
meta tensors and under torch.compile, instead of returning a shape.

Sizes may be SymInts (torch.compile with dynamic shapes, opcheck): every condition goes through
torch._check_value / _check_type / torch._check, which take a SymBool (a guard, or a runtime assert for an
unbacked size), and sizes are only compared and combined with ints, never turned into Python ints here.
Python's integers are exact, so the 128-bit arithmetic of the C++ checks needs no counterpart here.
"""
import torch

MAX_SIZE = 2**48  # kMaxConvSize: no tensor dimension is larger
MAX_CONV_ARG = 2**62  # kMaxConvArg: convolution stride / padding / dilation
MAX_WINDOW_ARG = 2**31  # pooling windows and transposed-convolution arguments (torch converts them to int)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

# The dtypes each backend implements (tensor_checks.h check_floating, cuda_op_utils.h check_floating_cuda). A
# meta tensor names no backend: it may take any dtype some backend implements.
_CPU_DTYPES = (torch.float32, torch.float64)
_CUDA_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_DTYPES = {"cpu": _CPU_DTYPES, "cuda": _CUDA_DTYPES}


# ---- output-size formulas (torch's), shared with fastconv.nn ----

def conv_out_size(size, pad_lo, pad_hi, k, stride, dil):
    return (size + pad_lo + pad_hi - dil * (k - 1) - 1) // stride + 1


def transposed_out_size(size, stride, pad, k, dil, out_pad):
    """torch's output size of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * pad + dil * (k - 1) + out_pad + 1


def pool_out_size(size, k, pad, stride, dil, ceil_mode):
    """torch's pooling_output_shape: the last window must start inside the input or the left padding."""
    out = (size + 2 * pad - dil * (k - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


# ---- primitives ----

def _message(op, parts):
    return lambda: f"fastconv.{op}: " + "".join(str(p) for p in parts)


def value(cond, op, *parts):
    torch._check_value(cond, _message(op, parts))


def type_(cond, op, *parts):
    torch._check_type(cond, _message(op, parts))


def _shape(v):
    return tuple(v)  # a torch.Size or a list of (Sym)Ints, shown alike


def dim(t, n, op, name):
    value(t.dim() == n, op, f"expected {name} with {n} dimensions, got {t.dim()} (shape {list(t.shape)})")


def floating(t, op, name):
    supported = _DTYPES.get(t.device.type, _CUDA_DTYPES)
    names = [str(d).replace("torch.", "") for d in supported]
    type_(t.dtype in supported, op, f"{name} must be {', '.join(names[:-1])} or {names[-1]} on {t.device.type}, "
          f"got {str(t.dtype).replace('torch.', '')}")


def activation(t, op, name):
    dim(t, 4, op, name)
    floating(t, op, name)


def same_dtype_device(a, an, b, bn, op):
    # the device first (as tensor_checks.h): a meta tensor among CPU ones is a device mismatch whatever the dtypes
    torch._check(a.device == b.device, _message(op, (f"{an} and {bn} must be on the same device, got {a.device} "
                                                     f"and {b.device}",)))
    type_(a.dtype == b.dtype, op, f"{an} and {bn} must have the same dtype, got {a.dtype} and {b.dtype}")


def list_size(v, n, op, name):
    value(len(v) == n, op, f"{name} must have {n} values, got {list(v)}")


def indices(ind, like, like_name, op, same_shape=True):
    """An int64 indices tensor on like's device (and of like's shape)."""
    dim(ind, 4, op, "indices")
    type_(ind.dtype == torch.int64, op, f"indices must be int64, got {ind.dtype}")
    torch._check(ind.device == like.device, _message(op, (f"indices and {like_name} must be on the same device, "
                                                          f"got {ind.device} and {like.device}",)))
    if same_shape:
        value(ind.shape == like.shape, op, f"indices of shape {list(ind.shape)} must have the shape of {like_name} "
              f"{list(like.shape)}")


def _below(values, limit, limit_text, op, name):
    for v in values:
        value(v < limit, op, f"{name} must be smaller than {limit_text}, got {v}")


# ---- convolution (conv_args.cpp make_conv_params, conv_validate.h validate_conv) ----

def conv_output_hw(input_size, weight_size, stride, padding, dilation, groups, padding_mode, op, out_hw=None):
    """Checks a convolution of an input of input_size (N, C, H, W) by a weight of weight_size (K, C/groups, R, S)
    and returns its output size (OH, OW); out_hw: the output size used instead (it may be smaller)."""
    list_size(input_size, 4, op, "input size")
    list_size(weight_size, 4, op, "weight size")
    list_size(stride, 2, op, "stride")
    list_size(padding, 4, op, "padding (top, bottom, left, right)")
    list_size(dilation, 2, op, "dilation")
    value(padding_mode in PADDING_MODES, op, "padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
          f"got '{padding_mode}'")
    value(groups > 0, op, f"groups must be positive, got {groups}")
    n, c, h, w = input_size
    k, c_per_group, r, s = weight_size
    value(c == c_per_group * groups, op, f"input has {c} channels but weight of shape {list(weight_size)} with "
          f"groups={groups} expects {c_per_group * groups} channels")
    for name, v in (("batch size", n), ("in_channels", c), ("input height", h), ("input width", w),
                    ("out_channels", k), ("kernel height", r), ("kernel width", s)):
        _below((v,), MAX_SIZE, "2^48", op, name)
    _below(stride, MAX_CONV_ARG, "2^62", op, "stride")
    _below(padding, MAX_CONV_ARG, "2^62", op, "padding")
    _below(dilation, MAX_CONV_ARG, "2^62", op, "dilation")
    for v in (n, c, h, w, k):
        value(v >= 0, op, f"sizes must be non-negative, got input ({n}, {c}, {h}, {w}) and out_channels {k}")
    value(min(stride) > 0, op, f"stride must be positive, got {tuple(stride)}")
    value(min(dilation) > 0, op, f"dilation must be positive, got {tuple(dilation)}")
    value(min(padding) >= 0, op, f"padding must be non-negative, got {tuple(padding)}")
    value(c % groups == 0, op, f"groups={groups} does not divide in_channels={c}")
    value(k % groups == 0, op, f"groups={groups} does not divide out_channels={k}")
    value(r > 0, op, f"kernel_size must be positive, got ({r}, {s})")
    value(s > 0, op, f"kernel_size must be positive, got ({r}, {s})")
    pt, pb, pl, pr = padding
    if padding_mode == "reflect" and sum(padding) > 0:
        for p, size in ((pt, h), (pb, h), (pl, w), (pr, w)):
            value(p < size, op, f"padding_mode='reflect' needs padding smaller than the input size, got padding "
                  f"{tuple(padding)} for input ({h}, {w})")
    if padding_mode == "circular":
        for p, size in ((pt, h), (pb, h), (pl, w), (pr, w)):
            value(p <= size, op, f"padding_mode='circular' needs padding no larger than the input size, got "
                  f"padding {tuple(padding)} for input ({h}, {w})")
    if padding_mode == "replicate" and sum(padding) > 0:
        value(h != 0, op, "padding_mode='replicate' needs a non-empty input")
        value(w != 0, op, "padding_mode='replicate' needs a non-empty input")
    eh, ew = dilation[0] * (r - 1) + 1, dilation[1] * (s - 1) + 1
    ph, pw = h + pt + pb, w + pl + pr
    value(ph >= eh, op, f"kernel size (dilated) ({eh}, {ew}) is larger than the padded input ({ph}, {pw})")
    value(pw >= ew, op, f"kernel size (dilated) ({eh}, {ew}) is larger than the padded input ({ph}, {pw})")
    if n != 0 and c != 0:  # torch: only the batch or the channels may be empty
        value(h != 0, op, "input has an empty spatial dimension; only zero batch or zero channel inputs are "
              f"supported, got (N, C, H, W) = ({n}, {c}, {h}, {w})")
        value(w != 0, op, "input has an empty spatial dimension; only zero batch or zero channel inputs are "
              f"supported, got (N, C, H, W) = ({n}, {c}, {h}, {w})")
    _below((ph, pw), MAX_CONV_ARG, "2^62", op, "the padded input")
    oh = conv_out_size(h, pt, pb, r, stride[0], dilation[0])
    ow = conv_out_size(w, pl, pr, s, stride[1], dilation[1])
    if out_hw is not None:
        for got, most in zip(out_hw, (oh, ow)):
            value(0 <= got, op, f"grad_output spatial size {tuple(out_hw)} does not fit the input size ({h}, {w})")
            value(got <= most, op, f"grad_output spatial size {tuple(out_hw)} does not fit the input size ({h}, {w}), "
                  f"whose output size is ({oh}, {ow})")
        return tuple(out_hw)
    return oh, ow


def conv_bias(input, bias, out_channels, op):
    if bias is None:
        return
    floating(bias, op, "bias")
    same_dtype_device(input, "input", bias, "bias", op)
    value(bias.dim() == 1, op, f"bias must have shape ({out_channels},) to match out_channels, got {list(bias.shape)}")
    value(bias.shape[0] == out_channels, op, f"bias must have shape ({out_channels},) to match out_channels, got "
          f"{list(bias.shape)}")


def grad_output_shape(grad_output, expected, op, what):
    """A backward op's grad_output must have the forward's output shape `expected` (conv_args.cpp)."""
    value(grad_output.shape == tuple(expected), op, f"grad_output of shape {list(grad_output.shape)} does not "
          f"match the {what}'s output shape {list(expected)}")


# ---- pooling (pool_params.h validate_pool_window / validate_pool) ----

def pool_window(kernel_size, stride, padding, dilation, op):
    """pool_window_args.cpp pool_window_params: the window's arguments alone."""
    for v, name in ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")):
        list_size(v, 2, op, name)
    value(min(kernel_size) > 0, op, f"kernel_size must be positive, got {tuple(kernel_size)}")
    value(min(stride) > 0, op, f"stride must be positive, got {tuple(stride)}")
    value(min(dilation) > 0, op, f"dilation must be positive, got {tuple(dilation)}")
    value(min(padding) >= 0, op, f"padding must be non-negative, got {tuple(padding)}")
    for v, name in ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")):
        value(max(v) < MAX_WINDOW_ARG, op, f"{name} must be smaller than 2^31, got {tuple(v)}")


def pool_output_hw(c, h, w, kernel_size, stride, padding, dilation, ceil_mode, op, is_max):
    """pool_ops.cpp make_pool_params: checks a pooling of an input (., c, h, w); returns its (OH, OW)."""
    pool_window(kernel_size, stride, padding, dilation, op)
    (kh, kw), (ph, pw), (dh, dw) = kernel_size, padding, dilation
    if is_max:
        value(ph <= ((kh - 1) * dh + 1) // 2 and pw <= ((kw - 1) * dw + 1) // 2, op, "padding: pad should be at "
              f"most half of effective kernel size, got padding={tuple(padding)}, kernel_size={tuple(kernel_size)} "
              f"and dilation={tuple(dilation)}")
    value(ph <= kh // 2 and pw <= kw // 2, op, "padding: pad should be smaller than or equal to half of kernel "
          f"size, got padding={tuple(padding)} and kernel_size={tuple(kernel_size)}")
    for v in (c, h, w):
        value(v > 0, op, f"input must have non-zero channels and spatial size, got (C, H, W) = ({c}, {h}, {w})")
    oh = pool_out_size(h, kh, ph, stride[0], dh, ceil_mode)
    ow = pool_out_size(w, kw, pw, stride[1], dw, ceil_mode)
    for v in (oh, ow):
        value(v >= 1, op, f"Given input size ({h}, {w}), the calculated output size ({oh}, {ow}) is too small")
    return oh, ow


def non_negative_size(size, op, name):
    list_size(size, 2, op, name)
    for v in size:
        value(v >= 0, op, f"{name} must be non-negative, got {list(size)}")


# ---- adaptive pooling (adaptive_pool_params.h validate_adaptive_pool) ----

def adaptive(input_size, out_hw, op):
    n, c, h, w = input_size
    for v in out_hw:
        value(v >= 0, op, f"output_size must be non-negative, got {tuple(out_hw)}")
    for v, ok in ((n, n >= 0), (c, c >= 0), (h, h > 0), (w, w > 0)):
        value(ok, op, f"input must have non-zero size in its spatial dimensions, got ({n}, {c}, {h}, {w})")


def adaptive_batch_channels(grad_output, input_size, op):
    """A backward op's grad_output has the input's batch and channels (adaptive_pool_args.cpp)."""
    for got, want in zip(grad_output.shape[:2], input_size[:2]):
        value(got == want, op, f"grad_output of shape {list(grad_output.shape)} does not match input_size "
              f"{list(input_size)}")
