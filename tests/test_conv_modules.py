"""fastconv.nn.Conv1d / Conv2d are drop-ins for torch.nn's: same constructor, init, repr, state_dict,
outputs; Conv1d also takes padding='causal'. Their forward must not fall back to torch's convolution."""
import copy
import inspect
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F

import fastconv
from conftest import assert_close_scaled, randn

PAIRS = [(fastconv.nn.Conv1d, torch.nn.Conv1d, 1), (fastconv.nn.Conv2d, torch.nn.Conv2d, 2)]
PAIR_IDS = ["Conv1d", "Conv2d"]


def _sig(cls):
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls.__init__).parameters.values()]


@pytest.mark.parametrize("fc_cls,t_cls,spatial", PAIRS, ids=PAIR_IDS)
def test_constructor_signature_matches_torch(fc_cls, t_cls, spatial):
    assert _sig(fc_cls) == _sig(t_cls)


@pytest.mark.parametrize("fc_cls,t_cls,spatial", PAIRS, ids=PAIR_IDS)
def test_is_a_torch_module_with_same_init(fc_cls, t_cls, spatial):
    kw = dict(stride=2, padding=1, dilation=1, groups=2, bias=True, padding_mode="zeros")
    torch.manual_seed(7)
    fc = fc_cls(4, 6, 3, **kw)
    torch.manual_seed(7)
    tm = t_cls(4, 6, 3, **kw)
    assert isinstance(fc, t_cls) and isinstance(fc, torch.nn.Module)
    assert repr(fc) == repr(tm)
    assert list(fc.state_dict()) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        assert torch.equal(fc.state_dict()[k], v), f"{k} initialised differently from torch"
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "padding_mode", "transposed", "output_padding"):
        assert getattr(fc, attr) == getattr(tm, attr), attr


@pytest.mark.parametrize("fc_cls,t_cls,spatial", PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("kw", [
    dict(),
    dict(bias=False),
    dict(stride=2, padding=2, dilation=2),
    dict(padding="same", groups=4),
    dict(padding="valid", stride=3),
    dict(padding=1, padding_mode="reflect"),
    dict(padding=2, padding_mode="replicate", groups=2),
    dict(padding="same", padding_mode="circular"),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_load_state_dict_from_torch_gives_same_outputs(fc_cls, t_cls, spatial, kw, dtype):
    tm = t_cls(4, 8, 3, dtype=dtype, **kw)
    with torch.no_grad():
        for p in tm.parameters():
            p.normal_()
    fc = fc_cls(4, 8, 3, dtype=dtype, **kw)
    fc.load_state_dict(tm.state_dict())
    x = randn((3, 4) + (9,) * spatial, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tm(x)
    assert_close_scaled(fc(x), ref, dtype, "module output")
    # and the other way round: a torch module loads fastconv's state_dict
    tm2 = t_cls(4, 8, 3, dtype=dtype, **kw)
    tm2.load_state_dict(fc.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_close_scaled(fc(x), tm2(x), dtype, "module output")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", ["same", 0, 1, 2])
@pytest.mark.parametrize("fc_cls,t_cls,spatial", PAIRS, ids=PAIR_IDS)
def test_padding_modes_same_and_int(fc_cls, t_cls, spatial, padding, mode):
    kernel = 4 if padding == "same" else 3  # even kernel: asymmetric 'same'
    tm = t_cls(3, 5, kernel, padding=padding, padding_mode=mode, dtype=torch.float64)
    fc = fc_cls(3, 5, kernel, padding=padding, padding_mode=mode, dtype=torch.float64)
    fc.load_state_dict(tm.state_dict())
    x = randn((2, 3) + (7,) * spatial, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = tm(x)
    out = fc(x)
    assert out.shape == ref.shape
    assert_close_scaled(out, ref, torch.float64, f"padding={padding} mode={mode}")


@pytest.mark.parametrize("kernel,dilation,stride", [(3, 1, 1), (4, 2, 1), (2, 3, 2), (1, 1, 1)])
@pytest.mark.parametrize("mode", ["zeros", "replicate", "circular"])
def test_conv1d_causal_module(kernel, dilation, stride, mode):
    fc = fastconv.nn.Conv1d(3, 4, kernel, stride=stride, padding="causal", dilation=dilation, padding_mode=mode,
                            dtype=torch.float64)
    assert fc.padding == "causal"
    assert "padding=causal" in repr(fc)
    x = randn(2, 3, 10, dtype=torch.float64)
    left = dilation * (kernel - 1)
    torch_mode = "constant" if mode == "zeros" else mode
    ref = F.conv1d(F.pad(x, (left, 0), mode=torch_mode), fc.weight, fc.bias, stride, 0, dilation)
    out = fc(x)
    assert out.shape == ref.shape
    if stride == 1:
        assert out.shape[-1] == x.shape[-1]
    assert_close_scaled(out, ref, torch.float64, "causal conv1d")
    assert_close_scaled(fc(x[0]), ref[0], torch.float64, "causal conv1d, unbatched")


def test_conv1d_causal_state_dict_is_torchs():
    fc = fastconv.nn.Conv1d(3, 4, 3, padding="causal")
    tm = torch.nn.Conv1d(3, 4, 3, padding=0)
    assert list(fc.state_dict()) == list(tm.state_dict())
    tm.load_state_dict(fc.state_dict())


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("fc_cls,t_cls,spatial", PAIRS, ids=PAIR_IDS)
def test_forward_and_backward_never_call_torch_conv_or_pad(fc_cls, t_cls, spatial, mode, monkeypatch):
    """The compute is fastconv's own: torch's conv / pad must not run (forward or backward)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("fastconv called a torch convolution / pad")

    for name in ("conv1d", "conv2d", "pad"):
        monkeypatch.setattr(F, name, forbidden)
    for name in ("conv1d", "conv2d", "convolution", "_convolution", "constant_pad_nd"):
        monkeypatch.setattr(torch, name, forbidden)
    fc = fc_cls(4, 6, 3, padding=1, padding_mode=mode)
    x = randn((2, 4) + (5,) * spatial).requires_grad_()
    fc(x).sum().backward()
    assert x.grad is not None and fc.weight.grad is not None and fc.bias.grad is not None


@pytest.mark.parametrize("fc_cls,t_cls,spatial", PAIRS, ids=PAIR_IDS)
def test_deepcopy_and_pickle(fc_cls, t_cls, spatial):
    fc = fc_cls(2, 3, 3, padding="same", padding_mode="reflect")
    x = randn((1, 2) + (6,) * spatial)
    for clone in (copy.deepcopy(fc), pickle.loads(pickle.dumps(fc))):
        assert type(clone) is fc_cls
        torch.testing.assert_close(clone(x), fc(x))


def test_conv1d_causal_deepcopy():
    fc = fastconv.nn.Conv1d(2, 3, 3, padding="causal", dilation=2)
    x = randn(1, 2, 8)
    torch.testing.assert_close(copy.deepcopy(fc)(x), fc(x))


def test_training_step_matches_torch():
    """A few SGD steps of a small fastconv model track the same torch model."""
    torch.manual_seed(3)
    fc_net = torch.nn.Sequential(fastconv.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                 fastconv.nn.Conv2d(4, 2, 3, stride=2, padding_mode="circular", padding=1))
    t_net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(4, 2, 3, stride=2, padding_mode="circular", padding=1))
    fc_net.double()
    t_net.double()
    t_net.load_state_dict(fc_net.state_dict())
    opts = [torch.optim.SGD(n.parameters(), lr=0.1) for n in (fc_net, t_net)]
    x = randn(4, 2, 8, 8, dtype=torch.float64)
    for _ in range(3):
        for net, opt in zip((fc_net, t_net), opts):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for (k, a), b in zip(fc_net.state_dict().items(), t_net.state_dict().values()):
        assert_close_scaled(a, b, torch.float64, k)


def test_conv2d_fast_path_follows_attribute_changes():
    """Conv2d calls the op directly with argument lists cached from its attributes (fastconv/nn/modules/conv.py):
    replacing stride / padding / dilation / groups after the first call must take effect, like torch's."""
    torch.manual_seed(3)
    tm = torch.nn.Conv2d(4, 6, 3, padding=1)
    fc = fastconv.nn.Conv2d(4, 6, 3, padding=1)
    fc.load_state_dict(tm.state_dict())
    x = randn(2, 4, 9, 8)
    for change in ({}, {"stride": (2, 2)}, {"padding": (0, 2)}, {"dilation": (2, 1)}, {"stride": (1, 3)}):
        for k, v in change.items():
            setattr(tm, k, v), setattr(fc, k, v)
        assert_close_scaled(fc(x), tm(x))
    tm.groups = fc.groups = 2
    tm.weight = fc.weight = torch.nn.Parameter(randn(6, 2, 3, 3))
    assert_close_scaled(fc(x), tm(x))


def test_conv2d_fast_path_errors_are_fastconvs():
    """Inputs the op rejects fall back to the checked functional path: the same error as F.conv2d's."""
    fc = fastconv.nn.Conv2d(4, 6, 3)
    with pytest.raises(fastconv.FastconvError, match="channels"):
        fc(randn(1, 5, 8, 8))
    with pytest.raises(fastconv.FastconvError, match="larger than the padded input"):
        fc(randn(1, 4, 2, 8))
    fc.padding = (-1, 0)
    with pytest.raises(fastconv.FastconvError, match="padding"):
        fc(randn(1, 4, 8, 8))
