"""Exception types (issue 13, item 10): every error fastconv raises for bad arguments is an instance of the
exception type torch raises for the same call, so code written around torch (`except RuntimeError`,
`except TypeError`) catches fastconv's errors too; fastconv's messages still name the argument.

The reference cases are torch's own: the OpInfo error inputs of every torch.nn.functional op fastconv
implements. torch.testing._internal has import-time side effects (it freezes torch.backends flags, patches
TorchScript call paths, needs the expecttest package), so a subprocess collects the error inputs and saves
them; this process runs torch and fastconv on them.
"""
import pickle
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as TF

import fastconv
from fastconv.errors import (FastconvDtypeError, FastconvError, FastconvIndexError, FastconvOverflowError,
                             FastconvScriptError, FastconvTypeError, FastconvValueError)

FC = fastconv.nn.functional


# ---------------------------------------------------------------- the classes

@pytest.mark.parametrize("cls,bases", [
    (FastconvError, (RuntimeError,)),
    (FastconvValueError, (FastconvError, RuntimeError, ValueError)),
    (FastconvTypeError, (FastconvError, RuntimeError, TypeError)),
    (FastconvDtypeError, (FastconvTypeError, RuntimeError, TypeError, NotImplementedError)),
    (FastconvIndexError, (FastconvError, RuntimeError, IndexError)),
    (FastconvScriptError, (FastconvError, RuntimeError)),
])
def test_class_hierarchy_and_pickling(cls, bases):
    e = cls("fastconv.op: message")
    for base in bases:
        assert isinstance(e, base)
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is cls and str(copy) == "fastconv.op: message"


def test_public_names():
    assert fastconv.FastconvError is FastconvError
    assert fastconv.errors.FastconvValueError is FastconvValueError


# ---------------------------------------------------------------- torch's OpInfo error inputs

_COLLECT = textwrap.dedent("""
    import sys, types, warnings
    warnings.simplefilter("ignore")
    try:
        import expecttest  # noqa: F401  (needed by torch.testing._internal.common_utils)
    except ImportError:  # a stand-in with what common_utils uses from it
        import unittest
        stub = types.ModuleType("expecttest")
        stub.TestCase = unittest.TestCase
        stub.ACCEPT = False
        sys.modules["expecttest"] = stub
    out_path, names = sys.argv[1], set(sys.argv[2].split(","))
    sys.argv = sys.argv[:1]  # common_utils parses the command line
    import torch
    from torch.testing._internal.common_methods_invocations import op_db
    cases, ops = [], []
    for op in op_db:
        short = op.name[len("nn.functional."):] if op.name.startswith("nn.functional.") else None
        if short not in names or op.error_inputs_func is None:
            continue
        ops.append(short)
        for i, ei in enumerate(op.error_inputs(device="cpu")):
            s = ei.sample_input
            cases.append((short, op.variant_test_name, i, s.input, s.args, s.kwargs, ei.error_type.__name__,
                          ei.error_regex))
    torch.save({"cases": cases, "ops": ops}, out_path)
""")


@pytest.fixture(scope="module")
def opinfo_error_inputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("opinfo") / "error_inputs.pt"
    proc = subprocess.run([sys.executable, "-c", _COLLECT, str(out), ",".join(FC.__all__)], capture_output=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail("collecting torch's OpInfo error inputs failed:\n" + proc.stderr.decode()[-3000:])
    return torch.load(out, weights_only=False)


def _raised(fn, *args, **kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001  (the point is which type)
        return e
    return None


def test_opinfo_error_inputs_raise_an_instance_of_torchs_exception_type(opinfo_error_inputs):
    cases = opinfo_error_inputs["cases"]
    # torch 2.13 has 70 error inputs for these ops (issue 13 counted 73 on the torch it used); the per-op
    # check below catches a torch whose OpInfos lose them
    assert len(cases) >= 60, len(cases)
    for op in ("conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
               "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "max_unpool1d",
               "max_unpool2d"):
        assert any(c[0] == op for c in cases), f"no OpInfo error input for {op}"
    failures, checked = [], 0
    for name, variant, i, inp, args, kwargs, declared, regex in cases:
        torch_exc = _raised(getattr(TF, name), inp, *args, **kwargs)
        assert torch_exc is not None, f"torch no longer raises for {name}[{i}] ({regex})"
        fc_exc = _raised(getattr(FC, name), inp, *args, **kwargs)
        checked += 1
        where = f"{name}{'.' + variant if variant else ''}[{i}] (torch: {type(torch_exc).__name__}: {torch_exc})"
        if fc_exc is None:
            failures.append(f"{where}: fastconv raised nothing")
        elif not isinstance(fc_exc, type(torch_exc)):
            failures.append(f"{where}: fastconv raised {type(fc_exc).__name__}: {fc_exc}")
        elif not isinstance(fc_exc, FastconvError) or f"fastconv.{name}" not in str(fc_exc):
            failures.append(f"{where}: fastconv's error does not name the op: {type(fc_exc).__name__}: {fc_exc}")
    assert not failures, f"{len(failures)} of {checked} error inputs:\n" + "\n".join(failures)


# ---------------------------------------------------------------- cases beyond the OpInfos

X2 = torch.randn(2, 4, 8, 8)
X1 = torch.randn(2, 4, 8)
W2 = torch.randn(6, 4, 3, 3)

# (id, fastconv call, torch call, regex the fastconv message must match: the argument's name)
CASES = [
    ("conv2d-stride-zero", lambda F: F.conv2d(X2, W2, stride=0), r"stride must be positive"),
    ("conv2d-padding-negative", lambda F: F.conv2d(X2, W2, padding=-1), r"padding must be non-negative"),
    ("conv2d-padding-string", lambda F: F.conv2d(X2, W2, padding="full"), r"padding must be"),
    ("conv2d-same-strided", lambda F: F.conv2d(X2, W2, padding="same", stride=2), r"padding='same'"),
    ("conv2d-input-bool", lambda F: F.conv2d(X2 > 0, W2 > 0), r"input must have a floating dtype"),
    ("conv2d-weight-dtype", lambda F: F.conv2d(X2, W2.double()), r"input and weight must have the same dtype"),
    ("conv2d-bias-shape", lambda F: F.conv2d(X2, W2, torch.zeros(5)), r"bias must have shape"),
    ("conv2d-input-rank", lambda F: F.conv2d(X2[0, 0], W2), r"expected input with 3 or 4 dimensions"),
    ("conv2d-input-not-tensor", lambda F: F.conv2d([1.0], W2), r"input must be a Tensor"),
    ("conv2d-kernel-too-big", lambda F: F.conv2d(X2[..., :2, :2], W2), r"kernel size .* larger than"),
    ("conv_transpose2d-output_padding", lambda F: F.conv_transpose2d(X2, W2.transpose(0, 1), output_padding=2),
     r"output_padding must be smaller"),
    ("conv_transpose2d-channels", lambda F: F.conv_transpose2d(X2, W2), r"input has 4 channels"),
    ("max_pool2d-kernel-zero", lambda F: F.max_pool2d(X2, 0), r"kernel_size must be positive"),
    ("max_pool2d-pad-too-big", lambda F: F.max_pool2d(X2, 2, padding=2), r"padding: pad should be"),
    ("max_pool2d-output-too-small", lambda F: F.max_pool2d(X2, 9), r"output size .* too small"),
    ("max_pool1d-input-int", lambda F: F.max_pool1d(X1.long(), 2), r"input must have a floating dtype"),
    ("avg_pool2d-divisor-zero", lambda F: F.avg_pool2d(X2, 2, divisor_override=0), r"divisor_override"),
    ("avg_pool2d-ceil_mode-int", lambda F: F.avg_pool2d(X2, 2, ceil_mode=1), r"ceil_mode must be a bool"),
    ("avg_pool1d-input-bool", lambda F: F.avg_pool1d(X1 > 0, 2), r"input must have a floating dtype"),
    ("adaptive_avg_pool2d-negative", lambda F: F.adaptive_avg_pool2d(X2, -1),
     r"output_size must be (positive|non-negative)"),
    ("adaptive_max_pool2d-length", lambda F: F.adaptive_max_pool2d(X2, (1, 2, 3)), r"output_size must be"),
    ("adaptive_avg_pool1d-input-int", lambda F: F.adaptive_avg_pool1d(X1.long(), 2),
     r"input must have a floating dtype"),
    ("lp_pool2d-stride-float", lambda F: F.lp_pool2d(X2, 2.0, 2, stride=1.5), r"stride must be an int"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_fastconv_error_is_instance_of_torchs_and_names_the_argument(case):
    _, call, regex = case
    torch_exc = _raised(call, TF)
    assert torch_exc is not None
    with pytest.raises(type(torch_exc), match=regex) as info:
        call(FC)
    assert isinstance(info.value, FastconvError)


def test_unsupported_dtype_is_not_implemented_error_like_torch():
    # torch: NotImplementedError ("max_pool2d" not implemented for 'Long'); fastconv's earlier TypeError too
    assert isinstance(_raised(TF.max_pool1d, X1.long(), 2), NotImplementedError)
    with pytest.raises(NotImplementedError, match="max_pool1d: input must have a floating dtype") as info:
        FC.max_pool1d(X1.long(), 2)
    assert isinstance(info.value, TypeError)


def test_errors_of_the_cpp_ops_are_widened():
    """Checks only the C++ op makes come out of the functional API as fastconv's classes. An index outside the
    output plane (it depends on the data) is a plain RuntimeError, as torch's, also where a backward pass raises
    it; an argument past a documented limit is a FastconvOverflowError."""
    y, ind = TF.max_pool2d(X2, 2, return_indices=True)
    bad = ind.clone()
    bad[0, 0, 0, 0] = 10 ** 6
    assert isinstance(_raised(TF.max_unpool2d, y, bad, 2), RuntimeError)
    with pytest.raises(RuntimeError, match=r"fastconv\.max_unpool2d: indices: found an invalid index") as info:
        FC.max_unpool2d(y, bad, 2)
    assert not isinstance(info.value, ValueError)
    y1, ind1 = TF.max_pool1d(X1, 2, return_indices=True)
    bad1 = ind1.clone()
    bad1[0, 0, 0] = 10 ** 6
    with pytest.raises(RuntimeError, match=r"fastconv\.max_unpool1d: .*outside the output of length 8"):
        FC.max_unpool1d(y1, bad1, 2)
    with pytest.raises(FastconvOverflowError, match=r"must be smaller than 2\^31") as info:
        FC.max_pool2d(X2, 2 ** 40, padding=0, ceil_mode=True)
    assert isinstance(info.value, OverflowError) and isinstance(info.value, ValueError)


def test_module_errors_are_runtime_errors():
    with pytest.raises(RuntimeError, match="input with 3 or 4 dimensions"):
        fastconv.nn.Conv2d(4, 6, 3)(torch.randn(8, 8))
    with pytest.raises(RuntimeError, match="kernel_size must be positive"):
        fastconv.nn.MaxPool2d(0)(X2)
    m = fastconv.nn.ConvTranspose2d(4, 6, 3)
    m.padding_mode = "reflect"
    with pytest.raises(ValueError, match="Only `zeros` padding mode"):
        m(X2)


def test_old_except_clauses_still_catch():
    """Code written against earlier fastconv (except ValueError / except TypeError) keeps working."""
    with pytest.raises(ValueError):
        FC.conv2d(X2, W2, stride=0)
    with pytest.raises(TypeError):
        FC.conv2d(X2.long(), W2.long())
    with pytest.raises(TypeError):
        FC.conv2d(X2, W2, groups=None)
