"""fastconv.convert: swaps torch conv/pooling modules for fastconv's, sharing the Parameter objects."""
import copy
import io
import logging
import pickle

import pytest
import torch

import fastconv
from fastconv.convert import CONVERTIBLE, NO_KERNEL, ConvertError, ConvertReport

# constructor args of each convertible class, and an input for it
SAMPLES = {
    "Conv1d": ((3, 4, 3), dict(padding=1), (2, 3, 9)),
    "Conv2d": ((3, 4, 3), dict(stride=2, padding_mode="reflect", padding=1), (2, 3, 9, 8)),
    "ConvTranspose1d": ((3, 4, 3), dict(stride=2, output_padding=1), (2, 3, 7)),
    "ConvTranspose2d": ((3, 4, 3), dict(stride=2, padding=1, groups=1), (2, 3, 5, 6)),
    "MaxPool1d": ((3,), dict(stride=2, padding=1), (2, 3, 9)),
    "MaxPool2d": ((3,), dict(stride=2, ceil_mode=True), (2, 3, 9, 8)),
    "AvgPool1d": ((2,), dict(), (2, 3, 9)),
    "AvgPool2d": ((3,), dict(stride=2, padding=1, count_include_pad=False), (2, 3, 9, 8)),
    "LPPool1d": ((2, 3), dict(stride=2), (2, 3, 9)),
    "LPPool2d": ((2, 2), dict(), (2, 3, 8, 8)),
    "AdaptiveAvgPool1d": ((4,), dict(), (2, 3, 9)),
    "AdaptiveAvgPool2d": (((3, 2),), dict(), (2, 3, 9, 8)),
    "AdaptiveMaxPool1d": ((4,), dict(), (2, 3, 9)),
    "AdaptiveMaxPool2d": ((3,), dict(), (2, 3, 9, 8)),
}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 8, 3, groups=2, bias=False))
        self.head = torch.nn.Conv1d(8, 5, 1)

    def forward(self, x):
        y = self.body(x)
        return self.head(y.flatten(2))


def _net():
    torch.manual_seed(0)
    return Net()


def test_swaps_and_shares_parameters():
    model = _net()
    old = [model.body[0], model.body[2], model.head]
    params = [(m.weight, m.bias) for m in old]
    x = torch.randn(2, 3, 10, 10)
    want = model(x)
    out, report = fastconv.convert(model)
    assert out is model
    new = [model.body[0], model.body[2], model.head]
    assert [type(m) for m in new] == [fastconv.nn.Conv2d, fastconv.nn.Conv2d, fastconv.nn.Conv1d]
    for m, o, (w, b) in zip(new, old, params):
        assert m is not o
        assert m.weight is w and m.bias is b
        assert m._parameters is o._parameters
    assert isinstance(report, ConvertReport)
    assert sorted(report.swapped) == [("body.0", "Conv2d"), ("body.2", "Conv2d"), ("head", "Conv1d")]
    assert report.left == []
    torch.testing.assert_close(model(x), want)


def test_optimizer_state_stays_valid():
    model = _net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(2, 3, 10, 10)
    model(x).square().mean().backward()
    opt.step()
    ref, ref_opt = copy.deepcopy((model, opt))  # an unconverted twin with its own optimizer state
    fastconv.convert(model)
    for m, o in ((model, opt), (ref, ref_opt)):
        o.zero_grad()
        m(x).square().mean().backward()
        o.step()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)


def test_keeps_mode_hooks_dtype_and_is_idempotent():
    model = _net().double().eval()
    calls = []
    handle = model.body[0].register_forward_hook(lambda m, i, o: calls.append(type(m)))
    model, first = fastconv.convert(model)
    assert not model.training and not model.body[0].training
    assert model.body[0].weight.dtype == torch.float64
    model(torch.randn(1, 3, 6, 6, dtype=torch.float64))
    assert calls == [fastconv.nn.Conv2d]
    handle.remove()
    model(torch.randn(1, 3, 6, 6, dtype=torch.float64))
    assert len(calls) == 1
    before = list(model.modules())
    model, second = fastconv.convert(model)
    assert second.swapped == [] and second.left == []
    assert list(model.modules()) == before


def test_top_level_conv_and_shared_modules():
    conv = torch.nn.Conv2d(2, 3, 3)
    new, report = fastconv.convert(conv)
    assert type(new) is fastconv.nn.Conv2d and new.weight is conv.weight
    assert report.swapped == [("", "Conv2d")]
    shared = torch.nn.Conv2d(3, 3, 1)
    seq = torch.nn.Sequential(shared, torch.nn.ReLU(), shared)
    fastconv.convert(seq)
    assert seq[0] is seq[2] and type(seq[0]) is fastconv.nn.Conv2d


def test_not_inplace_leaves_original():
    model = _net()
    out, _ = fastconv.convert(model, inplace=False)
    assert type(model.body[0]) is torch.nn.Conv2d
    assert type(out.body[0]) is fastconv.nn.Conv2d
    assert out.body[0].weight is not model.body[0].weight
    torch.testing.assert_close(out.body[0].weight, model.body[0].weight)


def test_state_dict_pickle_deepcopy():
    model = _net()
    conv, _ = fastconv.convert(copy.deepcopy(model))
    assert conv.state_dict().keys() == model.state_dict().keys()
    fresh = Net()
    fresh.load_state_dict(conv.state_dict())  # fastconv -> torch
    fresh2, _ = fastconv.convert(Net())
    fresh2.load_state_dict(model.state_dict())  # torch -> fastconv
    x = torch.randn(2, 3, 10, 10)
    want = model(x)
    for m in (fresh, fresh2, copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
        torch.testing.assert_close(m(x), want)
    buf = io.BytesIO()
    torch.save(conv, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    assert type(loaded.body[0]) is fastconv.nn.Conv2d
    torch.testing.assert_close(loaded(x), want)


class MyConv(torch.nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


def test_left_modules_are_reported_and_strict_raises(caplog):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3).half(), MyConv(2, 2, 1), torch.nn.Conv2d(2, 2, 1))
    with caplog.at_level(logging.INFO, logger="fastconv.convert"):
        _, report = fastconv.convert(model)
    assert report.swapped == [("2", "Conv2d")]
    reasons = dict((n, r) for n, _, r in report.left)
    assert "torch.float16" in reasons["0"] and "MyConv" in reasons["1"]
    assert type(model[0]) is torch.nn.Conv2d and type(model[1]) is MyConv
    assert "1 module(s) swapped, 2 left" in caplog.text
    assert "float16" in str(report)
    with pytest.raises(ConvertError, match="MyConv"):
        fastconv.convert(model, strict=True)


def test_pooling_in_an_unsupported_dtype_model_is_left_and_model_still_runs():
    """Pooling layers have no parameters of their own: their inputs have the model's dtype, so in a
    bfloat16 model they stay torch's (a swapped one would raise on its first bfloat16 input)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2),
                                torch.nn.AdaptiveAvgPool2d(1)).to(torch.bfloat16)
    x = torch.randn(2, 3, 10, 10, dtype=torch.bfloat16)
    ref = model(x)
    _, report = fastconv.convert(model)
    assert report.swapped == []
    reasons = dict((n, r) for n, _, r in report.left)
    assert set(reasons) == {"0", "1", "2"}
    assert "layer without parameters" in reasons["1"] and "torch.bfloat16" in reasons["1"]
    assert torch.equal(model(x), ref)
    # a float32 model with the same layers converts all of them
    _, report = fastconv.convert(model.float())
    assert [n for n, _ in report.swapped] == ["0", "1", "2"]


def test_missing_fastconv_class_is_reported(monkeypatch):
    monkeypatch.delattr(fastconv.nn, "Conv1d")
    model = _net()
    _, report = fastconv.convert(model)
    assert report.left == [("head", "Conv1d", "this fastconv build has no fastconv.nn.Conv1d")]
    assert type(model.head) is torch.nn.Conv1d


def test_rejects_non_module():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fastconv.convert(torch.randn(3))


@pytest.mark.parametrize("name", CONVERTIBLE)
def test_every_convertible_class(name):
    """Final state: each class is swapped and the swapped module computes what torch's does (classes not yet
    in fastconv.nn, from branches merged later, are skipped)."""
    if not hasattr(fastconv.nn, name):
        pytest.skip(f"fastconv.nn.{name} not merged yet")
    torch.manual_seed(0)
    if name.startswith("MaxUnpool"):
        d = int(name[-2])
        pool = getattr(torch.nn, f"MaxPool{d}d")(2, return_indices=True)
        m = getattr(torch.nn, name)(2)
        y, idx = pool(torch.randn((2, 3) + (8,) * d))
        args = (y, idx)
    else:
        a, kw, shape = SAMPLES[name]
        m = getattr(torch.nn, name)(*a, **kw)
        args = (torch.randn(shape),)
    want = m(*args)
    new, report = fastconv.convert(m)
    assert type(new) is getattr(fastconv.nn, name)
    assert report.swapped == [("", name)]
    assert list(new.parameters()) == list(m.parameters())
    assert all(p is q for p, q in zip(new.parameters(), m.parameters()))
    torch.testing.assert_close(new(*args), want)


# constructor args of each class fastconv has no kernels for
NO_KERNEL_SAMPLES = {
    "Conv3d": (2, 3, 2), "ConvTranspose3d": (2, 3, 2), "MaxPool3d": (2,), "AvgPool3d": (2,), "LPPool3d": (2, 2),
    "AdaptiveAvgPool3d": (1,), "AdaptiveMaxPool3d": (1,), "MaxUnpool3d": (2,),
    "FractionalMaxPool2d": (2, 3), "FractionalMaxPool3d": (2, 3),
}


def test_no_kernel_modules_are_left_once_and_strict_raises(caplog):
    """Convolution / pooling classes fastconv has no kernels for (and their lazy versions) stay torch's and are
    listed in the report, each once: convert logs one INFO record (its report), no warning per layer."""
    assert set(NO_KERNEL_SAMPLES) == set(NO_KERNEL)
    layers = {name: getattr(torch.nn, name)(*args) for name, args in NO_KERNEL_SAMPLES.items()}
    layers["lazy"] = torch.nn.LazyConv3d(4, 3)
    layers["conv"] = torch.nn.Conv2d(2, 2, 1)
    model = torch.nn.ModuleDict(layers)
    before = dict(model.items())
    with caplog.at_level(logging.DEBUG, logger="fastconv.convert"):
        _, report = fastconv.convert(model)
    assert report.swapped == [("conv", "Conv2d")]
    assert [(n, c) for n, c, _ in report.left] == [(n, n) for n in NO_KERNEL] + [("lazy", "LazyConv3d")]
    reasons = dict((n, r) for n, _, r in report.left)
    assert reasons["Conv3d"] == "fastconv has no kernels for torch.nn.Conv3d: it stays on torch"
    assert reasons["lazy"] == "fastconv has no kernels for torch.nn.Conv3d: it stays on torch"
    assert all(model[n] is before[n] for n in reasons)
    records = [r for r in caplog.records if r.name == "fastconv.convert"]
    assert [r.levelno for r in records] == [logging.INFO]
    for name in reasons:
        assert caplog.text.count(f"left    {name} (") == 1
        assert str(report).count(f"left    {name} (") == 1
    with pytest.raises(ConvertError, match="FractionalMaxPool3d"):
        fastconv.convert(model, strict=True)


@pytest.mark.parametrize("name", NO_KERNEL)
def test_each_no_kernel_class_is_left_alone(name):
    m = getattr(torch.nn, name)(*NO_KERNEL_SAMPLES[name])
    new, report = fastconv.convert(m)
    assert new is m and report.swapped == [] and [c for _, c, _ in report.left] == [name]
