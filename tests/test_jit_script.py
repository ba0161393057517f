"""TorchScript (issue 13, item 11): torch.jit.script of a fastconv module, of a model converted with
fastconv.convert, of a fastconv.nn.functional function or of a module calling one raises one clear
FastconvScriptError (a RuntimeError) that points to torch.jit.trace and torch.export; torch.jit.trace of
fastconv modules works, runs fastconv's ops and matches eager (also after save / load)."""
import io
import re

import pytest
import torch

import fastconv
from fastconv.errors import FastconvScriptError

FC = fastconv.nn.functional

MODULES = [
    ("Conv1d", lambda: fastconv.nn.Conv1d(3, 4, 3)),
    ("Conv2d", lambda: fastconv.nn.Conv2d(3, 4, 3, padding=1)),
    ("Conv2d-reflect", lambda: fastconv.nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")),
    ("ConvTranspose1d", lambda: fastconv.nn.ConvTranspose1d(3, 4, 3)),
    ("ConvTranspose2d", lambda: fastconv.nn.ConvTranspose2d(3, 4, 3)),
    ("MaxPool1d", lambda: fastconv.nn.MaxPool1d(2)),
    ("MaxPool2d", lambda: fastconv.nn.MaxPool2d(2)),
    ("AvgPool1d", lambda: fastconv.nn.AvgPool1d(2)),
    ("AvgPool2d", lambda: fastconv.nn.AvgPool2d(2)),
    ("LPPool1d", lambda: fastconv.nn.LPPool1d(2, 2)),
    ("LPPool2d", lambda: fastconv.nn.LPPool2d(2, 2)),
    ("MaxUnpool1d", lambda: fastconv.nn.MaxUnpool1d(2)),
    ("MaxUnpool2d", lambda: fastconv.nn.MaxUnpool2d(2)),
    ("AdaptiveAvgPool1d", lambda: fastconv.nn.AdaptiveAvgPool1d(2)),
    ("AdaptiveAvgPool2d", lambda: fastconv.nn.AdaptiveAvgPool2d(1)),
    ("AdaptiveMaxPool1d", lambda: fastconv.nn.AdaptiveMaxPool1d(2)),
    ("AdaptiveMaxPool2d", lambda: fastconv.nn.AdaptiveMaxPool2d(1)),
]


def _assert_clear_script_error(info, what):
    """what: the fastconv module or function the message names (a regex)."""
    e = info.value
    assert isinstance(e, FastconvScriptError) and isinstance(e, RuntimeError)
    msg = str(e)
    assert re.match(rf"torch\.jit\.script does not support {what} \(a fastconv (module|function)\)\. ", msg), msg
    assert "torch.jit.trace" in msg and "torch.export" in msg


def test_every_module_is_covered():
    assert sorted(name.split("-")[0] for name, _ in MODULES if "-" not in name) == sorted(fastconv.nn.modules.__all__)


@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_script_of_a_module_raises_one_clear_error(name, make):
    with pytest.raises(RuntimeError) as info:
        torch.jit.script(make())
    _assert_clear_script_error(info, rf"fastconv\.nn\.{name.split('-')[0]}")


def _torch_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2, ceil_mode=True),
        torch.nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular"), torch.nn.AvgPool2d(2),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 5))


def test_script_of_a_converted_model_raises_one_clear_error():
    model = _torch_model()
    torch.jit.script(model)  # the torch model scripts
    model, report = fastconv.convert(model)
    assert report.swapped
    with pytest.raises(RuntimeError) as info:
        torch.jit.script(model)
    _assert_clear_script_error(info, r"fastconv\.nn\.Conv2d")


@pytest.mark.parametrize("name", fastconv.nn.functional.__all__)
def test_script_of_a_functional_raises_one_clear_error(name):
    with pytest.raises(RuntimeError) as info:
        torch.jit.script(getattr(FC, name))
    _assert_clear_script_error(info, rf"fastconv\.nn\.functional\.{name}")


class _CallsFunctional(torch.nn.Module):
    """A user module (defined in a file: TorchScript reads its source) whose forward calls fastconv."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x):
        return FC.max_pool2d(FC.conv2d(x, self.weight, padding=1), 2)


def test_script_of_a_module_calling_the_functional_api_raises_one_clear_error():
    with pytest.raises(RuntimeError) as info:
        torch.jit.script(_CallsFunctional())
    # TorchScript compiles the outer call first
    _assert_clear_script_error(info, r"fastconv\.nn\.functional\.(max_pool2d|conv2d)")


def _fastconv_ops(graph_module):
    """Kinds of the fastconv ops in a traced module's graph, its submodules' forward graphs included."""
    kinds = set()
    for m in graph_module.modules():
        if hasattr(m, "graph"):
            kinds |= {node.kind() for node in m.graph.nodes() if node.kind().startswith("fastconv::")}
    return kinds


def test_trace_of_a_converted_model_matches_eager_and_survives_save_load():
    torch.manual_seed(0)
    model, _ = fastconv.convert(_torch_model().eval())
    x = torch.randn(2, 3, 11, 11)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    assert {"fastconv::conv2d", "fastconv::max_pool2d_with_indices", "fastconv::avg_pool2d",
            "fastconv::adaptive_avg_pool2d"} <= _fastconv_ops(traced)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        buf.seek(0)
        loaded = torch.jit.load(buf)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
        # another batch size of the same spatial size: the window arguments were recorded as constants
        x4 = torch.randn(4, 3, 11, 11)
        torch.testing.assert_close(loaded(x4), model(x4), rtol=0, atol=0)


@pytest.mark.parametrize("name,make", MODULES, ids=[m[0] for m in MODULES])
def test_trace_of_each_module_matches_eager(name, make):
    torch.manual_seed(0)
    m = make()
    x = torch.randn(2, 3, 8) if name.endswith("1d") else torch.randn(2, 3, 8, 8)
    if name.startswith("MaxUnpool"):
        pool = fastconv.nn.MaxPool1d(2, return_indices=True) if name.endswith("1d") else \
            fastconv.nn.MaxPool2d(2, return_indices=True)
        args = pool(x)
    else:
        args = (x,)
    with torch.no_grad():
        traced = torch.jit.trace(m, args, check_trace=False)
        assert _fastconv_ops(traced), "the trace does not call fastconv's ops"
        torch.testing.assert_close(traced(*args), m(*args), rtol=0, atol=0)


def test_export_of_a_converted_model_matches_eager():
    """The other route the error message names."""
    torch.manual_seed(0)
    model, _ = fastconv.convert(_torch_model().eval())
    x = torch.randn(2, 3, 11, 11)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))
