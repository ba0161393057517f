"""Bad arguments raise a Python exception whose message names the argument (and its value), never crash.

Covers the functional API (fastconv.nn.functional), the modules, and the raw ops torch.ops.fastconv.*
called directly with inconsistent sizes.
"""
import re

import pytest
import torch
import torch.nn.functional as TF

import fastconv

FC = fastconv.nn.functional
OPS = torch.ops.fastconv


def x4(*shape):
    return torch.randn(*(shape or (2, 4, 6, 6)))


W = lambda: torch.randn(6, 2, 3, 3)  # noqa: E731  (groups=2 weight for 4 input channels)


# ---------------------------------------------------------------- functional API

FUNCTIONAL_ERRORS = [
    # (id, callable, exception, message regex)
    ("input-rank-2", lambda: FC.conv2d(torch.randn(6, 6), W(), groups=2), ValueError,
     r"input with 3 or 4 dimensions.*got 2"),
    ("input-rank-5", lambda: FC.conv2d(torch.randn(1, 2, 4, 6, 6), W(), groups=2), ValueError,
     r"input with 3 or 4 dimensions.*got 5"),
    ("conv1d-input-rank-4", lambda: FC.conv1d(x4(), torch.randn(3, 4, 3)), ValueError,
     r"conv1d: expected input with 2 or 3 dimensions.*got 4"),
    ("weight-rank", lambda: FC.conv2d(x4(), torch.randn(6, 4, 3)), ValueError,
     r"weight with 4 dimensions.*got 3"),
    ("conv1d-weight-rank", lambda: FC.conv1d(torch.randn(2, 4, 6), torch.randn(3, 4, 3, 3)), ValueError,
     r"conv1d: expected weight with 3 dimensions.*got 4"),
    ("channels", lambda: FC.conv2d(x4(), torch.randn(6, 3, 3, 3)), ValueError,
     r"input has 4 channels but weight of shape \(6, 3, 3, 3\).*expects 3"),
    ("groups-in", lambda: FC.conv2d(x4(2, 5, 6, 6), W(), groups=2), ValueError,
     r"groups=2 does not divide in_channels=5"),
    ("groups-out", lambda: FC.conv2d(x4(), torch.randn(5, 2, 3, 3), groups=2), ValueError,
     r"groups=2 does not divide out_channels=5"),
    ("groups-0", lambda: FC.conv2d(x4(), W(), groups=0), ValueError, r"groups must be a positive int, got 0"),
    ("groups-neg", lambda: FC.conv2d(x4(), W(), groups=-2), ValueError, r"groups must be a positive int, got -2"),
    ("stride-0", lambda: FC.conv2d(x4(), W(), stride=0, groups=2), ValueError,
     r"stride must be positive, got \(0, 0\)"),
    ("stride-neg", lambda: FC.conv2d(x4(), W(), stride=(1, -1), groups=2), ValueError,
     r"stride must be positive, got \(1, -1\)"),
    ("conv1d-stride-0", lambda: FC.conv1d(torch.randn(2, 4, 6), torch.randn(3, 4, 3), stride=0), ValueError,
     r"conv1d: stride must be positive, got \(0,\)"),
    ("dilation-0", lambda: FC.conv2d(x4(), W(), dilation=0, groups=2), ValueError,
     r"dilation must be positive, got \(0, 0\)"),
    ("dilation-neg", lambda: FC.conv1d(torch.randn(2, 4, 6), torch.randn(3, 4, 3), dilation=-2), ValueError,
     r"dilation must be positive, got \(-2,\)"),
    ("padding-neg", lambda: FC.conv2d(x4(), W(), padding=-1, groups=2), ValueError,
     r"padding must be non-negative, got \(-1, -1\)"),
    ("padding-neg-tuple", lambda: FC.conv2d(x4(), W(), padding=(1, -2), groups=2), ValueError,
     r"padding must be non-negative, got \(1, -2\)"),
    ("stride-wrong-length", lambda: FC.conv2d(x4(), W(), stride=(1, 2, 3), groups=2), ValueError,
     r"stride must be an int or a tuple of 2 ints, got \(1, 2, 3\)"),
    ("stride-bool", lambda: FC.conv2d(x4(), W(), stride=True, groups=2), TypeError, r"stride .* got True"),
    ("stride-str", lambda: FC.conv2d(x4(), W(), stride="2", groups=2), (TypeError, ValueError), r"stride"),
    ("same-strided", lambda: FC.conv2d(x4(), W(), stride=2, padding="same", groups=2), ValueError,
     r"padding='same'.*stride=\(2, 2\)"),
    ("same-strided-1d", lambda: FC.conv1d(torch.randn(2, 4, 6), torch.randn(3, 4, 3), stride=2, padding="same"),
     ValueError, r"padding='same'.*stride=\(2,\)"),
    ("padding-unknown", lambda: FC.conv2d(x4(), W(), padding="full", groups=2), ValueError,
     r"padding must be .*got 'full'"),
    ("causal-2d", lambda: FC.conv2d(x4(), W(), padding="causal", groups=2), ValueError,
     r"conv2d: padding must be .*'valid' or 'same'; got 'causal'"),
    ("kernel-too-big", lambda: FC.conv2d(x4(1, 4, 2, 5), W(), groups=2), ValueError,
     r"kernel size \(dilated\) \(3, 3\) is larger than the padded input \(2, 5\)"),
    ("kernel-too-big-dilated", lambda: FC.conv2d(x4(1, 4, 6, 6), W(), dilation=4, padding=1, groups=2),
     ValueError, r"kernel size \(dilated\) \(9, 9\) is larger than the padded input \(8, 8\)"),
    ("kernel-too-big-1d", lambda: FC.conv1d(torch.randn(2, 4, 2), torch.randn(3, 4, 5)), ValueError,
     r"kernel size \(dilated\) \(5,\) is larger than the padded input \(2,\)"),
    ("dtype-input-weight", lambda: FC.conv2d(x4(), W().double(), groups=2), TypeError,
     r"input and weight must have the same dtype, got torch.float32 and torch.float64"),
    ("dtype-input-bias", lambda: FC.conv2d(x4(), W(), torch.randn(6, dtype=torch.float64), groups=2), TypeError,
     r"input and bias must have the same dtype, got torch.float32 and torch.float64"),
    ("dtype-int", lambda: FC.conv2d(x4().int(), W().int(), groups=2), TypeError,
     r"input must have a floating dtype.*got torch.int32"),
    ("dtype-long-1d", lambda: FC.conv1d(torch.ones(2, 4, 6, dtype=torch.long), torch.ones(3, 4, 3, dtype=torch.long)),
     TypeError, r"conv1d: input must have a floating dtype.*got torch.int64"),
    ("dtype-half-cpu", lambda: FC.conv2d(x4().half(), W().half(), groups=2), TypeError,
     r"input must have a floating dtype.*got torch.float16"),
    ("bias-size", lambda: FC.conv2d(x4(), W(), torch.randn(5), groups=2), ValueError,
     r"bias must have shape \(6,\) to match out_channels, got \(5,\)"),
    ("bias-rank", lambda: FC.conv2d(x4(), W(), torch.randn(6, 1), groups=2), ValueError,
     r"bias must have shape \(6,\).*got \(6, 1\)"),
    ("bias-not-tensor", lambda: FC.conv2d(x4(), W(), [0.0] * 6, groups=2), TypeError,
     r"bias must be a Tensor, got list"),
    ("input-not-tensor", lambda: FC.conv2d([[1.0]], W()), TypeError, r"input must be a Tensor, got list"),
]


@pytest.mark.parametrize("fn,exc,pattern", [c[1:] for c in FUNCTIONAL_ERRORS], ids=[c[0] for c in FUNCTIONAL_ERRORS])
def test_functional_errors(fn, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        fn()
    assert "fastconv." in str(info.value), f"message does not say where it comes from: {info.value}"


# ---------------------------------------------------------------- modules (padding modes)

@pytest.mark.parametrize("spatial", [1, 2])
def test_reflect_padding_not_smaller_than_input(spatial):
    cls = fastconv.nn.Conv1d if spatial == 1 else fastconv.nn.Conv2d
    m = cls(4, 6, 3, padding=6, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"padding_mode='reflect' needs padding smaller than the input size"
                                         r".*input size \(" + "6, " * (spatial - 1) + "6,?\\)"):
        m(torch.randn((2, 4) + (6,) * spatial))
    m(torch.randn((2, 4) + (7,) * spatial))  # padding 6 < 7 is fine


def test_circular_padding_larger_than_input():
    m = fastconv.nn.Conv2d(4, 6, 3, padding=7, padding_mode="circular")
    with pytest.raises(ValueError, match=r"padding_mode='circular' needs padding no larger than the input"):
        m(torch.randn(2, 4, 6, 6))


def test_replicate_padding_of_empty_input():
    m = fastconv.nn.Conv2d(4, 6, 3, padding=2, padding_mode="replicate")
    with pytest.raises(ValueError, match=r"padding_mode='replicate' needs a non-empty input"):
        m(torch.randn(2, 4, 0, 6))


@pytest.mark.parametrize("cls", [fastconv.nn.Conv1d, fastconv.nn.Conv2d])
def test_unknown_padding_mode(cls):
    with pytest.raises(ValueError, match=r"padding_mode.*'mirror'"):
        cls(4, 6, 3, padding_mode="mirror")


def test_module_wrong_channels():
    m = fastconv.nn.Conv2d(3, 6, 3)
    with pytest.raises(ValueError, match=r"input has 4 channels but weight of shape \(6, 3, 3, 3\)"):
        m(torch.randn(1, 4, 5, 5))


def test_module_causal_with_unsupported_mode_arguments():
    with pytest.raises(ValueError, match=r"padding.*'causal'"):
        fastconv.nn.Conv2d(4, 6, 3, padding="causal")


# ---------------------------------------------------------------- raw ops with inconsistent arguments



def _args(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=2, mode="zeros"):
    return list(stride), list(padding), list(dilation), groups, mode


RAW_ERRORS = [
    ("conv2d-negative-padding", lambda: OPS.conv2d(x4(), W(), None, *_args(padding=(1, -1, 1, 1))), ValueError,
     r"fastconv.conv2d: padding must be non-negative, got \(1, -1, 1, 1\)"),
    ("conv2d-groups-0", lambda: OPS.conv2d(x4(), W(), None, *_args(groups=0)), ValueError,
     r"fastconv.conv2d: groups must be positive, got 0"),
    ("conv2d-groups-neg", lambda: OPS.conv2d(x4(), W(), None, *_args(groups=-2)), ValueError,
     r"groups must be positive, got -2"),
    ("conv2d-stride-0", lambda: OPS.conv2d(x4(), W(), None, *_args(stride=(0, 1))), ValueError,
     r"stride must be positive, got \(0, 1\)"),
    ("conv2d-dilation-0", lambda: OPS.conv2d(x4(), W(), None, *_args(dilation=(1, 0))), ValueError,
     r"dilation must be positive, got \(1, 0\)"),
    ("conv2d-padding-3-values", lambda: OPS.conv2d(x4(), W(), None, [1, 1], [1, 1, 1], [1, 1], 2, "zeros"),
     (ValueError, RuntimeError), r"padding"),
    ("conv2d-padding-mode", lambda: OPS.conv2d(x4(), W(), None, *_args(mode="bogus")), ValueError,
     r"padding_mode must be .*got 'bogus'"),
    ("conv2d-input-rank", lambda: OPS.conv2d(x4()[0], W(), None, *_args()), ValueError,
     r"expected input with 4 dimensions, got 3"),
    ("conv2d-weight-rank", lambda: OPS.conv2d(x4(), W()[0], None, *_args()), ValueError,
     r"expected weight with 4 dimensions, got 3"),
    ("conv2d-integer", lambda: OPS.conv2d(x4().long(), W().long(), None, *_args()), TypeError,
     r"input must be float32 or float64 on cpu, got int64"),
    ("conv2d-dtype-mismatch", lambda: OPS.conv2d(x4(), W().double(), None, *_args()), TypeError,
     r"input and weight must have the same dtype"),
    ("conv2d-bias-size", lambda: OPS.conv2d(x4(), W(), torch.randn(3), *_args()), ValueError,
     r"bias must have shape \(6,\)"),
    ("conv2d-reflect-too-big", lambda: OPS.conv2d(x4(), W(), None, *_args(padding=(6, 6, 1, 1), mode="reflect")),
     ValueError, r"padding_mode='reflect' needs padding smaller than the input size, got padding \(6, 6, 1, 1\)"),
    ("conv2d-kernel-too-big", lambda: OPS.conv2d(x4(1, 4, 2, 2), W(), None, *_args(padding=(0, 0, 0, 0))),
     ValueError, r"kernel size \(dilated\) \(3, 3\) is larger than the padded input \(2, 2\)"),
    ("conv2d-zero-kernel", lambda: OPS.conv2d(x4(), torch.randn(6, 2, 0, 3), None, *_args()), ValueError,
     r"kernel_size must be positive, got \(0, 3\)"),
    ("conv2d-huge-padding", lambda: OPS.conv2d(x4(), W(), None, *_args(padding=(2**62, 2**62, 1, 1))), ValueError,
     r"padding must be smaller than 2\^62, got 4611686018427387904"),
    ("conv2d-huge-dilation", lambda: OPS.conv2d(x4(), W(), None, *_args(dilation=(2**62, 1))), ValueError,
     r"dilation must be smaller than 2\^62"),
    ("backward_input-input_size-too-small",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 6, 6), W(), [2, 4, 3, 3], *_args()), ValueError,
     r"conv2d_backward_input: grad_output of shape \[2, 6, 6, 6\] does not match the convolution\'s output shape "
     r"\[2, 6, 3, 3\]"),
    ("backward_input-batch-mismatch",
     lambda: OPS.conv2d_backward_input(x4(3, 6, 6, 6), W(), [2, 4, 6, 6], *_args()), ValueError,
     r"grad_output of shape \[3, 6, 6, 6\] does not match the convolution\'s output shape \[2, 6, 6, 6\]"),
    ("backward_input-channel-mismatch",
     lambda: OPS.conv2d_backward_input(x4(2, 5, 6, 6), W(), [2, 4, 6, 6], *_args()), ValueError,
     r"grad_output of shape \[2, 5, 6, 6\] does not match the convolution\'s output shape \[2, 6, 6, 6\]"),
    ("backward_input-input_size-channels",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 6, 6), W(), [2, 5, 6, 6], *_args()), ValueError,
     r"input has 5 channels but weight"),
    ("backward_input-input_size-negative",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 1, 6), W(), [2, 4, -1, 6], *_args(padding=(3, 3, 1, 1))),
     ValueError, r"sizes must be non-negative, got input \(2, 4, -1, 6\)"),
    ("backward_input-input_size-length",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 6, 6), W(), [2, 4, 6], *_args()), (ValueError, RuntimeError),
     r"input"),
    ("backward_input-negative-padding",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 6, 6), W(), [2, 4, 6, 6], *_args(padding=(-1, 1, 1, 1))),
     ValueError, r"padding must be non-negative"),
    ("backward_input-groups-0",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 6, 6), W(), [2, 4, 6, 6], *_args(groups=0)), ValueError,
     r"groups must be positive, got 0"),
    ("backward_input-dtype",
     lambda: OPS.conv2d_backward_input(x4(2, 6, 6, 6).double(), W(), [2, 4, 6, 6], *_args()), TypeError,
     r"grad_output and weight must have the same dtype"),
    ("backward_weight-grad_output-too-big",
     lambda: OPS.conv2d_backward_weight(x4(2, 6, 9, 6), x4(), [6, 2, 3, 3], *_args()), ValueError,
     r"grad_output of shape \[2, 6, 9, 6\] does not match the convolution\'s output shape \[2, 6, 6, 6\]"),
    ("backward_weight-weight_size-channels",
     lambda: OPS.conv2d_backward_weight(x4(2, 6, 6, 6), x4(), [6, 3, 3, 3], *_args()), ValueError,
     r"input has 4 channels but weight of shape \[6, 3, 3, 3\]"),
    ("backward_weight-weight_size-length",
     lambda: OPS.conv2d_backward_weight(x4(2, 6, 6, 6), x4(), [6, 2, 3], *_args()), (ValueError, RuntimeError),
     r"weight"),
    ("backward_weight-negative-kernel",
     lambda: OPS.conv2d_backward_weight(x4(2, 6, 6, 6), x4(), [6, 2, -3, 3], *_args()), ValueError,
     r"kernel_size must be positive, got \(-3, 3\)"),
    ("backward_weight-batch-mismatch",
     lambda: OPS.conv2d_backward_weight(x4(1, 6, 6, 6), x4(), [6, 2, 3, 3], *_args()), ValueError,
     r"grad_output of shape \[1, 6, 6, 6\] does not match the convolution\'s output shape \[2, 6, 6, 6\]"),
    ("backward_weight-circular-too-big",
     lambda: OPS.conv2d_backward_weight(x4(2, 6, 6, 6), x4(), [6, 2, 3, 3], *_args(padding=(7, 7, 1, 1),
                                                                                   mode="circular")),
     ValueError, r"padding_mode='circular' needs padding no larger than the input size"),
    ("backward_weight-groups-0",
     lambda: OPS.conv2d_backward_weight(x4(2, 6, 6, 6), x4(), [6, 2, 3, 3], *_args(groups=0)), ValueError,
     r"groups must be positive, got 0"),
    ("backward_bias-rank", lambda: OPS.conv_backward_bias(torch.randn(2, 6, 6)), ValueError,
     r"conv_backward_bias: expected grad_output with 4 dimensions, got 3"),
    ("backward_bias-integer", lambda: OPS.conv_backward_bias(torch.ones(2, 6, 6, 6, dtype=torch.int32)), TypeError,
     r"grad_output must be float32 or float64 on cpu, got int32"),
]


@pytest.mark.parametrize("fn,exc,pattern", [c[1:] for c in RAW_ERRORS], ids=[c[0] for c in RAW_ERRORS])
def test_raw_op_errors(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()


def test_error_messages_name_the_op():
    with pytest.raises(ValueError) as info:
        FC.conv1d(torch.randn(2, 4, 6), torch.randn(3, 4, 3), stride=0)
    assert re.search(r"^fastconv\.conv1d: stride", str(info.value))


# ---------------------------------------------------------------- devices

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mismatch():
    x = torch.randn(2, 4, 6, 6, device="cuda")
    with pytest.raises(RuntimeError, match=r"input and weight must be on the same device"):
        FC.conv2d(x, torch.randn(6, 4, 3, 3))
    with pytest.raises(RuntimeError, match=r"input and bias must be on the same device"):
        FC.conv2d(x, torch.randn(6, 4, 3, 3, device="cuda"), torch.randn(6))


def test_device_mismatch_on_a_cpu_only_machine():
    """The same checks without a GPU: the meta device stands in for a second device."""
    x = torch.randn(2, 4, 6, 6)
    with pytest.raises(RuntimeError, match=r"input and weight must be on the same device, got cpu and meta"):
        FC.conv2d(x, torch.randn(6, 4, 3, 3, device="meta"))
    with pytest.raises(RuntimeError, match=r"input and bias must be on the same device, got cpu and meta"):
        FC.conv2d(x, torch.randn(6, 4, 3, 3), torch.randn(6, device="meta"))
    with pytest.raises(RuntimeError, match=r"same device"):
        FC.conv_transpose2d(x, torch.randn(4, 6, 3, 3, device="meta"))
    y, ind = FC.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(RuntimeError, match=r"same device"):
        FC.max_unpool2d(y, ind.to("meta"), 2)


def test_meta_inputs_infer_shapes():
    """Shape inference on the meta device (what torch.compile's fake tensors and model summaries do) goes
    through the functional API to the ops' fake kernels, with torch's output shapes."""
    x = torch.randn(2, 4, 9, 8)
    w = torch.randn(6, 2, 3, 3)
    cases = [
        (FC.conv2d, TF.conv2d, (x, w), dict(stride=2, padding=1, groups=2)),
        (FC.conv1d, TF.conv1d, (x[:, :, 0], w[:, :, 0]), dict(padding="same", groups=2)),
        (FC.conv_transpose2d, TF.conv_transpose2d, (x, torch.randn(4, 3, 3, 3)), dict(stride=2)),
        (FC.max_pool2d, TF.max_pool2d, (x, 3), dict(stride=2, ceil_mode=True)),
        (FC.avg_pool1d, TF.avg_pool1d, (x[:, :, 0], 2), {}),
        (FC.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, (x, (3, 2)), {}),
    ]
    for ours, theirs, args, kw in cases:
        meta = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
        assert ours(*meta, **kw).shape == theirs(*args, **kw).shape, ours.__name__
