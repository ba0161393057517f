"""Argument strictness (issue 13, item 8): fastconv accepts exactly what torch accepts.

Bool flags: torch's argument parser takes only True / False for ceil_mode and count_include_pad and raises
TypeError for anything else (0, 1, numpy bools, the string 'False', None, tensors); fastconv raises a
TypeError naming the argument, on the functional API (every call, including a pooling layer's cached repeat
call) and in the module constructors. return_indices is tested for truth by torch's Python dispatch (any value
is accepted); fastconv does the same. int-list arguments take ints, lists, tuples and torch.Size only.
Each test also checks torch's own behaviour, so a torch change that makes fastconv differ shows up here.
"""
import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import fastconv
from fastconv.errors import FastconvTypeError, FastconvValueError

FC = fastconv.nn.functional

X2 = torch.randn(2, 3, 7, 7)
X1 = torch.randn(2, 3, 7)

NOT_BOOLS = [
    pytest.param(1, id="int1"), pytest.param(0, id="int0"), pytest.param(2, id="int2"),
    pytest.param("False", id="str-False"), pytest.param("True", id="str-True"), pytest.param(None, id="None"),
    pytest.param(np.bool_(True), id="numpy-bool"), pytest.param(np.int64(1), id="numpy-int"),
    pytest.param(1.0, id="float"), pytest.param(torch.tensor(True), id="tensor-bool"),
    pytest.param([True], id="list"),
]

# (id, functional name, input, positional args, flag name)
FLAG_CALLS = [
    ("max_pool2d-ceil_mode", "max_pool2d", X2, (3, 2), "ceil_mode"),
    ("max_pool1d-ceil_mode", "max_pool1d", X1, (3, 2), "ceil_mode"),
    ("avg_pool2d-ceil_mode", "avg_pool2d", X2, (3, 2), "ceil_mode"),
    ("avg_pool1d-ceil_mode", "avg_pool1d", X1, (3, 2), "ceil_mode"),
    ("avg_pool2d-count_include_pad", "avg_pool2d", X2, (3, 2, 1), "count_include_pad"),
    ("avg_pool1d-count_include_pad", "avg_pool1d", X1, (3, 2, 1), "count_include_pad"),
    ("lp_pool2d-ceil_mode", "lp_pool2d", X2, (2.0, 3, 2), "ceil_mode"),
    ("lp_pool1d-ceil_mode", "lp_pool1d", X1, (2.0, 3, 2), "ceil_mode"),
    ("lp_pool2d-inf-ceil_mode", "lp_pool2d", X2, (float("inf"), 3, 2), "ceil_mode"),
]


@pytest.mark.parametrize("value", NOT_BOOLS)
@pytest.mark.parametrize("case", FLAG_CALLS, ids=[c[0] for c in FLAG_CALLS])
def test_bool_flag_rejects_non_bools_like_torch(case, value):
    _, name, x, args, flag = case
    with pytest.raises(TypeError):
        getattr(TF, name)(x, *args, **{flag: value})
    with pytest.raises(TypeError, match=rf"fastconv\.{name}: {flag} must be a bool") as info:
        getattr(FC, name)(x, *args, **{flag: value})
    assert isinstance(info.value, FastconvTypeError) and isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("case", FLAG_CALLS, ids=[c[0] for c in FLAG_CALLS])
def test_bool_flag_accepts_bools(case, value):
    _, name, x, args, flag = case
    ref = getattr(TF, name)(x, *args, **{flag: value})
    got = getattr(FC, name)(x, *args, **{flag: value})
    torch.testing.assert_close(got, ref)


def test_ceil_mode_string_false_does_not_turn_ceil_mode_on():
    # the example: ceil_mode='False' used to give the ceil-mode result
    with pytest.raises(TypeError, match="ceil_mode"):
        FC.max_pool2d(X2, 2, ceil_mode="False")


@pytest.mark.parametrize("name,x", [("max_pool2d", X2), ("avg_pool2d", X2)])
def test_bool_flag_checked_on_cached_repeat_call(name, x):
    """A 2-d pooling layer's repeat call skips the window checks (fastconv/nn/_checked_windows.py); the flags
    are still checked."""
    fn = getattr(FC, name)
    fn(x, 3, 2)
    fn(x, 3, 2)  # now cached
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        fn(x, 3, 2, 0, ceil_mode=1)
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        fn(x, 3, 2, 0, ceil_mode="False")
    if name == "avg_pool2d":
        with pytest.raises(TypeError, match="count_include_pad must be a bool"):
            fn(x, 3, 2, 0, False, "False")


TRUTHY_CASES = [1, 0, "False", "", None, np.bool_(True), np.bool_(False), 2.5, [1], []]


@pytest.mark.parametrize("value", TRUTHY_CASES, ids=repr)
@pytest.mark.parametrize("name,x,size", [("max_pool2d", X2, 2), ("max_pool1d", X1, 2),
                                         ("adaptive_max_pool2d", X2, 3), ("adaptive_max_pool1d", X1, 3)])
def test_return_indices_truthiness_matches_torch(name, x, size, value):
    """torch's max_pool dispatch (plain and adaptive) tests return_indices for truth and accepts any value;
    so does fastconv. size: kernel_size or output_size."""
    ref = getattr(TF, name)(x, size, return_indices=value)
    got = getattr(FC, name)(x, size, return_indices=value)
    assert isinstance(got, tuple) == isinstance(ref, tuple)
    torch.testing.assert_close(got, ref)


# ---------------------------------------------------------------- module constructors

# (class name, positional args, flag)
MODULE_FLAGS = [
    ("MaxPool1d", (2,), "ceil_mode"), ("MaxPool2d", (2,), "ceil_mode"),
    ("AvgPool1d", (2,), "ceil_mode"), ("AvgPool2d", (2,), "ceil_mode"),
    ("AvgPool1d", (2,), "count_include_pad"), ("AvgPool2d", (2,), "count_include_pad"),
    ("LPPool1d", (2.0, 2), "ceil_mode"), ("LPPool2d", (2.0, 2), "ceil_mode"),
]


def _input_for(cls_name):
    return X1 if cls_name.endswith("1d") else X2


@pytest.mark.parametrize("value", [1, 0, "False", None, np.bool_(True)], ids=repr)
@pytest.mark.parametrize("cls_name,args,flag", MODULE_FLAGS, ids=[f"{c}-{f}" for c, _, f in MODULE_FLAGS])
def test_module_constructor_rejects_non_bool_flag(cls_name, args, flag, value):
    # torch's constructor stores the value and its forward raises TypeError; fastconv raises it up front
    torch_module = getattr(torch.nn, cls_name)(*args, **{flag: value})
    with pytest.raises(TypeError):
        torch_module(_input_for(cls_name))
    with pytest.raises(TypeError, match=rf"fastconv\.nn\.{cls_name}: {flag} must be a bool"):
        getattr(fastconv.nn, cls_name)(*args, **{flag: value})


@pytest.mark.parametrize("cls_name,args,flag", MODULE_FLAGS, ids=[f"{c}-{f}" for c, _, f in MODULE_FLAGS])
def test_module_constructor_accepts_bools_and_keeps_torch_signature(cls_name, args, flag):
    for value in (True, False):
        m = getattr(fastconv.nn, cls_name)(*args, **{flag: value})
        ref = getattr(torch.nn, cls_name)(*args, **{flag: value})
        assert getattr(m, flag) is value
        assert repr(m) == repr(ref)
        torch.testing.assert_close(m(_input_for(cls_name)), ref(_input_for(cls_name)))
    assert inspect.signature(getattr(fastconv.nn, cls_name)) == inspect.signature(getattr(torch.nn, cls_name))


def test_module_flag_changed_after_construction_is_checked_at_forward():
    m = fastconv.nn.MaxPool2d(2)
    m(X2)
    m.ceil_mode = 1
    with pytest.raises(TypeError, match="ceil_mode must be a bool"):
        m(X2)


def test_converted_module_with_bad_flag_raises_at_forward_like_torch():
    model = torch.nn.Sequential(torch.nn.AvgPool2d(2, count_include_pad=1))
    with pytest.raises(TypeError):
        model(X2)
    model, _ = fastconv.convert(model)
    assert type(model[0]) is fastconv.nn.AvgPool2d
    with pytest.raises(TypeError, match="count_include_pad must be a bool"):
        model(X2)


@pytest.mark.parametrize("cls_name", ["MaxPool2d", "MaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool1d"])
def test_module_return_indices_truthiness_matches_torch(cls_name):
    x = _input_for(cls_name)
    for value in (1, 0, "False", None):
        ref = getattr(torch.nn, cls_name)(2, return_indices=value)
        m = getattr(fastconv.nn, cls_name)(2, return_indices=value)
        assert isinstance(m(x), tuple) == isinstance(ref(x), tuple)


@pytest.mark.parametrize("cls_name", ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"])
def test_conv_bias_flag_truthiness_matches_torch(cls_name):
    for value in (True, False, 1, 0, None):
        ref = getattr(torch.nn, cls_name)(3, 4, 3, bias=value)
        m = getattr(fastconv.nn, cls_name)(3, 4, 3, bias=value)
        assert (m.bias is None) == (ref.bias is None)


# ---------------------------------------------------------------- int and int-list arguments

INT_LIST_CALLS = [
    ("conv2d-stride", lambda v: FC.conv2d(X2, torch.randn(4, 3, 3, 3), stride=v),
     lambda v: TF.conv2d(X2, torch.randn(4, 3, 3, 3), stride=v), "stride"),
    ("conv1d-dilation", lambda v: FC.conv1d(X1, torch.randn(4, 3, 3), dilation=v),
     lambda v: TF.conv1d(X1, torch.randn(4, 3, 3), dilation=v), "dilation"),
    ("conv_transpose2d-padding", lambda v: FC.conv_transpose2d(X2, torch.randn(3, 4, 3, 3), padding=v),
     lambda v: TF.conv_transpose2d(X2, torch.randn(3, 4, 3, 3), padding=v), "padding"),
    ("max_pool2d-kernel_size", lambda v: FC.max_pool2d(X2, v), lambda v: TF.max_pool2d(X2, v), "kernel_size"),
    ("avg_pool2d-stride", lambda v: FC.avg_pool2d(X2, 2, v), lambda v: TF.avg_pool2d(X2, 2, v), "stride"),
    ("max_pool1d-padding", lambda v: FC.max_pool1d(X1, 3, 1, v), lambda v: TF.max_pool1d(X1, 3, 1, v), "padding"),
]

NOT_INT_LISTS = [
    pytest.param("a", id="str"), pytest.param(1.5, id="float"), pytest.param(None, id="None"),
    pytest.param(True, id="bool"), pytest.param((1.0, 1), id="tuple-float"), pytest.param(("a", 1), id="tuple-str"),
    pytest.param((True, 1), id="tuple-bool"), pytest.param(((1,), 1), id="nested"), pytest.param({1}, id="set"),
    pytest.param(range(1, 3), id="range"), pytest.param(np.array([1, 1]), id="ndarray"),
]


@pytest.mark.parametrize("value", NOT_INT_LISTS)
@pytest.mark.parametrize("case", INT_LIST_CALLS, ids=[c[0] for c in INT_LIST_CALLS])
def test_int_list_argument_of_wrong_type_is_type_error(case, value):
    _, fc, tc, name = case
    if name == "stride" and value is None:
        pytest.skip("stride=None is the pools' default")
    with pytest.raises(TypeError):
        tc(value)
    with pytest.raises(FastconvTypeError, match=rf"{name} must be an int or a tuple"):
        fc(value)


@pytest.mark.parametrize("value", [[1, 1], (1, 1), torch.Size([1, 1]), [np.int64(1), np.int64(1)], np.int32(1)],
                         ids=["list", "tuple", "Size", "numpy-items", "numpy-int"])
def test_int_list_argument_accepted_forms(value):
    w = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(FC.conv2d(X2, w, stride=value), TF.conv2d(X2, w, stride=value))
    torch.testing.assert_close(FC.max_pool2d(X2, 2, value), TF.max_pool2d(X2, 2, value))


def test_int_list_wrong_length_is_value_error_and_runtime_error():
    with pytest.raises(RuntimeError):
        TF.conv2d(X2, torch.randn(4, 3, 3, 3), stride=(1, 1, 1))
    with pytest.raises(FastconvValueError, match=r"stride must be an int or a tuple of 2 ints, got \(1, 1, 1\)"):
        FC.conv2d(X2, torch.randn(4, 3, 3, 3), stride=(1, 1, 1))


@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
def test_int_past_int64_is_value_error(name):
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(ValueError):
        TF.conv2d(X2, w, **{name: 2 ** 64})
    with pytest.raises(FastconvValueError, match=rf"{name} does not fit in int64"):
        FC.conv2d(X2, w, **{name: 2 ** 64})


def test_explicit_pad_pairs_are_not_public_padding():
    """Modules pass torch's asymmetric pads internally; the public conv2d rejects pairs, as torch does."""
    w = torch.randn(4, 3, 3, 3)
    with pytest.raises(TypeError):
        TF.conv2d(X2, w, padding=[(1, 2), (0, 1)])
    with pytest.raises(TypeError, match="padding must be an int or a tuple of 2 ints"):
        FC.conv2d(X2, w, padding=[(1, 2), (0, 1)])


@pytest.mark.parametrize("groups,exc", [(None, TypeError), (1.0, TypeError), (True, TypeError), ("1", TypeError),
                                        ((1,), TypeError), (0, RuntimeError), (-1, RuntimeError)],
                         ids=["None", "float", "bool", "str", "tuple", "zero", "negative"])
def test_groups_type_and_value(groups, exc):
    for fc, tc, w in ((FC.conv2d, TF.conv2d, torch.randn(3, 3, 3, 3)),
                      (FC.conv_transpose2d, TF.conv_transpose2d, torch.randn(3, 3, 3, 3))):
        with pytest.raises(exc):
            tc(X2, w, groups=groups)
        with pytest.raises(exc, match="groups must be a positive int"):
            fc(X2, w, groups=groups)


@pytest.mark.parametrize("value,exc", [(1.5, TypeError), (True, TypeError), ("2", TypeError), (0, RuntimeError)],
                         ids=["float", "bool", "str", "zero"])
def test_divisor_override(value, exc):
    with pytest.raises(exc):
        TF.avg_pool2d(X2, 2, divisor_override=value)
    with pytest.raises(exc, match="divisor_override"):
        FC.avg_pool2d(X2, 2, divisor_override=value)


@pytest.mark.parametrize("output_size,exc", [
    ((1.5, 2), TypeError), (("a", 2), TypeError), ({2}, RuntimeError), ((2, 2, 2), RuntimeError)],
    ids=["float", "str", "set", "length"])
def test_adaptive_output_size(output_size, exc):
    with pytest.raises(exc):
        TF.adaptive_avg_pool2d(X2, output_size)
    with pytest.raises(exc, match="output_size must be an int or a tuple of 2 ints"):
        FC.adaptive_avg_pool2d(X2, output_size)


def test_unpool_output_size_must_be_a_sequence():
    y, ind = TF.max_pool1d(X1, 2, return_indices=True)
    with pytest.raises(TypeError):
        TF.max_unpool1d(y, ind, 2, output_size=6)
    with pytest.raises(FastconvTypeError, match="output_size must be a tuple of 1 or 3 ints"):
        FC.max_unpool1d(y, ind, 2, output_size=6)
    torch.testing.assert_close(FC.max_unpool1d(y, ind, 2, output_size=[7]),
                               TF.max_unpool1d(y, ind, 2, output_size=[7]))
