"""Tests of the direct forward kernel for few input channels (csrc/cpu/conv/conv_direct_small.cpp; taken when
C/groups * R * S is small, K/groups <= 64 and most vector lanes of an output row do real work, see
use_direct_small), of its weight gradient (conv_direct_small_weight.cpp: kernel width 3, 5 or 7,
C/groups * R * S <= 64, K/groups <= 32, output channels not in whole vectors of 16 (those take
conv_few_channel_weight.cpp: mnist_same, kvec_groups_pad, lenet_c3, stem_7x7_s2); most other cases take it), of the
input gradient computed by that forward kernel (conv_direct_small_input.cpp: stride 1, zero padding; e.g.
lenet_c3, k_tail, groups, dilated_stride1, kvec_groups_pad) and of
the whole-input-kernel GEMMs (LeNet-5's C5: one GEMM over the batch per pass, conv_whole_input.cpp). Every case
is compared with torch for the output and the input / weight / bias gradients, in NCHW, channels_last and
non-contiguous layouts, float32 and float64, with 1 thread and with 2 threads forced (threshold 0)."""
import pytest
import torch
import torch.nn.functional as F

import fastconv  # noqa: F401  (registers torch.ops.fastconv)
from fastconv import _C

ops = torch.ops.fastconv
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    old_min_work = _C.set_min_parallel_work(0)
    if request.param == 1:
        _C.set_min_parallel_work(old_min_work)
    yield request.param
    _C.set_min_parallel_work(old_min_work)
    torch.set_num_threads(old)


def assert_close(actual, expected, dtype, what):
    scale = expected.abs().max().clamp_min(1e-30)
    err = ((actual - expected).abs().max() / scale).item()
    assert err <= TOL[dtype], f"{what}: relative error {err:.3g}"


def reference(x, w, b, stride, pads, dilation, groups, mode):
    t, bo, l, r = pads
    xp = F.pad(x, (l, r, t, bo)) if mode == "zeros" else F.pad(x, (l, r, t, bo), mode=mode)
    return F.conv2d(xp, w, b, stride, 0, dilation, groups)


def make_input(shape, dtype, layout):
    n, c, h, w = shape
    if layout == "noncontig":  # every other column of a wider tensor
        return torch.randn(n, c, h, 2 * w, dtype=dtype)[..., ::2]
    x = torch.randn(n, c, h, w, dtype=dtype)
    return x.to(memory_format=torch.channels_last) if layout == "nhwc" else x


def run_case(shape, kshape, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, mode="zeros",
             layout="nchw", dtype=torch.float32, bias=True):
    k, r, s = kshape
    x = make_input(shape, dtype, layout)
    w = torch.randn(k, shape[1] // groups, r, s, dtype=dtype)
    b = torch.randn(k, dtype=dtype) if bias else None
    leaves = [x.requires_grad_(), w.requires_grad_()] + ([b.requires_grad_()] if bias else [])
    y = ops.conv2d(x, w, b, list(stride), list(pads), list(dilation), groups, mode)
    y_ref = reference(x, w, b, stride, pads, dilation, groups, mode)
    assert y.shape == y_ref.shape
    if layout == "nhwc" and shape[1] > 1:
        assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, y_ref, dtype, "output")
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, leaves, g)
    grads_ref = torch.autograd.grad(y_ref, leaves, g)
    for name, a, e in zip(("grad_input", "grad_weight", "grad_bias"), grads, grads_ref):
        assert_close(a, e, dtype, name)


# (shape, kernel (K, R, S), stride, pads, dilation, groups): all take the direct kernel in NCHW. In channels_last
# the channels_last direct convolution (conv_implicit_nhwc.cpp) takes every kernel larger than 1x1, and the direct
# kernel keeps the pointwise ones of fewer than 8 channels (pointwise_*).
DIRECT_CASES = {
    "lenet_c1": ((3, 1, 32, 32), (6, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # two vectors per row
    "lenet_c3": ((2, 6, 14, 14), (16, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # one vector, two K blocks
    "mnist_same": ((2, 1, 28, 28), (16, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
    "stem_7x7_s2": ((1, 3, 36, 38), (64, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),  # column phases
    "k_tail": ((2, 2, 9, 21), (7, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # K not a block multiple
    "wide_rows": ((1, 2, 6, 70), (10, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # several column blocks
    "dilated_stride3": ((2, 2, 20, 50), (9, 3, 3), (1, 3), (2, 0, 1, 3), (2, 2), 1),
    "asym_even_kernel": ((3, 3, 11, 17), (5, 4, 2), (2, 1), (1, 2, 0, 1), (1, 1), 1),
    "groups": ((2, 6, 10, 16), (12, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),
    "single_row_output": ((2, 2, 3, 33), (4, 3, 3), (1, 1), (0, 0, 1, 1), (1, 1), 1),
    "7x7_one_channel_s2": ((2, 1, 20, 45), (8, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),  # 7 tap columns
    "dilated_stride1": ((2, 3, 12, 30), (8, 3, 3), (1, 1), (1, 2, 2, 1), (2, 2), 1),
    # vectors over output channels (narrow rows, longer C*R*S; lenet_c3 in NCHW and pointwise_kvec in channels_last
    # also take it)
    "kvec_k_tail": ((2, 4, 12, 12), (24, 5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # 24 of 32 channels
    "kvec_groups_pad": ((3, 8, 11, 12), (32, 5, 5), (1, 1), (1, 0, 0, 1), (1, 1), 2),
    "pointwise_columns": ((2, 3, 9, 20), (8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # columns of 8 channels
    "pointwise_kvec": ((2, 3, 9, 20), (16, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # a vector of 16 channels
}


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "noncontig"])
@pytest.mark.parametrize("case", list(DIRECT_CASES))
def test_direct_small(case, layout, threads):
    shape, kshape, stride, pads, dil, groups = DIRECT_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, layout=layout)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("case", ["lenet_c1", "lenet_c3", "stem_7x7_s2", "dilated_stride3", "groups", "k_tail",
                                  "7x7_one_channel_s2", "kvec_k_tail", "kvec_groups_pad"])
def test_direct_small_float64(case, layout, threads):
    shape, kshape, stride, pads, dil, groups = DIRECT_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, layout=layout, dtype=torch.float64)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_direct_small_padding_modes(mode, layout, threads):
    run_case((2, 3, 9, 18), (6, 3, 3), (1, 2), (2, 1, 1, 2), (1, 2), 1, mode, layout)
    run_case((1, 2, 8, 20), (5, 3, 3), (1, 1), (1, 1, 2, 2), (1, 1), 1, mode, layout, torch.float64)


def test_direct_small_no_bias_and_empty_batch(threads):
    run_case((2, 1, 12, 17), (6, 5, 5), bias=False)
    x = torch.randn(0, 1, 12, 17)
    w = torch.randn(6, 1, 5, 5)
    assert ops.conv2d(x, w, None, [1, 1], [0, 0, 0, 0], [1, 1], 1, "zeros").shape == (0, 6, 8, 13)


def test_direct_small_module_matches_torch():
    """LeNet-5's first two layers as modules, batch 1 inference."""
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5), torch.nn.Tanh(), torch.nn.Conv2d(6, 16, 5))
    fc = torch.nn.Sequential(fastconv.nn.Conv2d(1, 6, 5), torch.nn.Tanh(), fastconv.nn.Conv2d(6, 16, 5))
    fc.load_state_dict(ref.state_dict())
    x = torch.randn(1, 1, 32, 32)
    assert_close(fc(x), ref(x), torch.float32, "output")


# The kernel covers the whole unpadded input: one GEMM over the batch (any stride gives a 1x1 output).
WHOLE_CASES = {
    "lenet_c5": ((5, 16, 5, 5), (120, 5, 5), (1, 1)),
    "strided": ((3, 4, 6, 7), (9, 6, 7), (2, 3)),
    "batch1": ((1, 8, 3, 3), (10, 3, 3), (1, 1)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["nchw", "nhwc", "noncontig"])
@pytest.mark.parametrize("case", list(WHOLE_CASES))
def test_whole_input_kernel(case, layout, dtype, threads):
    shape, kshape, stride = WHOLE_CASES[case]
    run_case(shape, kshape, stride, layout=layout, dtype=dtype)
