"""The functional convolutions and the conv modules call the op directly for the common call
(fastconv/nn/_fast_call.py) and run the full argument checks for anything else. The common call must give
torch's result without the full path; every other call, and every call the op refuses, must take the full path
and raise fastconv's message for it."""
import pytest
import torch
import torch.nn.functional as F

import fastconv
import fastconv.nn._functional_conv as functional_conv
import fastconv.nn._functional_conv_transpose as functional_conv_transpose
import fastconv.nn.functional as FF
import fastconv.nn.modules.conv as module_conv
import fastconv.nn.modules.conv_transpose as module_conv_transpose
from conftest import assert_close_scaled, randn


class FullPathTaken(Exception):
    pass


@pytest.fixture
def no_full_path(monkeypatch):
    """Makes the full (checking) paths raise, so a call that reaches them fails the test."""
    def refuse(*args, **kwargs):
        raise FullPathTaken

    for mod in (functional_conv, module_conv):
        monkeypatch.setattr(mod, "conv_nd", refuse)
    for mod in (functional_conv_transpose, module_conv_transpose):
        monkeypatch.setattr(mod, "conv_transpose_nd", refuse)


@pytest.fixture
def full_path_calls(monkeypatch):
    """Counts the calls that reach the full paths (which still run)."""
    calls = []
    for mod, name in ((functional_conv, "conv_nd"), (module_conv, "conv_nd"),
                      (functional_conv_transpose, "conv_transpose_nd"),
                      (module_conv_transpose, "conv_transpose_nd")):
        original = getattr(mod, name)

        def counted(*args, _original=original, **kwargs):
            calls.append(1)
            return _original(*args, **kwargs)
        monkeypatch.setattr(mod, name, counted)
    return calls


COMMON_2D = [dict(), dict(stride=2, padding=1), dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
             dict(padding=[1, 1], groups=2), dict(stride=[2, 2], dilation=2, groups=4)]


@pytest.mark.parametrize("kw", COMMON_2D)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_common_conv2d_skips_the_full_path(no_full_path, kw, dtype, channels_last):
    groups = kw.get("groups", 1)
    x, w, b = randn(3, 4, 9, 8, dtype=dtype), randn(8, 4 // groups, 3, 3, dtype=dtype), randn(8, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert_close_scaled(FF.conv2d(x, w, b, **kw), F.conv2d(x, w, b, **kw))
    assert_close_scaled(FF.conv2d(x, w, None, **kw), F.conv2d(x, w, None, **kw))


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1), dict(stride=(3,), padding=[2], dilation=(2,)),
                                dict(groups=2, dilation=3)])
def test_common_conv1d_skips_the_full_path(no_full_path, kw):
    x, w, b = randn(3, 4, 17), randn(6, 4 // kw.get("groups", 1), 3), randn(6)
    y = FF.conv1d(x, w, b, **kw)
    assert y.is_contiguous()
    assert_close_scaled(y, F.conv1d(x, w, b, **kw))
    # a channel-minor (N, L, C) tensor seen as (N, C, L): torch's result is contiguous
    xt = randn(3, 17, 4).transpose(1, 2)
    y = FF.conv1d(xt, w, b, **kw)
    assert y.is_contiguous() and y.stride() == F.conv1d(xt, w, b, **kw).stride()
    assert_close_scaled(y, F.conv1d(xt, w, b, **kw))


@pytest.mark.parametrize("dilation", [1, 4, (3,)])
def test_causal_conv1d_skips_the_full_path(no_full_path, dilation):
    x, w, b = randn(2, 4, 19), randn(6, 4, 3), randn(6)
    d = dilation if isinstance(dilation, int) else dilation[0]
    ref = F.conv1d(F.pad(x, (2 * d, 0)), w, b, dilation=dilation)
    assert_close_scaled(FF.conv1d(x, w, b, padding="causal", dilation=dilation), ref)
    m = fastconv.nn.Conv1d(4, 6, 3, padding="causal", dilation=dilation)
    with torch.no_grad():
        m.weight.copy_(w)
        m.bias.copy_(b)
    with pytest.raises(FullPathTaken):  # the module applies causal padding through its pads: the full path
        m(x)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1), dict(stride=(2, 1),
                                padding=(0, 1), dilation=(1, 2), groups=2)])
def test_common_conv_transpose2d_skips_the_full_path(no_full_path, kw):
    x, w, b = randn(2, 4, 5, 6), randn(4, 3, 3, 3), randn(3 * kw.get("groups", 1))
    assert_close_scaled(FF.conv_transpose2d(x, w, b, **kw), F.conv_transpose2d(x, w, b, **kw))


def test_common_module_calls_skip_the_full_path(no_full_path):
    x2, x1 = randn(2, 4, 7, 7), randn(2, 4, 11)
    for fc, tm, x in ((fastconv.nn.Conv2d(4, 6, 3, padding=1, stride=2), torch.nn.Conv2d, x2),
                      (fastconv.nn.Conv1d(4, 6, 3, padding=1, dilation=2), torch.nn.Conv1d, x1),
                      (fastconv.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
                       torch.nn.ConvTranspose2d, x2)):
        ref = tm(4, 6, 3, stride=fc.stride, padding=fc.padding, dilation=fc.dilation,
                 **({"output_padding": fc.output_padding} if tm is torch.nn.ConvTranspose2d else {}))
        ref.load_state_dict(fc.state_dict())
        assert_close_scaled(fc(x), ref(x))
        x.requires_grad_(True)
        gx, gw = torch.autograd.grad(fc(x).square().sum(), (x, fc.weight))
        rx, rw = torch.autograd.grad(ref(x).square().sum(), (x, ref.weight))
        assert_close_scaled(gx, rx)
        assert_close_scaled(gw, rw)
        x.requires_grad_(False)


UNUSUAL_2D = [
    ("bool stride", lambda x, w, b: FF.conv2d(x, w, b, stride=True)),
    ("string padding", lambda x, w, b: FF.conv2d(x, w, b, padding="same")),
    ("3-tuple stride", lambda x, w, b: FF.conv2d(x, w, b, stride=(1, 1, 1))),
    ("unbatched input", lambda x, w, b: FF.conv2d(x[0], w, b)),
    ("empty batch", lambda x, w, b: FF.conv2d(x[:0], w, b)),
    ("float64 bias", lambda x, w, b: FF.conv2d(x, w, b.double(), padding="same")),
    ("negative padding", lambda x, w, b: FF.conv2d(x, w, b, padding=-1)),
    ("zero stride", lambda x, w, b: FF.conv2d(x, w, b, stride=0)),
    ("bad groups", lambda x, w, b: FF.conv2d(x, w, b, groups=3)),
    ("kernel larger than input", lambda x, w, b: FF.conv2d(x[..., :2, :2], w, b)),
]


@pytest.mark.parametrize("name,call", UNUSUAL_2D, ids=[n for n, _ in UNUSUAL_2D])
def test_unusual_calls_take_the_full_path(full_path_calls, name, call):
    x, w, b = randn(2, 4, 6, 6), randn(5, 4, 3, 3), randn(5)
    try:
        call(x, w, b)
    except (TypeError, ValueError, RuntimeError) as e:
        assert "fastconv.conv2d" in str(e), f"{name}: {e}"
    assert full_path_calls, f"{name} did not reach the full path"


@pytest.mark.parametrize("call,pattern", [
    (lambda: FF.conv2d(randn(2, 4, 6, 6), randn(5, 4, 3, 3), padding=-1), r"fastconv.conv2d: padding"),
    (lambda: FF.conv1d(randn(2, 4, 6), randn(5, 4, 3), stride=0), r"fastconv.conv1d: stride"),
    (lambda: FF.conv_transpose2d(randn(2, 4, 6, 6), randn(4, 5, 3, 3), stride=2, output_padding=2),
     r"fastconv.conv_transpose2d: output_padding"),
    (lambda: FF.conv2d(randn(2, 4, 6, 6), randn(5, 3, 3, 3)), r"fastconv.conv2d: input has 4 channels"),
])
def test_refused_common_calls_raise_fastconv_messages(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
