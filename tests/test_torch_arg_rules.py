"""Argument handling as torch's, case by case (the fuzz suite, tests/test_fuzz.py, found each of these): the
order of checks (the argument parser's type errors first, its unpacking errors right to left), the int
spellings it accepts, and the places where torch computes nothing and so checks less. Each case runs on both
libraries: where torch raises, fastconv raises an instance of the same type; where torch returns, fastconv
returns the same values."""
import numpy
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn.functional as FF


def _x(*shape, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape) + len(shape)), dtype=dtype)


def _pooled(spatial):
    x = _x(1, 2, 8, 8) if spatial == 2 else _x(1, 2, 8)
    return (TF.max_pool2d if spatial == 2 else TF.max_pool1d)(x, 2, return_indices=True)


CASES = {
    # the parser's type errors come before any tensor check (here: a channel mismatch)
    "type before tensor checks": lambda F: F.conv1d(_x(1, 4, 5), _x(2, 1, 1), padding=[3], dilation=(None,)),
    "bare bool stride": lambda F: F.conv2d(_x(1, 2, 5, 5), _x(2, 2, 3, 3), stride=True),
    # ints it accepts: a bool after the first item, 0-d / one-element int tensors, numpy ints
    "bool after first item": lambda F: F.conv2d(_x(1, 2, 5, 5), _x(2, 2, 3, 3), stride=(1, True)),
    "bool first item": lambda F: F.max_pool2d(_x(1, 2, 6, 6), (True, 2)),
    "0-d tensor dilation": lambda F: F.conv1d(_x(1, 1, 20), _x(2, 1, 3), stride=2, dilation=torch.tensor(2)),
    "one-element tensor in list": lambda F: F.max_pool2d(_x(1, 2, 6, 6), [1, torch.tensor([2])]),
    "float tensor stride": lambda F: F.conv2d(_x(1, 2, 5, 5), _x(2, 2, 3, 3), stride=torch.tensor(2.0)),
    "numpy ints": lambda F: F.conv2d(_x(1, 2, 7, 7), _x(2, 2, 3, 3), stride=(numpy.int64(1), numpy.int64(2))),
    "0-d tensor divisor": lambda F: F.avg_pool2d(_x(1, 2, 6, 6), 2, divisor_override=torch.tensor(3)),
    # unpacking errors: the last argument's first (GCC evaluates the C++ call's arguments right to left)
    "unpack errors right to left": lambda F: F.avg_pool2d(_x(1, 2, 6, 6), (2, 3), stride=(3, None),
                                                          divisor_override=2 ** 64),
    "unpack errors right to left, conv": lambda F: F.conv2d(_x(1, 2, 6, 6), _x(2, 2, 3, 3), None, (1, None), 2 ** 64),
    "match error before unpack error": lambda F: F.conv2d(_x(1, 2, 6, 6), _x(2, 2, 3, 3), None, (1, 2 ** 64),
                                                          (1.5, 1)),
    # an empty input: torch's convolution computes nothing and skips its input / weight dtype check
    "batch 0 mixed dtypes": lambda F: F.conv1d(_x(0, 3, 7), _x(9, 1, 5, dtype=torch.float32), padding=2, groups=3),
    "batch 0 mixed dtypes, transposed": lambda F: F.conv_transpose2d(_x(0, 3, 2, 3), _x(3, 2, 5, 4).float()),
    "batch 0 big output_padding": lambda F: F.conv_transpose2d(_x(0, 3, 2, 3), _x(3, 2, 5, 4), output_padding=(1, 0)),
    # a bias of another dtype: conv with int padding rejects it; string padding adds it unless oneDNN runs
    "bias dtype, int padding": lambda F: F.conv2d(_x(1, 4, 8, 8), _x(4, 4, 3, 3), _x(4).float(), padding=1),
    "bias dtype, 'same', float64": lambda F: F.conv2d(_x(1, 4, 8, 8), _x(4, 1, 1, 3), _x(4).float(), padding="same",
                                                      groups=4),
    "bias dtype, 'valid', oneDNN": lambda F: F.conv1d(_x(3, 2, 10).float(), _x(1, 2, 2).float(), _x(1),
                                                      padding="valid", dilation=3),
    "int bias, 'valid', float64": lambda F: F.conv2d(_x(2, 2, 7, 2), _x(2, 1, 1, 1), torch.tensor([1, 2]),
                                                     padding="valid", groups=2),
    "bias dtype, transposed": lambda F: F.conv_transpose2d(_x(1, 3, 4, 4).float(), _x(3, 2, 3, 3).float(), _x(2)),
    # a transposed convolution into an empty plane: oneDNN (float32, batch > 1) returns, the reference raises
    "empty output plane, oneDNN": lambda F: F.conv_transpose2d(_x(2, 3, 1, 1).float(), _x(3, 4, 2, 2).float(),
                                                               padding=1),
    "empty output plane, float64": lambda F: F.conv_transpose2d(_x(2, 3, 1, 1), _x(3, 4, 2, 2), padding=1),
    "negative output size": lambda F: F.conv_transpose2d(_x(1, 3, 1, 1), _x(3, 4, 2, 2), padding=2),
    # adaptive average to 1x1: a mean over the last two dimensions (NaN for an empty plane, any rank)
    "adaptive 1x1 of an empty plane": lambda F: F.adaptive_avg_pool2d(_x(1, 2, 1, 0), (None, 1)),
    "adaptive 1x1, 1-d, empty": lambda F: F.adaptive_avg_pool1d(_x(1, 2, 0), 1),
    "adaptive 1x1 of a 5-d input": lambda F: F.adaptive_avg_pool2d(_x(1, 2, 2, 3, 2), 1),
    "adaptive 1x1 of a 2-d input": lambda F: F.adaptive_avg_pool2d(_x(3, 4), 1),
    "adaptive 2x2 of a 5-d input": lambda F: F.adaptive_avg_pool2d(_x(1, 2, 2, 3, 2), 2),
    "adaptive 1-d takes no None": lambda F: F.adaptive_avg_pool1d(_x(1, 2, 6), (None,)),
    "adaptive 2-d list of one": lambda F: F.adaptive_avg_pool2d(_x(1, 2, 6, 6), [2]),
    "adaptive 2-d bare bool": lambda F: F.adaptive_max_pool2d(_x(1, 2, 6, 6), True),
    # lp_pool: torch's composition (any exponent Tensor.pow takes; 2-d unpacks kernel_size first)
    "lp_pool bool exponent": lambda F: F.lp_pool1d(_x(2, 5, 5).abs(), True, 2),
    "lp_pool tensor exponent": lambda F: F.lp_pool2d(_x(2, 2, 6, 6).abs(), torch.tensor(2.0), (2, 2)),
    "lp_pool2d kernel of one": lambda F: F.lp_pool2d(_x(3, 1, 7, 6), 1.0, (2,), stride=(1, 2)),
    "lp_pool2d kernel before input": lambda F: F.lp_pool2d("x", 0.5, (3,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_as_torch(name):
    case = CASES[name]
    try:
        want = case(TF)
    except Exception as e:  # noqa: BLE001 -- whatever torch raises, fastconv raises an instance of its type
        with pytest.raises(type(e)):
            case(FF)
        return
    got = case(FF)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    torch.testing.assert_close(got, want, equal_nan=True, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial", [1, 2])
@pytest.mark.parametrize("kernel", [numpy.int64(2), torch.tensor([2, 2]), float("nan")], ids=["numpy", "tensor", "nan"])
def test_max_unpool_window_arguments_feed_only_the_size_arithmetic(spatial, kernel):
    """torch._check_value(size >= 0) needs a bool: sizes computed from numpy ints or tensors are a TypeError
    there, NaN sizes a ValueError."""
    y, ind = _pooled(spatial)
    unpool = {F: getattr(F, f"max_unpool{spatial}d") for F in (TF, FF)}
    if isinstance(kernel, torch.Tensor) and spatial == 1:
        kernel = torch.tensor([2])
    with pytest.raises(Exception) as want:
        unpool[TF](y, ind, kernel)
    with pytest.raises(type(want.value)):
        unpool[FF](y, ind, kernel)


def test_adaptive_average_of_an_empty_plane_has_an_empty_gradient():
    for F in (TF, FF):
        x = _x(2, 3, 0, 4).requires_grad_()
        y = F.adaptive_avg_pool2d(x, 1)
        assert torch.isnan(y).all() and y.shape == (2, 3, 1, 1)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert g.shape == x.shape
