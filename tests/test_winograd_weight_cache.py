"""The cache of Winograd-transformed weights (csrc/bindings/winograd_weight_cache.cpp): inference reuses a
layer's transformed weight while the weight tensor is unchanged, and never serves a stale one."""
import pytest
import torch

import fastconv
import fastconv.nn.functional as FF

_C = fastconv._C


_baseline = {}


@pytest.fixture(autouse=True)
def fresh_cache():
    old_rule = _C.set_winograd_size_rule(False)  # small shapes take the Winograd path
    _C.clear_winograd_weight_cache()
    _baseline.update(_C.winograd_weight_cache_stats())
    yield
    _C.clear_winograd_weight_cache()
    _C.set_winograd_size_rule(old_rule)


def _stats():
    """Entries and bytes now; hits and misses since the test began (the extension counts from import)."""
    s = _C.winograd_weight_cache_stats()
    return {**s, "hits": s["hits"] - _baseline["hits"], "misses": s["misses"] - _baseline["misses"]}


def _uncached(x, w, **kw):
    """The output without the cache (turning it off empties it)."""
    with fastconv.backends.cpu.flags(winograd_weight_cache_mb=0):
        with torch.no_grad():
            return FF.conv2d(x, w, **kw)


def _data(c=24, k=32, seed=0):
    """Enough tiles (480) that the forward transforms its weight ahead of its GEMMs, the case the cache serves."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, c, 64, 60, generator=g), torch.randn(k, c, 3, 3, generator=g, requires_grad=True)


def test_few_tiles_keep_nothing():
    """With few tiles the forward transforms the weight inside its GEMM loop, faster than reading a kept one (its
    threads each take 32 output channels: at least one such panel per thread)."""
    _, w = _data(k=32 * torch.get_num_threads())
    x = torch.randn(2, 24, 10, 9)  # 18 tiles
    with torch.no_grad():
        y = FF.conv2d(x, w, padding=1)
    assert _stats()["entries"] == 0 and _stats()["misses"] == 0
    assert torch.equal(y, _uncached(x, w, padding=1))


def test_a_problem_too_small_to_share_is_planned_on_one_thread():
    """A forward too small to split between threads runs on one, where a single 32-channel panel transforms its
    weight inside the GEMM loop: the cache plans it with that thread count too and keeps nothing (it planned with
    the threads asked for, two panels' worth, and kept a weight the forward never read)."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _, w = _data(c=16, k=32)
        x = torch.randn(1, 16, 4, 4)  # 1 tile, 74K multiply-adds: below the threshold for two threads
        with torch.no_grad():
            y = FF.conv2d(x, w, padding=1)
    finally:
        torch.set_num_threads(old)
    assert _stats()["entries"] == 0 and _stats()["misses"] == 0
    assert torch.equal(y, _uncached(x, w, padding=1))


def test_inference_reuses_the_transformed_weight():
    x, w = _data()
    with torch.no_grad():
        y1 = FF.conv2d(x, w, padding=1)
        y2 = FF.conv2d(x * 2, w, padding=1)
    s = _stats()
    assert (s["entries"], s["misses"], s["hits"]) == (1, 1, 1)
    assert torch.equal(y1, _uncached(x, w, padding=1))  # the same transform: bitwise the same output
    assert torch.equal(y2, _uncached(x * 2, w, padding=1))


def test_an_in_place_change_is_seen():
    x, w = _data()
    with torch.no_grad():
        FF.conv2d(x, w, padding=1)
        w.mul_(-0.5)
        y = FF.conv2d(x, w, padding=1)
    assert _stats()["entries"] == 1 and _stats()["misses"] == 2  # the stale entry was replaced
    assert torch.equal(y, _uncached(x, w, padding=1))


def test_a_change_through_another_view_is_seen():
    x, _ = _data()
    base = torch.randn(64, 24, 3, 3)
    w = base[:32]
    with torch.no_grad():
        FF.conv2d(x, w, padding=1)
        base[:32] += 1.0  # views share the version counter
        y = FF.conv2d(x, w, padding=1)
    assert torch.equal(y, _uncached(x, w, padding=1))


def test_data_swap_and_set_are_seen():
    x, w = _data()
    with torch.no_grad():
        FF.conv2d(x, w, padding=1)
        w.data = torch.randn(32, 24, 3, 3)
        y1 = FF.conv2d(x, w, padding=1)
        w.set_(torch.randn(32, 24, 3, 3))
        y2 = FF.conv2d(x, w, padding=1)
    assert torch.equal(y2, _uncached(x, w, padding=1))
    w.data = w.data.clone()
    assert not torch.equal(y1, y2)


def test_training_keeps_nothing_but_frozen_weights_are_cached():
    x, w = _data()
    FF.conv2d(x, w, padding=1).sum().backward()  # grad mode on, weight requires grad
    assert _stats()["entries"] == 0 and _stats()["misses"] == 0
    frozen = w.detach().clone()  # a frozen layer (fine-tuning the rest of a model)
    FF.conv2d(x.requires_grad_(), frozen, padding=1).sum().backward()
    assert _stats()["entries"] == 1


def test_inference_mode():
    x, w = _data()
    with torch.inference_mode():
        FF.conv2d(x, w, padding=1)  # a normal weight: cached
        assert _stats()["entries"] == 1
        w_inf = torch.randn(32, 24, 3, 3)  # an inference tensor has no version counter: never cached
        y = FF.conv2d(x, w_inf, padding=1)
        assert _stats()["entries"] == 1
        w_inf.add_(1.0)
        assert torch.equal(FF.conv2d(x, w_inf, padding=1), _uncached(x, w_inf, padding=1))
        assert not torch.equal(y, FF.conv2d(x, w_inf, padding=1))


def test_freed_weights_leave_the_cache():
    x, w = _data()
    with torch.no_grad():
        FF.conv2d(x, w, padding=1)
    assert _stats()["entries"] == 1
    del w
    assert _stats()["entries"] == 0 and _stats()["bytes"] == 0


def test_budget():
    x, w = _data(c=64, k=64)
    entry = 36 * (64 * 64 + 16) * 4  # 36 points of C x K values, each one cache line apart
    with fastconv.backends.cpu.flags(winograd_weight_cache_mb=0):
        with torch.no_grad():
            FF.conv2d(x, w, padding=1)
        assert _stats()["entries"] == 0
    assert fastconv.backends.cpu.winograd_weight_cache_mb == 512
    with fastconv.backends.cpu.flags(winograd_weight_cache_mb=1):  # 1 MiB: three entries of 576 KiB do not fit
        weights = [torch.randn(64, 64, 3, 3) for _ in range(3)]
        with torch.no_grad():
            for wi in weights:
                FF.conv2d(x, wi, padding=1)
        assert _stats()["entries"] == 1 and _stats()["bytes"] == entry  # least recently used dropped
    with pytest.raises(TypeError, match="winograd_weight_cache_mb must be an int"):
        fastconv.backends.cpu.winograd_weight_cache_mb = 1.5
    with pytest.raises(RuntimeError, match="must be >= 0"):
        fastconv.backends.cpu.winograd_weight_cache_mb = -1
    assert "winograd_weight_cache_mb=512" in repr(fastconv.backends.cpu)


def test_channels_last_weight_and_switch_off():
    x, w = _data()
    wcl = w.detach().contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        y = FF.conv2d(x, wcl, padding=1)
        assert torch.equal(FF.conv2d(x, wcl, padding=1), y)
        assert _stats()["hits"] == 1  # keyed by the channels_last tensor, transformed from its dense copy
        with fastconv.backends.cpu.flags(allow_winograd=False):
            FF.conv2d(x, w, padding=1)
    assert _stats()["entries"] == 1  # the exact path keeps nothing


def test_module_in_eval_after_an_optimizer_step():
    torch.manual_seed(0)
    conv = fastconv.nn.Conv2d(24, 32, 3, padding=1)
    x = torch.randn(2, 24, 64, 60)
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    for _ in range(2):
        conv.eval()
        with torch.no_grad():
            y = conv(x)
        assert torch.equal(y, _uncached(x, conv.weight, bias=conv.bias, padding=1))
        conv.train()
        conv(x).square().sum().backward()
        opt.step()
        opt.zero_grad()
    assert _stats()["misses"] == 2
