"""The threaded code paths of the pooling kernels, on shapes small enough to test quickly.

At the default serial threshold (csrc/common/parallel.h) every shape of the other pooling tests runs on
one thread; here the threshold is 0 and torch uses 2 threads, so the OpenMP work splits (planes, rows,
channel chunks of the NHWC backward) are what produce the numbers compared with torch.
"""
import pytest
import torch
import torch.nn.functional as TF

import fastconv.nn.functional as FF
from fastconv import _C
from conftest import assert_close_scaled
from test_pool_helpers import make_input


@pytest.fixture(autouse=True)
def two_threads_no_threshold():
    old_threads = torch.get_num_threads()
    torch.set_num_threads(2)
    old_work = _C.set_min_parallel_work(0)
    yield
    _C.set_min_parallel_work(old_work)
    torch.set_num_threads(old_threads)


LAYOUTS = ["contiguous", "channels_last"]
DTYPES = [torch.float32, torch.float64]

# (name, fastconv fn, torch fn): window parameters chosen to cover overlap, padding and ceil_mode.
POOLS = [
    ("max_k2s2", lambda f, x: f.max_pool2d(x, 2, 2)),
    ("max_k3s2p1_ceil", lambda f, x: f.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
    ("max_dil2", lambda f, x: f.max_pool2d(x, 3, 1, 1, dilation=2)),
    ("avg_k3s2p1", lambda f, x: f.avg_pool2d(x, 3, 2, 1)),
    ("avg_k3s2p1_excl_ceil", lambda f, x: f.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)),
    ("avg_divisor", lambda f, x: f.avg_pool2d(x, 2, 1, divisor_override=3)),
    ("lp2", lambda f, x: f.lp_pool2d(x, 2, 3, 2)),
    ("adaptive_avg_5x3", lambda f, x: f.adaptive_avg_pool2d(x, (5, 3))),
    ("adaptive_avg_global", lambda f, x: f.adaptive_avg_pool2d(x, 1)),
    ("adaptive_max_5x3", lambda f, x: f.adaptive_max_pool2d(x, (5, 3))),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name,pool", POOLS, ids=[p[0] for p in POOLS])
def test_threaded_pool_forward_backward(name, pool, layout, dtype):
    # 3 images x 5 channels: uneven splits of planes, rows and channels over 2 threads.
    x = make_input((3, 5, 11, 13), layout, dtype=dtype, distinct=True, seed=1)
    if name.startswith("lp"):
        x = x.abs() + 0.1  # lp pooling's gradient is defined away from zero
    xf, xt = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yf, yt = pool(FF, xf), pool(TF, xt)
    assert_close_scaled(yf, yt, what=f"{name} output")
    g = torch.randn_like(yt)
    yf.backward(g)
    yt.backward(g)
    assert_close_scaled(xf.grad, xt.grad, what=f"{name} input gradient")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_threaded_max_pool_indices_and_unpool(layout):
    x = make_input((3, 5, 11, 13), layout, dtype=torch.float32, distinct=True, seed=2)
    yf, indf = FF.max_pool2d(x, 3, 2, 1, return_indices=True)
    yt, indt = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert torch.equal(indf, indt)
    assert_close_scaled(yf, yt, what="max pool output")
    uf = FF.max_unpool2d(yf, indf, 3, 2, 1, output_size=x.shape[-2:])
    ut = TF.max_unpool2d(yt, indt, 3, 2, 1, output_size=x.shape[-2:])
    assert_close_scaled(uf, ut, what="max unpool output")


@pytest.mark.parametrize("channels", [1, 15, 16, 37, 64, 80, 130])
def test_nhwc_float_channel_blocks_match_torch(channels):
    """NHWC float kernels reduce 64 channels per register group plus a masked tail of 1..63: every split of C
    gives torch's values (avg: bit-identical for non-overlapping windows, same summation order) and indices."""
    x = torch.randn(2, channels, 9, 10).contiguous(memory_format=torch.channels_last)
    assert torch.equal(FF.avg_pool2d(x, 2, 2), TF.avg_pool2d(x, 2, 2))
    assert_close_scaled(FF.avg_pool2d(x, 3, 2, 1), TF.avg_pool2d(x, 3, 2, 1))
    y, i = FF.max_pool2d(x, 3, 2, 1, return_indices=True)
    ry, ri = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert torch.equal(y, ry) and torch.equal(i, ri)


def test_nhwc_float_streaming_stores_match_torch():
    """Outputs of at least 4 MiB (csrc/cpu/pool/pool_window.h kStreamStoreMinBytes) take the non-temporal store path."""
    x = torch.randn(1, 64, 256, 256).contiguous(memory_format=torch.channels_last)
    assert torch.equal(FF.avg_pool2d(x, 2, 2), TF.avg_pool2d(x, 2, 2))
    assert_close_scaled(FF.avg_pool2d(x, 3, 2, 1), TF.avg_pool2d(x, 3, 2, 1))
    for args in ((2, 2), (3, 2, 1)):
        y, i = FF.max_pool2d(x, *args, return_indices=True)
        ry, ri = TF.max_pool2d(x, *args, return_indices=True)
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(y, ry) and torch.equal(i, ri)
