"""Targeted tests of the fast CPU convolution paths (csrc/cpu/conv_gemm*, conv_depthwise*, gemm*, im2col*):
each case is chosen to exercise one path (packed GEMM with several cache blocks and bands, 1x1 without
im2col, depthwise with and without channel multiplier, groups, strides, dilation, every padding mode,
NCHW and NHWC, batch 1 and odd batches, 1 and 2 threads) and is compared with torch for the output and
the input / weight / bias gradients. The last tests call the backward ops directly with a grad_output
whose last rows and columns are zero (the ops take exactly the formula's output size; a smaller one is
rejected, test_raw_op_checks.py).
The 2-thread runs lower fastconv's serial-below-this-much-work threshold to 0, so these small shapes take
the threaded code paths; test_small_problems_default_threshold checks the default (serial) dispatch."""
import os
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import fastconv  # noqa: F401  (registers torch.ops.fastconv)
from conftest import subprocess_env
from fastconv import _C, _kernels

ops = torch.ops.fastconv
TOL = {torch.float32: 1e-4, torch.float64: 1e-10}


@pytest.fixture(params=[1, 2], ids=["t1", "t2"])
def threads(request):
    old = torch.get_num_threads()
    torch.set_num_threads(request.param)
    # With 2 threads, thread even these small shapes (threshold 0); 1 thread: leave the default.
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
    """torch: explicit pad (any mode) then an unpadded conv. pads = (top, bottom, left, right)."""
    t, bo, l, r = pads
    if mode == "zeros":
        xp = F.pad(x, (l, r, t, bo))
    else:
        xp = F.pad(x, (l, r, t, bo), mode=mode)
    return F.conv2d(xp, w, b, stride, 0, dilation, groups)


def run_case(shape, kshape, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, mode="zeros",
             channels_last=False, dtype=torch.float32, bias=True, weight_channels_last=False):
    n, c, h, wd = shape
    k, r, s = kshape
    x = torch.randn(n, c, h, wd, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(k, c // groups, r, s, dtype=dtype)
    if weight_channels_last:  # a model moved to channels_last has channels_last weights
        w = w.to(memory_format=torch.channels_last)
        assert not w.is_contiguous() or r * s == 1 or c // groups == 1  # those are both at once
    b = torch.randn(k, dtype=dtype) if bias else None
    leaves = [x.requires_grad_(), w.requires_grad_()] + ([b.requires_grad_()] if bias else [])
    y = ops.conv2d(x, w, b, list(stride), list(pads), list(dilation), groups, mode)
    y_ref = reference(x, w, b, stride, pads, dilation, groups, mode)
    assert y.shape == y_ref.shape
    if channels_last:
        assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, y_ref, dtype, "output")
    g = torch.randn_like(y_ref)
    grads = torch.autograd.grad(y, leaves, g)
    grads_ref = torch.autograd.grad(y_ref, leaves, g)
    for name, a, e in zip(("grad_input", "grad_weight", "grad_bias"), grads, grads_ref):
        assert_close(a, e, dtype, name)


# (shape, kernel (K, R, S), stride, pads, dilation, groups): every one goes through the GEMM path (output channels
# not in whole vectors keep the few-channel weight gradient, conv_few_channel_weight.cpp, off the small-C ones).
GEMM_CASES = {
    "3x3_pad1": ((2, 8, 10, 9), (6, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "kc_blocks_odd_batch": ((3, 32, 12, 11), (40, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # C*R*S=288 > KC
    "bands": ((1, 64, 40, 40), (24, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # several im2col bands
    "groups_stride_dil": ((3, 6, 11, 13), (4, 3, 2), (2, 1), (1, 0, 2, 1), (2, 1), 2),
    "1x1": ((2, 16, 7, 7), (40, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_wide": ((1, 4, 64, 64), (8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # N > NC of the GEMM
    "1x1_stride2": ((2, 8, 9, 9), (5, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    "1x1_groups": ((2, 12, 6, 5), (8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 4),
    # channels_last 1x1 forward: one GEMM over the whole batch per group, the (Kg, Cg) weight packed by
    # 16 x 16 transposes (Cg = 40: two blocks and 8 rows left; Kg = 48: a full and a partial panel)
    "1x1_whole_batch_groups": ((3, 80, 5, 5), (96, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2),
    # NCHW 1x1 forward at <= 7x7 runs in channels_last (the activations transposed: partial 32-row tiles)
    "1x1_7x7_layout_switch": ((3, 40, 7, 7), (48, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # rows of 512 floats (2 KB): the NCHW forward copies its weight to another stride, the GEMM reads such an A
    # in place; rows of 1024 floats (4 KB): the GEMM copies such an A to another stride
    "1x1_rows_2kb": ((2, 512, 3, 5), (40, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_rows_2kb_large": ((2, 512, 8, 8), (64, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_rows_4kb": ((2, 1024, 5, 7), (40, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # NCHW 1x1 with planes of whole cache lines: the GEMM reads the input (forward) and grad_output (input gradient)
    # in place as its B; a batch under 4 images per thread is cut into bands of 512+ pixels (24x24: 22 + 2 rows,
    # each with a partial last column panel); C = 300 is two KC blocks deep
    "1x1_in_place_bands": ((1, 24, 24, 24), (40, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_in_place_kc_blocks": ((2, 300, 8, 8), (30, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # NCHW 1x1 results of 16 MB or more written image by image: non-temporal stores decided on the whole result
    # (forward: 56 channels, a partial row panel; input gradient: 88 channels)
    "1x1_streamed_per_image": ((5, 8, 128, 128), (56, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_streamed_input_gradient": ((3, 88, 128, 128), (8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # channels_last forward with <= 14x14 outputs: the images' column matrices stacked into one GEMM (all five
    # in one; then a 14x14 plane with C*R*S = 2700, one image per GEMM)
    "stacked_images_s2": ((5, 64, 11, 11), (40, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    "stacked_one_per_gemm": ((3, 300, 28, 28), (16, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    # NCHW stacks only <= 7x7 outputs with C*R*S >= 1024 (columns side by side, copied out per image)
    "stacked_nchw_7x7": ((3, 128, 13, 13), (24, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    # weight gradients of >= 1 MB on < 128-pixel output planes, as GEMMs over several images' columns side by
    # side: 4x4 outputs, 40 images in chunks of 32 + 8 (NCHW rows of 512 floats, moved off 2 KB), groups; 7x7
    # outputs of a 1x1 stride-2 kernel in chunks of 11 + 2
    "wgrad_batched_4x4_chunks": ((40, 128, 8, 8), (256, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 2),
    "wgrad_batched_7x7_1x1_s2": ((13, 512, 14, 13), (512, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    "stem_7x7_s2": ((1, 3, 20, 20), (20, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),
    "asym_pad_even_kernel": ((2, 5, 9, 8), (7, 4, 2), (1, 1), (1, 2, 0, 1), (1, 1), 1),
    # batch < threads: the input gradient splits each group's channels over the threads (uneven slices)
    "batch1_channel_slices": ((1, 5, 10, 11), (6, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "batch3_groups_slices": ((3, 10, 7, 9), (6, 3, 3), (1, 2), (0, 1, 1, 0), (1, 1), 2),
    # 1-d (one-row) convolutions in NCHW: the direct few-channel kernel up to C*R*S = 64 (16 -> 48 k3), the GEMM
    # above it (32 -> 32 k3; WaveNet's causal k2, whose input gradient is a 128 -> 64 forward), and an 80-tap
    # stride-4 stem (M5) as the channels_last direct convolution writing NCHW
    "1d_direct_c16_k3": ((2, 16, 1, 300), (48, 1, 3), (1, 1), (0, 0, 1, 1), (1, 1), 1),
    "1d_gemm_c32_k3": ((2, 32, 1, 300), (32, 1, 3), (1, 1), (0, 0, 1, 1), (1, 1), 1),
    "1d_causal_k2": ((2, 64, 1, 200), (128, 1, 2), (1, 1), (0, 0, 1, 0), (1, 1), 1),
    "1d_stem_k80_s4": ((2, 2, 1, 700), (40, 1, 80), (1, 4), (0, 0, 0, 0), (1, 1), 1),
}


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("case", list(GEMM_CASES))
def test_gemm_path(case, channels_last, threads):
    shape, kshape, stride, pads, dil, groups = GEMM_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, channels_last=channels_last)


def test_gemm_single_input_channel(threads):
    """C == 1 (LeNet's first layer): no channel slices to share, the input gradient threads its GEMMs.
    (A single-channel tensor is never channels_last by torch's rule, so NCHW only.)"""
    run_case((1, 1, 12, 12), (6, 5, 5))
    run_case((1, 1, 12, 12), (6, 3, 3), pads=(1, 1, 1, 1), mode="reflect")


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("case", ["3x3_pad1", "groups_stride_dil", "1x1", "stem_7x7_s2", "1x1_whole_batch_groups",
                                  "1x1_in_place_bands",
                                  "1x1_7x7_layout_switch", "1x1_rows_2kb_large", "1x1_rows_4kb", "stacked_images_s2",
                                  "stacked_nchw_7x7", "wgrad_batched_4x4_chunks", "wgrad_batched_7x7_1x1_s2"])
def test_gemm_path_float64(case, channels_last, threads):
    shape, kshape, stride, pads, dil, groups = GEMM_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, channels_last=channels_last, dtype=torch.float64)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_gemm_padding_modes(mode, channels_last, threads):
    run_case((3, 6, 9, 10), (5, 3, 3), (1, 2), (2, 1, 1, 2), (1, 2), 1, mode, channels_last)


# depthwise: groups == C, K = C * multiplier
DW_CASES = {
    "3x3": ((2, 32, 12, 13), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "multiplier2_stride2": ((3, 5, 11, 9), 2, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "5x5_dilated": ((1, 40, 14, 15), 1, (5, 5), (1, 1), (4, 4, 4, 4), (2, 2)),
    "asym_multiplier3": ((2, 3, 8, 10), 3, (2, 3), (1, 2), (0, 1, 2, 0), (1, 1)),
    "wide_channel_tail": ((2, 24, 5, 37), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),  # vector + scalar channels
    "wide_strided": ((1, 16, 6, 41), 1, (3, 3), (1, 2), (1, 1, 1, 1), (1, 1)),
    # channels_last rows of at most 16 outputs, 3-wide, zero padding, whole channel vectors: a row in one pass
    # (forward_row_s3): 7 outputs at stride 2, 16 unpadded outputs (with "3x3": 13 outputs, padding 1)
    "row_s2_7": ((2, 32, 13, 14), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "row_16_unpadded": ((1, 16, 5, 18), 1, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1)),
    # channels_last input gradient of 3-wide stride-2 pad-1 kernels by rows of gx (backward_input_row_s2): 35
    # columns (groups of 16, 16 and 3), stride 1 along the height
    "gx_rows_s2_35": ((1, 16, 9, 35), 1, (3, 3), (1, 2), (1, 1, 1, 1), (1, 1)),
    # NCHW strided input gradient gathered by output phases (conv_depthwise_nchw.cpp): even and odd widths, a
    # 5x5 kernel (phases of 3 and 2 taps), strides (2, 2) and (3, 2)
    "gx_phases_s2_even": ((2, 8, 23, 36), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "gx_phases_s2_odd": ((1, 4, 20, 37), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "gx_phases_5x5_s3x2": ((1, 4, 25, 40), 1, (5, 5), (3, 2), (2, 2, 2, 2), (1, 1)),
    # NCHW rows of 16..31 outputs at stride 1 take the flat-plane loops of conv_depthwise_nchw.cpp (shorter
    # NCHW rows run in NHWC, conv_layout_switch.cpp)
    "flat_rows_dilated_mult2": ((2, 4, 9, 20), 2, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2)),
    "flat_rows_asym": ((1, 6, 5, 24), 1, (2, 5), (1, 1), (0, 1, 2, 1), (1, 1)),
    # NCHW 3x3 pad 1: input rows in registers (conv_depthwise_nchw_3x3.cpp) for the forward at stride 1 and 2
    # and the stride-1 input gradient; rows of at most 16 (MobileNet's 14x14 and 7x7): full 16-wide rows, odd
    # widths, one row.
    "small_plane_14": ((2, 24, 14, 14), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "small_plane_14_s2": ((2, 24, 14, 14), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "small_plane_16_odd_h": ((1, 5, 7, 16), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "small_plane_16_s2": ((1, 5, 9, 16), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "small_plane_7_s2": ((3, 8, 7, 7), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "small_plane_one_row": ((2, 4, 1, 5), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    # wider rows in 16-column strips (MobileNet's 28x28, 56x56, 112x112): a strip of 1, 15 and 16 columns, odd
    # widths at stride 2 (the left column of every strip after the first comes from the previous 32), one row
    "wide_rows_17": ((2, 6, 5, 17), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "wide_rows_28": ((2, 12, 28, 28), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "wide_rows_47_one_row": ((1, 3, 1, 47), 1, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
    "wide_rows_17_s2": ((2, 6, 6, 17), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "wide_rows_56_s2": ((2, 8, 9, 56), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    "wide_rows_67_s2": ((1, 4, 7, 67), 1, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1)),
    # NCHW square 3x3 / 5x5 / 7x7 strips (conv_depthwise_nchw_strips.cpp), groups of 4 output rows: unpadded 3x3,
    # 5x5 pad 2 at stride 1 and 2 on 14 and 37 columns, 7x7 pad 3 with 5 output rows, asymmetric pads (the
    # stride-1 input gradient is the same kernel with the pads mirrored), one input row
    "strips_3x3_unpadded": ((2, 8, 9, 20), 1, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1)),
    "strips_5x5_14": ((2, 24, 14, 14), 1, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    "strips_5x5_s2_37": ((2, 4, 11, 37), 1, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
    "strips_7x7_5_rows": ((1, 4, 5, 19), 1, (7, 7), (1, 1), (3, 3, 3, 3), (1, 1)),
    "strips_5x5_asym": ((1, 4, 9, 18), 1, (5, 5), (1, 1), (4, 0, 1, 3), (1, 1)),
    "strips_7x7_s2_one_row": ((2, 3, 1, 23), 1, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),
    # channels_last 5x5 / 7x7 with columns loaded once per kernel row (forward_cols in conv_depthwise_nhwc.cpp):
    # rows of 16 or fewer in one pass, wider ones in groups of 8 with padded edges, stride 2, and the stride-1
    # input gradient (the same kernel on grad_output); 32 channels: whole vectors, 40: a scalar tail
    "cols_5x5_row_14": ((2, 32, 9, 14), 1, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),
    "cols_5x5_s2_wide": ((1, 40, 12, 45), 1, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
    "cols_7x7_wide": ((1, 32, 9, 30), 1, (7, 7), (1, 1), (3, 3, 3, 3), (1, 1)),
    "cols_7x7_s2_row": ((2, 32, 11, 13), 1, (7, 7), (2, 2), (3, 3, 3, 3), (1, 1)),
    # rows wider than 16 of 5- and 7-wide kernels: the edge pixel groups run the column kernel with zero padding
    "cols_5x5_s2_edges": ((2, 32, 10, 41), 1, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
    "cols_7x7_asym_edges": ((1, 16, 8, 26), 1, (7, 7), (1, 1), (3, 1, 1, 5), (1, 1)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("case", list(DW_CASES))
def test_depthwise(case, channels_last, dtype, threads):
    shape, mult, (r, s), stride, pads, dil = DW_CASES[case]
    c = shape[1]
    run_case(shape, (c * mult, r, s), stride, pads, dil, c, channels_last=channels_last, dtype=dtype)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_depthwise_padding_modes(mode, channels_last, threads):
    run_case((2, 6, 7, 9), (12, 3, 3), (1, 1), (2, 1, 1, 2), (1, 1), 6, mode, channels_last)
    run_case((2, 3, 6, 18), (3, 3, 3), (1, 1), (1, 2, 2, 1), (1, 1), 3, mode, channels_last)  # NCHW: flat rows


def test_no_bias_batch1():
    run_case((1, 16, 9, 9), (16, 3, 3), pads=(1, 1, 1, 1), bias=False)
    run_case((1, 16, 9, 9), (16, 3, 3), pads=(1, 1, 1, 1), groups=16, bias=False, channels_last=True)


# Cropped grad_output: rows / columns beyond (OH, OW) are absent, i.e. contribute a zero gradient.
CROP_CASES = {
    "gemm": ((2, 6, 9, 10), (4, 3, 3), (2, 2), (1, 1, 1, 1), 1),
    "1x1_identity": ((2, 8, 6, 7), (5, 1, 1), (1, 1), (0, 0, 0, 0), 1),
    "depthwise": ((2, 4, 9, 10), (8, 3, 3), (2, 2), (1, 1, 1, 1), 4),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
@pytest.mark.parametrize("case", list(CROP_CASES))
def test_backward_ops_cropped_grad_output(case, mode, channels_last, dtype, threads):
    shape, (k, r, s), stride, pads, groups = CROP_CASES[case]
    if mode != "zeros" and pads == (0, 0, 0, 0):
        pytest.skip("no padding: the mode does not matter")
    n, c, h, wd = shape
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    w = torch.randn(k, c // groups, r, s, dtype=dtype, requires_grad=True)
    y_ref = reference(x, w, None, stride, pads, (1, 1), groups, mode)
    oh, ow = y_ref.shape[2] - 1, y_ref.shape[3] - 1
    g_small = torch.randn(n, k, oh, ow, dtype=dtype)
    g_full = torch.zeros_like(y_ref)
    g_full[:, :, :oh, :ow] = g_small
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x, w), g_full)
    xd = x.detach()
    if channels_last:
        g_full = g_full.contiguous(memory_format=torch.channels_last)
        xd = xd.contiguous(memory_format=torch.channels_last)
    args = (list(stride), list(pads), [1, 1], groups, mode)
    gx = ops.conv2d_backward_input(g_full, w.detach(), list(shape), *args)
    gw = ops.conv2d_backward_weight(g_full, xd, list(w.shape), *args)
    assert_close(gx, gx_ref, dtype, "grad_input")
    assert_close(gw, gw_ref, dtype, "grad_weight")


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_small_problems_default_threshold(channels_last):
    """With the default threshold, tiny problems run on one thread even when two are available; results
    match torch either way, and the threshold setter returns the previous value."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    default = _C.set_min_parallel_work(0)
    try:
        assert _C.set_min_parallel_work(default) == 0
        assert default > 1 * 16 * 10 * 10 * 6 * 5 * 5  # the first case below is under the threshold
        run_case((1, 6, 14, 14), (16, 5, 5), channels_last=channels_last)
        run_case((1, 6, 14, 14), (6, 3, 3), pads=(1, 1, 1, 1), groups=6, channels_last=channels_last)
        run_case((2, 16, 24, 24), (16, 3, 3), pads=(1, 1, 1, 1), channels_last=channels_last)  # above it
    finally:
        _C.set_min_parallel_work(default)
        torch.set_num_threads(old)


@pytest.mark.parametrize("threads_n", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_bias_grad_wide(channels_last, threads_n):
    """conv_backward_bias: many pixels (NHWC sums 256-pixel chunks), channels not a multiple of 16."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads_n)
    try:
        g = torch.randn(3, 40, 23, 19, dtype=torch.float64)
        if channels_last:
            g = g.contiguous(memory_format=torch.channels_last)
        assert_close(ops.conv_backward_bias(g), g.sum((0, 2, 3)), torch.float64, "grad_bias")
        g32 = g.float()
        assert_close(ops.conv_backward_bias(g32), g.sum((0, 2, 3)).float(), torch.float32, "grad_bias f32")
    finally:
        torch.set_num_threads(old)


# NHWC depthwise without multiplier: input gradient as a gather (zero padding; pixel blocks inside and
# across the borders, strides that skip input rows / columns, dilation, cropped grad_output) and weight
# gradient by rows (every padding mode; more rows than its 32 chunks, channel tails).
DW_GATHER_CASES = {
    "stride2_dil2": ((2, 20, 13, 27), (3, 3), (2, 2), (2, 1, 0, 3), (2, 2)),
    "asym_kernel_tail": ((3, 19, 9, 30), (2, 5), (1, 1), (0, 1, 2, 2), (1, 1)),
    "many_rows": ((5, 16, 11, 12), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(DW_GATHER_CASES))
def test_depthwise_nhwc_gather(case, dtype, threads):
    shape, (r, s), stride, pads, dil = DW_GATHER_CASES[case]
    c = shape[1]
    run_case(shape, (c, r, s), stride, pads, dil, c, channels_last=True, dtype=dtype)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_depthwise_nhwc_padding_modes_no_multiplier(mode, threads):
    run_case((2, 18, 7, 9), (18, 3, 3), (1, 2), (2, 1, 1, 2), (1, 1), 18, mode, channels_last=True)


@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_depthwise_nhwc_cropped_grad_output(mode, threads):
    n, c, h, wd = shape = (2, 17, 9, 10)
    stride, pads = (2, 1), (1, 1, 1, 1)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    y_ref = reference(x, w, None, stride, pads, (1, 1), c, mode)
    oh, ow = y_ref.shape[2] - 1, y_ref.shape[3] - 1
    g_small = torch.randn(n, c, oh, ow, dtype=torch.float64)
    g_full = torch.zeros_like(y_ref)
    g_full[:, :, :oh, :ow] = g_small
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x, w), g_full)
    g_full = g_full.contiguous(memory_format=torch.channels_last)
    xd = x.detach().contiguous(memory_format=torch.channels_last)
    args = (list(stride), list(pads), [1, 1], c, mode)
    assert_close(ops.conv2d_backward_input(g_full, w.detach(), list(shape), *args), gx_ref, torch.float64, "gx")
    assert_close(ops.conv2d_backward_weight(g_full, xd, list(w.shape), *args), gw_ref, torch.float64, "gw")


# NHWC input gradient without a column matrix (conv_implicit_nhwc.cpp: the forward's direct convolution on
# grad_output): stride 1, zero padding within the kernel's reach, shapes the few-channel direct kernel leaves
# (K*R*S > 512). 3x3_pad1_tails reaches it in float64 (float32 runs Winograd). Partial pixel tiles (W % 14, rows narrower
# than a tile), channel panel tails (C % 32) and one-vector panels (C <= 16, 3 channels), more than 256
# output channels, groups, dilation, asymmetric and zero padding.
IMPLICIT_CASES = {
    "3x3_pad1_tails": ((2, 40, 5, 17), (24, 3, 3), (1, 1, 1, 1), (1, 1), 1),
    "k300_asym": ((1, 8, 4, 15), (300, 2, 3), (0, 1, 2, 0), (1, 1), 1),
    "dilated_5x3": ((2, 33, 9, 29), (40, 5, 3), (3, 0, 1, 2), (2, 2), 1),
    "unpadded_3x2": ((1, 16, 6, 14), (96, 3, 2), (0, 0, 0, 0), (1, 1), 1),
    "narrow_rows_rgb": ((2, 3, 9, 6), (20, 5, 5), (2, 2, 2, 2), (1, 1), 1),
    "groups_5x5": ((2, 48, 11, 13), (48, 5, 5), (2, 2, 1, 1), (1, 1), 2),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(IMPLICIT_CASES))
def test_implicit_backward_input_nhwc(case, dtype, threads):
    shape, kshape, pads, dil, groups = IMPLICIT_CASES[case]
    run_case(shape, kshape, (1, 1), pads, dil, groups, channels_last=True, dtype=dtype)


def test_implicit_backward_input_nhwc_cropped(threads):
    """grad_output one row and column short of the formula's size (rows / columns past it are zero)."""
    shape, pads = (2, 20, 7, 16), (1, 1, 1, 1)
    x = torch.randn(shape, dtype=torch.float64)
    w = torch.randn(12, 20, 3, 3, dtype=torch.float64, requires_grad=True)
    xr = x.clone().requires_grad_()
    y_ref = reference(xr, w, None, (1, 1), pads, (1, 1), 1, "zeros")
    g_small = torch.randn(2, 12, y_ref.shape[2] - 1, y_ref.shape[3] - 1, dtype=torch.float64)
    g_full = torch.zeros_like(y_ref)
    g_full[:, :, : g_small.shape[2], : g_small.shape[3]] = g_small
    (gx_ref,) = torch.autograd.grad(y_ref, (xr,), g_full)
    g_full = g_full.contiguous(memory_format=torch.channels_last)
    gx = ops.conv2d_backward_input(g_full, w.detach(), list(shape), [1, 1], list(pads), [1, 1], 1, "zeros")
    assert_close(gx, gx_ref, torch.float64, "grad_input")


# NHWC weight gradient without im2col (conv_implicit_nhwc_weight.cpp): one group, stride 1, zero padding,
# input channels a multiple of 32 (float64: 16), or 16 (8). Output-channel tails (K % 14), dilation, asymmetric / zero / wide
# padding, more rows than the 16 chunks (chunks across images, several 8-row segments), batch 1.
IMPLICIT_WEIGHT_CASES = {
    "3x3_pad1_k17": ((2, 32, 11, 9), (17, 3, 3), (1, 1, 1, 1), (1, 1)),
    "dilated_asym": ((3, 64, 7, 12), (30, 3, 2), (2, 0, 1, 3), (2, 2)),
    "unpadded_b1": ((1, 32, 6, 8), (5, 2, 3), (0, 0, 0, 0), (1, 1)),
    "tall_segments": ((2, 32, 80, 5), (3, 3, 3), (1, 1, 1, 1), (1, 1)),  # 10 rows per chunk: 8 + 2
    "1x1_in_place": ((3, 64, 9, 7), (20, 1, 1), (0, 0, 0, 0), (1, 1)),  # x and gy read without copies
    "1x1_padded": ((2, 32, 5, 6), (7, 1, 1), (1, 0, 2, 1), (1, 1)),
    "big_weight_fewer_chunks": ((1, 256, 16, 4), (512, 3, 3), (1, 1, 1, 1), (1, 1)),  # 13 (f32) / 6 (f64) chunks
    # one vector of input channels (half the tile): 16 float32, 8 float64 channels; K = 32 in tiles of 11 + 11 + 10
    "one_vector_5x5": ((4, 16, 9, 10), (32, 5, 5), (2, 2, 2, 2), (1, 1)),
    "one_vector_f64": ((2, 8, 7, 7), (15, 3, 3), (1, 1, 1, 1), (1, 1)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(IMPLICIT_WEIGHT_CASES))
def test_implicit_backward_weight_nhwc(case, dtype, threads):
    shape, kshape, pads, dil = IMPLICIT_WEIGHT_CASES[case]
    run_case(shape, kshape, (1, 1), pads, dil, 1, channels_last=True, dtype=dtype)


# One vector of input channels (16 float32, 8 float64): the taps of a kernel row share each broadcast of the
# gradient (tile_taps), in groups of at most 5 taps: 2, 3, 4, 5, 7 (4 + 3) and 11 (4 + 4 + 3) taps, dilated
# ones, output-channel counts that leave short tiles, and NCHW (switched to channels_last) on a small plane and
# on a 28x20 one (GoogLeNet's 5x5 shape, with a row of 20 pixels: a partial 14-pixel tile per row).
# (batch, H, W, kernel (K, R, S), pads, dilation, channels_last)
TAP_GROUP_CASES = {
    "1x2_k40": ((3, 6, 9), (40, 1, 2), (0, 0, 1, 0), (1, 1), True),  # K > 32: not the few-tap direct kernel
    "2x3_k13": ((2, 8, 8), (13, 2, 3), (1, 0, 1, 1), (1, 1), True),
    "1x4_dil3_k40": ((2, 5, 20), (40, 1, 4), (0, 0, 3, 2), (1, 3), True),
    "5x5_k32": ((3, 14, 14), (32, 5, 5), (2, 2, 2, 2), (1, 1), True),
    "3x7_k6": ((2, 10, 12), (6, 3, 7), (1, 1, 3, 3), (2, 1), True),
    "1x11": ((1, 4, 30), (5, 1, 11), (0, 0, 5, 5), (1, 1), True),
    "5x5_nchw_small_plane": ((4, 14, 14), (32, 5, 5), (2, 2, 2, 2), (1, 1), False),
    "5x5_nchw_28x20": ((2, 28, 20), (32, 5, 5), (2, 2, 2, 2), (1, 1), False),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(TAP_GROUP_CASES))
def test_implicit_backward_weight_tap_groups(case, dtype, threads):
    (n, h, wd), kshape, pads, dil, channels_last = TAP_GROUP_CASES[case]
    c = 16 if dtype == torch.float32 else 8
    run_case((n, c, h, wd), kshape, (1, 1), pads, dil, 1, channels_last=channels_last, dtype=dtype)


def test_implicit_backward_weight_nhwc_cropped(threads):
    shape, pads = (2, 32, 8, 9), (1, 1, 1, 1)
    x = torch.randn(shape, dtype=torch.float64)
    w = torch.randn(6, 32, 3, 3, dtype=torch.float64, requires_grad=True)
    y_ref = reference(x, w, None, (1, 1), pads, (1, 1), 1, "zeros")
    g_small = torch.randn(2, 6, y_ref.shape[2] - 1, y_ref.shape[3] - 2, dtype=torch.float64)
    g_full = torch.zeros_like(y_ref)
    g_full[:, :, : g_small.shape[2], : g_small.shape[3]] = g_small
    (gw_ref,) = torch.autograd.grad(y_ref, (w,), g_full)
    g_full = g_full.contiguous(memory_format=torch.channels_last)
    xd = x.contiguous(memory_format=torch.channels_last)
    gw = ops.conv2d_backward_weight(g_full, xd, list(w.shape), [1, 1], list(pads), [1, 1], 1, "zeros")
    assert_close(gw, gw_ref, torch.float64, "grad_weight")


# NHWC forward of kernels larger than 1x1 as a direct convolution on the GEMM micro-kernel
# (conv_implicit_nhwc.cpp): (shape, kernel (K, R, S), stride, pads, dilation, groups, mode).
# Partial pixel tiles (odd and even remainders of 14, rows narrower than a tile), one-vector column
# panels (K per group <= 16) and panel tails, groups, strides per axis, dilation, every padding mode,
# padding beyond the kernel's reach, a pixel stride moved off 2 KB (256 channels at stride 2), a
# single output row whose column panels are split between threads, and an output of 16 MB or more (non-temporal
# stores: full and partial pixel tiles, a full and a one-vector column panel, odd width).
IMPLICIT_FORWARD_CASES = {
    "3x3_s2_tails": ((2, 40, 15, 31), (33, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "5x5_groups3_narrow": ((3, 48, 9, 13), (15, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 3, "zeros"),
    "11x11_s4_rgb": ((2, 3, 39, 43), (20, 11, 11), (4, 4), (2, 2, 2, 2), (1, 1), 1, "zeros"),
    "7x7_s2_rgb": ((1, 3, 30, 27), (80, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, "zeros"),
    "1x5_stride_1x3": ((2, 17, 6, 40), (40, 1, 5), (1, 3), (0, 0, 2, 1), (1, 1), 1, "zeros"),
    "3x1_dilated": ((1, 32, 20, 7), (16, 3, 1), (1, 1), (2, 2, 0, 0), (2, 1), 1, "zeros"),
    "3x3_dil2_s2": ((2, 24, 17, 19), (48, 3, 3), (2, 2), (2, 1, 2, 1), (2, 2), 2, "zeros"),
    "wide_zero_pad": ((1, 24, 4, 5), (9, 3, 3), (1, 2), (4, 0, 3, 5), (1, 1), 1, "zeros"),
    "reflect": ((2, 20, 9, 16), (24, 5, 3), (1, 1), (1, 2, 2, 1), (1, 1), 1, "reflect"),
    "replicate_s2": ((1, 16, 10, 21), (32, 5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 1, "replicate"),
    "circular_groups": ((2, 32, 8, 14), (48, 2, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, "circular"),
    "c256_s2_alias": ((1, 256, 9, 30), (40, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "one_row_split": ((1, 16, 3, 20), (100, 3, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1, "zeros"),
    "streamed_output": ((1, 3, 300, 301), (48, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(IMPLICIT_FORWARD_CASES))
def test_implicit_forward_nhwc(case, dtype, threads):
    shape, kshape, stride, pads, dil, groups, mode = IMPLICIT_FORWARD_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, mode, channels_last=True, dtype=dtype, bias=groups != 3)


# One vector of output channels per group (K/groups <= 16 float32, 8 float64), stride 1 along rows, undilated
# columns, 3/5/7 taps per kernel row: row_taps (conv_implicit_nhwc.cpp), tiles of even widths along each row (8,
# 14 + 14, 20 x 3), reading past a row into the next ones and the band's slack; dilated rows, every padding mode,
# groups, and the input gradient of a 32 -> 16-channel 5x5 layer (the forward of its flipped kernel).
ROW_TAPS_CASES = {
    "5x5_k16_w28": ((2, 40, 8, 28), (16, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, "zeros"),
    "3x3_k5_w8": ((3, 24, 6, 8), (5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "1x7_k8_w60": ((1, 30, 3, 60), (8, 1, 7), (1, 1), (0, 0, 3, 3), (1, 1), 1, "zeros"),
    "5x3_dil_rows_k7": ((2, 20, 12, 17), (7, 5, 3), (1, 1), (4, 4, 1, 1), (2, 1), 1, "reflect"),
    "7x7_groups2_k6": ((1, 36, 15, 23), (12, 7, 7), (1, 1), (3, 3, 3, 3), (1, 1), 2, "replicate"),
    "5x5_stride_rows": ((2, 18, 16, 19), (10, 5, 5), (2, 1), (2, 1, 2, 2), (1, 1), 1, "circular"),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(ROW_TAPS_CASES))
def test_row_taps_forward_nhwc(case, dtype, threads):
    shape, kshape, stride, pads, dil, groups, mode = ROW_TAPS_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, mode, channels_last=True, dtype=dtype)


# An NCHW strided stem with few channels and a large kernel that the few-channel direct kernel declines (more
# than 64 outputs): its forward runs in channels_last on transposed activations (conv_layout_switch.cpp).
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_nchw_strided_stem_in_channels_last(dtype, threads):
    run_case((2, 3, 67, 71), (96, 11, 11), (4, 4), (2, 2, 2, 2), dtype=dtype)


# NCHW float32 forwards of 64 or more output pixels that run as the channels_last direct convolution on the NCHW
# tensors themselves (conv_layout_switch.cpp): each band of input rows is transposed into pixels as it is gathered
# (gather_band, the group's planes; few-channel stems interleaved), and the tiles store their outputs transposed,
# straight into the NCHW result (conv_dispatch.cpp, direct_writes_nchw). Full and partial pixel tiles, column
# panels of 32 and of 8 channels, row_taps tiles of one vector of channels (up to 26 pixels: two transposed
# blocks), stacked short rows, a single row whose column panels are split between threads, groups and every
# padding mode on the edge columns, asymmetric pads, a stride along the height only, 3-channel stems, a
# weight-stationary layer (whole images gathered), with and without bias; float64 takes the transposes.
NCHW_DIRECT_CASES = {
    "5x5_k32": ((2, 16, 20, 20), (32, 5, 5), (1, 1), (2, 2, 2, 2), 1, "zeros"),
    "5x5_k12_row_taps": ((2, 16, 12, 30), (12, 5, 5), (1, 1), (2, 2, 2, 2), 1, "reflect"),
    "3x3_s2_k40_tails": ((2, 24, 23, 21), (40, 3, 3), (2, 2), (1, 1, 1, 1), 1, "replicate"),
    "stacked_rows": ((1, 32, 40, 9), (48, 3, 3), (2, 2), (1, 1, 1, 1), 1, "zeros"),
    "7x7_groups2": ((2, 32, 16, 16), (48, 7, 7), (1, 1), (3, 3, 3, 3), 2, "circular"),
    "one_row_split": ((1, 16, 5, 80), (64, 5, 5), (1, 1), (0, 0, 0, 0), 1, "zeros"),
    "s2_groups2_asym_pads": ((2, 64, 20, 23), (64, 3, 3), (2, 2), (0, 1, 2, 0), 2, "zeros"),
    "s2x1_replicate": ((2, 16, 21, 20), (32, 3, 3), (2, 1), (1, 2, 2, 1), 1, "replicate"),
    "stem_7x7_s2_reflect": ((1, 3, 192, 193), (16, 7, 7), (2, 2), (3, 3, 3, 3), 1, "reflect"),
    "stem_11x11_s4": ((1, 3, 387, 390), (24, 11, 11), (4, 4), (2, 2, 2, 2), 1, "zeros"),
    "weight_stationary": ((1, 256, 17, 17), (512, 3, 3), (2, 2), (1, 1, 1, 1), 1, "zeros"),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(NCHW_DIRECT_CASES))
def test_nchw_forward_written_by_direct_tiles(case, dtype, bias, threads):
    shape, kshape, stride, pads, groups, mode = NCHW_DIRECT_CASES[case]
    run_case(shape, kshape, stride, pads, (1, 1), groups, mode, dtype=dtype, bias=bias)


# NCHW (K, C, R, S) weights packed for the channels_last direct convolution (conv_implicit_nhwc.cpp,
# pack_kcrs_panel) by strided NCHW forwards: 16-channel, 16-row blocks in one pass (several channel blocks, 3x3 and
# 5x3 taps, a last panel of 16 rows, groups), and the two-pass rest (channels and panel rows not multiples of 16).
KCRS_PACK_CASES = {
    "c48_k80_3x3": ((2, 48, 15, 15), (80, 3, 3), (2, 2), (1, 1, 1, 1), 1),
    "c32_k32_5x3_small": ((3, 32, 9, 8), (32, 5, 3), (2, 2), (2, 2, 1, 1), 1),
    "groups2_c64_k96": ((2, 64, 12, 12), (96, 3, 3), (2, 2), (1, 1, 1, 1), 2),
    "c40_k56_two_pass": ((2, 40, 11, 13), (56, 3, 3), (2, 2), (1, 1, 1, 1), 1),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(KCRS_PACK_CASES))
def test_nchw_weight_packing(case, dtype, threads):
    shape, kshape, stride, pads, groups = KCRS_PACK_CASES[case]
    run_case(shape, kshape, stride, pads, (1, 1), groups, "zeros", dtype=dtype)


# Forwards whose packed weight outweighs their input run weight-stationary on two threads (conv_implicit_nhwc.cpp,
# run_weight_stationary: every image's padded input gathered once, each column panel packed into its thread's
# buffer and run over all images); one thread takes the banded path. A last partial panel (264 = 8*32 + 8
# channels, the two-pass pack), padding modes, groups, stride 1 and 2.
WEIGHT_STATIONARY_CASES = {
    "c128_k256_s2": ((2, 128, 9, 9), (256, 3, 3), (2, 2), (1, 1, 1, 1), 1, "zeros"),
    "k264_tail_reflect": ((3, 128, 11, 10), (264, 3, 3), (2, 2), (1, 1, 1, 1), 1, "reflect"),
    "groups2_5x5_circular": ((2, 256, 8, 8), (192, 5, 5), (2, 2), (2, 2, 2, 2), 2, "circular"),
    "5x5_s1_k200": ((1, 64, 6, 7), (200, 5, 5), (1, 1), (2, 2, 2, 2), 1, "zeros"),
    "c144_half_panels": ((1, 144, 6, 7), (200, 5, 5), (1, 1), (2, 2, 2, 2), 1, "zeros"),
}


@pytest.mark.parametrize("layouts", ["nchw", "nhwc", "nhwc_w_cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(WEIGHT_STATIONARY_CASES))
def test_weight_stationary_forward(case, dtype, layouts, threads):
    shape, kshape, stride, pads, groups, mode = WEIGHT_STATIONARY_CASES[case]
    run_case(shape, kshape, stride, pads, (1, 1), groups, mode, channels_last=layouts != "nchw", dtype=dtype,
             weight_channels_last=layouts == "nhwc_w_cl")


# Weight gradients with at most 16 input channels per group and output channels in whole vectors (16 floats, 8
# doubles) run with the output channels across the lanes (conv_few_channel_weight.cpp): the RGB first layers (3x3
# on several bands, the 7x7/2 stem, AlexNet's 11x11/4), every padding mode, groups, dilation along the height,
# asymmetric pads, one vector of output channels, 3 and 5 vectors (uneven blocks), 9 (three
# blocks), 16 channels x 5 taps (a kernel row's 80 taps in several groups).
FEW_CHANNEL_WEIGHT_CASES = {
    "rgb_3x3_bands": ((2, 3, 37, 35), (64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "stem_7x7_s2_reflect": ((2, 3, 23, 21), (64, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1, "reflect"),
    "alexnet_11x11_s4": ((2, 3, 39, 43), (96, 11, 11), (4, 4), (0, 0, 0, 0), (1, 1), 1, "zeros"),
    "groups2_circular": ((2, 6, 12, 11), (64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, "circular"),
    "dil_h_replicate": ((3, 4, 14, 13), (32, 3, 5), (2, 1), (2, 2, 1, 3), (2, 1), 1, "replicate"),
    "asymmetric_pads": ((2, 2, 15, 16), (48, 3, 3), (1, 2), (0, 1, 2, 0), (1, 1), 1, "zeros"),
    "one_vector_5x5_groups": ((3, 4, 16, 17), (32, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 2, "zeros"),
    "k80_uneven_blocks": ((2, 3, 9, 10), (80, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "k144_three_blocks": ((1, 2, 8, 9), (144, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "c16_5x5_tap_groups": ((2, 16, 10, 9), (32, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, "zeros"),
}


@pytest.mark.parametrize("layouts", ["nchw", "nhwc", "nhwc_w_cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(FEW_CHANNEL_WEIGHT_CASES))
def test_few_channel_weight_gradient(case, dtype, layouts, threads):
    shape, kshape, stride, pads, dil, groups, mode = FEW_CHANNEL_WEIGHT_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, mode, channels_last=layouts != "nchw", dtype=dtype,
             weight_channels_last=layouts == "nhwc_w_cl")


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_few_channel_weight_gradient_long_kernel(channels_last, threads):
    """A 1 x 2048 kernel on 16 channels: 8 MB of partial sums per chunk, so its 20 work items (one per output row)
    run as 8 chunks instead of 16."""
    run_case((1, 16, 20, 2063), (64, 1, 2048), channels_last=channels_last)


def assert_weight_gradient_same_for_any_thread_count(x_shape, k, kernel, pad, channels_last):
    """The stride-1 weight gradient of random x and grad_output on 1, 2 and 3 threads is bit for bit the same."""
    n, c, h, w = x_shape
    x, gy = torch.randn(n, c, h, w), torch.randn(n, k, h + 2 * pad - kernel + 1, w + 2 * pad - kernel + 1)
    if channels_last:
        x, gy = x.to(memory_format=torch.channels_last), gy.to(memory_format=torch.channels_last)
    old, old_min_work = torch.get_num_threads(), _C.set_min_parallel_work(0)
    try:
        results = []
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results.append(ops.conv2d_backward_weight(gy, x, [k, c, kernel, kernel], [1, 1], [pad] * 4, [1, 1], 1,
                                                      "zeros"))
    finally:
        _C.set_min_parallel_work(old_min_work)
        torch.set_num_threads(old)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_few_channel_weight_gradient_same_for_any_thread_count(channels_last):
    """Its work is cut into a fixed number of chunks, each summed on its own and added in chunk order."""
    assert_weight_gradient_same_for_any_thread_count((3, 3, 40, 37), 64, 3, 1, channels_last)


# Weight gradients with more than 16 input channels per group, output channels in whole vectors, stride 1 and a 3x3
# or larger kernel (3x3 float32 from 24 channels takes Winograd first), or a 4x4+ strided kernel on 128+ channels,
# run the same register tile split over the threads (conv_many_channel_weight.cpp): AlexNet's grouped 5x5, 7x7 with
# reflect padding, 3x3 on 20 channels with asymmetric circular padding, dilation along the height, DCGAN's 4x4/2
# on 4x4 outputs (several images per tile), 5 vectors of output channels (uneven blocks), rows longer than a tile's
# 512-pixel block, small planes with several images per tile (float64 3x3), images in several batches.
MANY_CHANNEL_WEIGHT_CASES = {
    "grouped_5x5": ((2, 48, 13, 12), (64, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 2, "zeros"),
    "7x7_reflect": ((2, 20, 11, 13), (16, 7, 7), (1, 1), (3, 3, 3, 3), (1, 1), 1, "reflect"),
    "3x3_c20_circular": ((3, 20, 9, 10), (48, 3, 3), (1, 1), (1, 0, 2, 1), (1, 1), 1, "circular"),
    "dil_h_replicate": ((2, 32, 12, 11), (32, 5, 3), (1, 1), (4, 4, 1, 1), (2, 1), 1, "replicate"),
    "dcgan_4x4_s2": ((3, 128, 8, 8), (32, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "k80_uneven_blocks": ((2, 18, 9, 8), (80, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, "zeros"),
    "long_rows": ((1, 17, 3, 600), (16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "small_planes": ((9, 32, 4, 4), (16, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
}


@pytest.mark.parametrize("layouts", ["nchw", "nhwc", "nhwc_w_cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(MANY_CHANNEL_WEIGHT_CASES))
def test_many_channel_weight_gradient(case, dtype, layouts, threads):
    shape, kshape, stride, pads, dil, groups, mode = MANY_CHANNEL_WEIGHT_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, mode, channels_last=layouts != "nchw", dtype=dtype,
             weight_channels_last=layouts == "nhwc_w_cl")


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_many_channel_weight_gradient_batches(channels_last):
    """Five 32-channel 128x128 images: over 2 MB of gathered input each, so they run as several batches of the
    8 MB scratch."""
    run_case((5, 32, 128, 128), (16, 5, 5), (1, 1), (2, 2, 2, 2), channels_last=channels_last)


@pytest.mark.skipif(_kernels.loaded_capability() != "avx512",
                    reason="the many-channel kernel is AVX-512 only; the GEMM that runs elsewhere sums per thread")
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
def test_many_channel_weight_gradient_same_for_any_thread_count(channels_last):
    """Each output element is summed by one thread in one fixed order, whichever thread takes its unit."""
    assert_weight_gradient_same_for_any_thread_count((3, 40, 15, 14), 48, 5, 2, channels_last)


# Grouped 3-wide kernels with 2-16 channels per group in and out (ResNeXt): a direct convolution with several groups
# across the lanes in either layout (conv_small_group*.cpp; NCHW rows transposed inside), forward, input gradient
# (stride 1: the forward of grad_output, flipped; stride 2 along the width: two column phases of 2 and 1 taps, which
# the parity of the left padding swaps) and weight gradient. Groups of 2, 4, 8 and 16 (16: one float vector,
# broadcast; in double a group of 16 spans two vectors and takes the other paths), kernel heights 3 and 5, strides
# (1, 1), (2, 2), (2, 1), (1, 2), (3, 2), row dilation, asymmetric, even, wide and no padding, rows narrower than a
# pass of pixels (1 and 2 columns) and partial passes.
SMALL_GROUP_CASES = {
    "g4_s1": ((2, 64, 9, 23), (64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 16),
    "g2_rows5": ((1, 32, 8, 13), (32, 5, 3), (1, 1), (2, 2, 1, 1), (1, 1), 16),
    "g8_s2": ((3, 128, 11, 14), (128, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 16),
    "g16_s1": ((2, 64, 7, 17), (64, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),
    "g16_s2x1_asym": ((1, 96, 10, 9), (96, 3, 3), (2, 1), (0, 1, 2, 0), (1, 1), 6),
    "g4_dil_rows": ((2, 32, 12, 10), (32, 3, 3), (1, 1), (2, 2, 1, 1), (2, 1), 8),
    "g4_one_column": ((1, 16, 5, 3), (16, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 4),
    "g8_wide_pad": ((1, 32, 4, 6), (32, 3, 3), (1, 1), (3, 0, 3, 2), (1, 1), 4),
    "g4_s1x2_even_pads": ((2, 64, 7, 19), (64, 3, 3), (1, 2), (1, 0, 2, 0), (1, 1), 16),
    "g8_s3x2_unpadded": ((1, 32, 11, 16), (32, 3, 3), (3, 2), (0, 0, 0, 0), (1, 1), 4),
    "g2_s2_narrow": ((2, 32, 6, 2), (32, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 16),
    "g16_s2_one_column": ((1, 32, 5, 1), (32, 3, 3), (2, 2), (1, 2, 1, 1), (1, 1), 2),
}


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(SMALL_GROUP_CASES))
def test_small_group(case, dtype, channels_last, threads):
    shape, kshape, stride, pads, dil, groups = SMALL_GROUP_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, channels_last=channels_last, dtype=dtype,
             bias=case != "g4_s1")


@pytest.mark.skipif(_kernels.loaded_capability() != "avx512",
                    reason="the small-group kernels are AVX-512 only; the GEMM that runs elsewhere sums per thread")
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("groups", [32, 8], ids=["g4", "g16"])
def test_small_group_weight_gradient_same_for_any_thread_count(groups, channels_last):
    """Threads take whole channel vectors, each summed in one fixed order: 1, 2 and 3 threads agree bit for bit."""
    x, gy = torch.randn(3, 128, 13, 15), torch.randn(3, 128, 13, 15)
    if channels_last:
        x, gy = x.to(memory_format=torch.channels_last), gy.to(memory_format=torch.channels_last)
    old, old_min_work = torch.get_num_threads(), _C.set_min_parallel_work(0)
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(ops.conv2d_backward_weight(gy, x, [128, 128 // groups, 3, 3], [1, 1], [1] * 4, [1, 1],
                                                      groups, "zeros"))
    finally:
        _C.set_min_parallel_work(old_min_work)
        torch.set_num_threads(old)
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_row_taps_input_gradient(dtype, channels_last, threads):
    run_case((3, 16, 14, 14), (32, 5, 5), (1, 1), (2, 2, 2, 2), channels_last=channels_last, dtype=dtype)


# NHWC with a weight of 2 MB or more per group on a map of at most 28x28 outputs: the backward passes are
# computed by the NCHW kernels on transposed activations (csrc/cpu/conv/conv_layout_switch.cpp; float64 doubles
# the weight bytes), except a strided weight gradient, which stays in channels_last (stride2_reflect, 4x4_s2_groups2);
# the forward runs in channels_last as a direct convolution (see above).
LAYOUT_SWITCH_CASES = {
    "3x3_256": ((2, 256, 9, 7), (256, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "groups2_512": ((1, 512, 6, 5), (512, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2, "zeros"),
    "stride2_reflect": ((2, 256, 11, 10), (256, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, "reflect"),
    "1x1_1024": ((2, 1024, 5, 4), (1024, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, "zeros"),
    # DCGAN-like 4x4/2 with 4 MB of weight per group: the input gradient's NCHW GEMM transposes a channels_last
    # weight tap by tap into its (C*R*S, K) rows (conv_gemm_backward_input.cpp)
    "4x4_s2_groups2": ((2, 512, 8, 8), (512, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 2, "zeros"),
}


@pytest.mark.parametrize("weight_cl", [False, True], ids=["w_dense", "w_cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(LAYOUT_SWITCH_CASES))
def test_nhwc_large_weight_via_nchw(case, dtype, weight_cl, threads):
    shape, kshape, stride, pads, dil, groups, mode = LAYOUT_SWITCH_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, mode, channels_last=True, dtype=dtype,
             weight_channels_last=weight_cl)


# channels_last activations and weight into the direct convolution (conv_implicit_nhwc.cpp), which packs the
# (K, R, S, C) weight as it is: forward and stride-1 input gradient, the strided input gradient's phases (input
# channels in whole half panels), groups, an output-channel count that leaves a partial panel, reflect padding.
IMPLICIT_RSC_CASES = {
    "3x3_s2": ((2, 32, 9, 11), (40, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, "zeros"),
    "5x5_s1": ((1, 48, 8, 7), (20, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1, "zeros"),
    "groups2_s2": ((2, 64, 8, 8), (48, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2, "zeros"),
    "reflect_4x4_s2": ((1, 32, 10, 9), (16, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 1, "reflect"),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(IMPLICIT_RSC_CASES))
def test_implicit_channels_last_weight(case, dtype, threads):
    shape, kshape, stride, pads, dil, groups, mode = IMPLICIT_RSC_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, mode, channels_last=True, dtype=dtype,
             weight_channels_last=True)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("case", ["3x3_pad1", "groups_stride_dil", "1x1", "asym_pad_even_kernel"])
def test_channels_last_weight(case, channels_last, threads):
    """channels_last weights are converted by the binding's threaded transpose (bindings/weight_layout.cpp)."""
    shape, kshape, stride, pads, dil, groups = GEMM_CASES[case]
    run_case(shape, kshape, stride, pads, dil, groups, channels_last=channels_last, weight_channels_last=True)


# NHWC strided input gradient by output phases (conv_implicit_nhwc.cpp): each phase of gx (every stride-th row and
# column) is a stride-1 direct convolution of grad_output with its taps of the kernel. Input channels of at least
# one column panel in whole half panels (32, 48, 64 float; the float64 panel is half as wide). Odd sizes (phases of
# unequal size), strides 3 and 4, kernels of 2 (one tap per phase) to 11, a kernel not a multiple of the stride,
# asymmetric padding, groups, DCGAN's 4x4/2.
PHASE_CASES = {
    "3x3_s2_odd": ((2, 32, 13, 15), (40, 3, 3), (2, 2), (1, 1, 1, 1), 1),
    "dcgan_4x4_s2_two_panels": ((2, 48, 8, 8), (24, 4, 4), (2, 2), (1, 1, 1, 1), 1),
    "5x4_s3x2_asym": ((1, 64, 17, 11), (20, 5, 4), (3, 2), (2, 0, 1, 3), 1),
    "2x2_s2": ((2, 32, 8, 10), (16, 2, 2), (2, 2), (0, 0, 0, 0), 1),
    "11x11_s4": ((1, 32, 35, 31), (8, 11, 11), (4, 4), (2, 2, 2, 2), 1),
    "3x3_s2_groups": ((2, 64, 10, 9), (32, 3, 3), (2, 2), (1, 1, 1, 1), 2),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(PHASE_CASES))
def test_strided_backward_input_phases_nhwc(case, dtype, threads):
    shape, kshape, stride, pads, groups = PHASE_CASES[case]
    run_case(shape, kshape, stride, pads, (1, 1), groups, channels_last=True, dtype=dtype)


# The input gradient as the forward of the flipped kernel (one phase at stride 1; 3x1 kernels take it) with input
# channels that end a column panel part-way through a half panel (20 of 32, 32 + 8, 18 per group; 20 - 16 = 4, 8 and
# 2 of a float64 16): the tap rows of an NCHW weight (conv_implicit_nhwc.cpp, taps_to_rows) read only the panel's
# channels and write zeros past them. Each case failed with taps_to_rows' two 16-row halves swapped.
PHASE_TAIL_CASES = {
    "3x1_c20": ((2, 20, 10, 6), (16, 3, 1), (1, 1), (1, 1, 0, 0), 1),
    "3x1_c40": ((2, 40, 10, 6), (32, 3, 1), (1, 1), (1, 1, 0, 0), 1),
    "3x1_c36_groups2": ((2, 36, 10, 6), (32, 3, 1), (1, 1), (1, 1, 0, 0), 2),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(PHASE_TAIL_CASES))
def test_input_gradient_partial_channel_panels(case, dtype, threads):
    shape, kshape, stride, pads, groups = PHASE_TAIL_CASES[case]
    run_case(shape, kshape, stride, pads, (1, 1), groups, channels_last=True, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_strided_input_gradient_nchw_by_phases(dtype, threads):
    """NCHW's strided input gradient with 32+ input channels runs by output phases on transposed activations
    (conv_layout_switch.cpp): a stride-2 3x3 convolution's gradients and a DCGAN-like transposed convolution."""
    run_case((2, 32, 17, 16), (24, 3, 3), (2, 2), (1, 1, 1, 1), dtype=dtype)
    x = torch.randn(2, 40, 8, 7, dtype=dtype)
    w = torch.randn(40, 32, 4, 4, dtype=dtype)
    y = ops.conv_transpose2d(x, w, None, [2, 2], [1, 1], [1, 0], 1, [1, 1])
    y_ref = F.conv_transpose2d(x, w, None, 2, 1, (1, 0))
    assert y.shape == y_ref.shape and y.is_contiguous()
    assert_close(y, y_ref, dtype, "output")


@pytest.mark.parametrize("output_padding", [0, 1])
def test_conv_transpose2d_phases_nhwc(output_padding, threads):
    """A channels_last transposed convolution is the phases' input gradient; output_padding adds a row and column
    that only some phases reach."""
    x = torch.randn(2, 24, 9, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(24, 32, 4, 3, dtype=torch.float64)
    b = torch.randn(32, dtype=torch.float64)
    y = ops.conv_transpose2d(x, w, b, [2, 2], [1, 1], [output_padding] * 2, 1, [1, 1])
    y_ref = F.conv_transpose2d(x, w, b, 2, 1, output_padding)
    assert y.shape == y_ref.shape and y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, y_ref, torch.float64, "output")



@pytest.mark.parametrize("weight_cl", [False, True], ids=["w_dense", "w_cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kernel,output_padding", [((2, 2), (0, 0)), ((2, 2), (1, 1)), ((3, 2), (2, 0)),
                                                   ((1, 4), (0, 3))], ids=str)
def test_conv_transpose2d_kernel_tiles_output_nhwc(kernel, output_padding, dtype, weight_cl, threads):
    """A channels_last transposed convolution whose kernel equals its stride (U-Net's 2x2/2) is one GEMM whose rows
    are disjoint output patches (conv_patch_input.cpp): the weight read as stored in either layout, output_padding
    rows and columns that no patch reaches, and the output's gradients through the other passes."""
    x = torch.randn(2, 24, 5, 6, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(24, 20, *kernel, dtype=dtype)
    if weight_cl:
        w = w.contiguous(memory_format=torch.channels_last)
    b = torch.randn(20, dtype=dtype)
    xs, ws = (x.clone().requires_grad_(), w.clone().requires_grad_()), (x.clone().requires_grad_(),
                                                                         w.clone().requires_grad_())
    y = fastconv.nn.functional.conv_transpose2d(*xs, b, kernel, 0, output_padding)
    y_ref = F.conv_transpose2d(*ws, b, kernel, 0, output_padding)
    assert y.shape == y_ref.shape and y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, y_ref, dtype, "output")
    g = torch.randn_like(y_ref)
    y.backward(g)
    y_ref.backward(g)
    assert_close(xs[0].grad, ws[0].grad, dtype, "input gradient")
    assert_close(xs[1].grad, ws[1].grad, dtype, "weight gradient")


@pytest.mark.parametrize("bias", [False, True], ids=["no_bias", "bias"])
def test_conv_transpose2d_kernel_tiles_streamed_output(bias, threads):
    """An output of 16 MB or more leaves the patch GEMM through non-temporal stores (conv_patch_input.cpp): whole
    aligned runs of the channels_last weight's patch rows, ordinary copies otherwise (65 channels)."""
    for cout in (64, 65):
        x = torch.randn(1, 8, 128, 128).contiguous(memory_format=torch.channels_last)
        w = torch.randn(8, cout, 2, 2).contiguous(memory_format=torch.channels_last)
        b = torch.randn(cout) if bias else None
        y = fastconv.nn.functional.conv_transpose2d(x, w, b, 2)
        y_ref = F.conv_transpose2d(x, w, b, 2)
        assert y.is_contiguous(memory_format=torch.channels_last)
        assert_close(y, y_ref, torch.float32, "output")


# The channels_last direct forward (conv_implicit_nhwc.cpp) on short rows: rows of 2-5 output pixels computed
# several rows per tile (stacks of up to 7, 4, 3 and 2 rows, split evenly over a band, a leftover single row),
# and odd pixel counts per tile (7, 13: exact tiles, no padding row), a full 14-pixel tile. Strided and
# unstrided, both panel widths (K <= 16: one vector), groups, reflect padding, NCHW inputs that are switched to
# channels_last for it.
STACKED_ROW_CASES = {
    "w2_s2": ((3, 16, 5, 4), (40, 3, 3), (2, 2), (1, 1, 1, 1), 1, "zeros"),
    "w3_s2_k16": ((2, 24, 15, 6), (16, 3, 3), (2, 2), (1, 1, 1, 1), 1, "zeros"),
    "w4_s2_4x4": ((2, 32, 8, 8), (48, 4, 4), (2, 2), (1, 1, 1, 1), 1, "zeros"),
    "w5_s2_5x5": ((1, 20, 10, 10), (36, 3, 3), (2, 2), (1, 1, 1, 1), 1, "reflect"),
    "w4_s1_groups": ((2, 32, 9, 6), (64, 3, 3), (1, 1), (0, 0, 0, 0), 2, "zeros"),
    "w7_s2_odd": ((2, 24, 13, 13), (40, 3, 3), (2, 2), (1, 1, 1, 1), 1, "zeros"),
    "w13_s1_odd": ((1, 16, 6, 15), (40, 3, 3), (1, 1), (0, 0, 0, 0), 1, "replicate"),
    "w18_5x5": ((1, 24, 9, 18), (40, 5, 5), (1, 1), (2, 2, 2, 2), 1, "zeros"),  # 14 + 4 pixels
}


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(STACKED_ROW_CASES))
def test_implicit_forward_short_rows(case, dtype, channels_last, threads):
    shape, kshape, stride, pads, groups, mode = STACKED_ROW_CASES[case]
    run_case(shape, kshape, stride, pads, (1, 1), groups, mode, channels_last=channels_last, dtype=dtype)


# Zero padding: kernel rows that read only padding rows for every output row of a tile are skipped by the
# channels_last direct convolution (conv_implicit_nhwc.cpp live_kernel_rows: forward, and input gradients as
# forwards of the flipped kernel, by output phase when strided) and by its weight gradient (conv_implicit_nhwc_weight.cpp
# live_rows); NCHW column matrices of stride-1 and -2 zero-padded rows are gathered by vector (im2col.cpp). The
# cases put output rows near and beyond the padded borders: rows whose every tap reads padding (bias only), stacks
# of short rows, one-vector (row_taps) tiles, dilated kernel rows, stride 2 with rows of several vectors.
PADDING_ROW_CASES = {
    "5x5_pad2_16ch": ((2, 16, 14, 14), (32, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1)),  # one-vector weight gradient
    "pad_beyond_kernel": ((2, 32, 6, 9), (32, 3, 3), (1, 1), (4, 5, 1, 3), (1, 1)),
    "stacked_short_rows": ((2, 32, 9, 4), (40, 3, 3), (1, 1), (3, 2, 1, 1), (1, 1)),
    "row_taps_16": ((2, 16, 10, 20), (16, 5, 5), (1, 1), (3, 1, 2, 2), (1, 1)),
    "dilated_rows": ((1, 32, 13, 12), (32, 3, 3), (1, 1), (4, 4, 2, 2), (3, 1)),
    "4x4_s2_phases": ((2, 24, 15, 14), (48, 4, 4), (2, 2), (3, 3, 1, 1), (1, 1)),
    "s2_rows_of_vectors": ((2, 8, 9, 70), (16, 3, 3), (2, 2), (1, 1, 2, 1), (1, 2)),
    "s1_rows_of_vectors": ((1, 8, 5, 41), (12, 3, 5), (1, 1), (2, 0, 3, 1), (1, 1)),
}


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", list(PADDING_ROW_CASES))
def test_zero_padding_rows(case, dtype, channels_last, threads):
    shape, kshape, stride, pads, dil = PADDING_ROW_CASES[case]
    run_case(shape, kshape, stride, pads, dil, channels_last=channels_last, dtype=dtype)


# 3-channel stems: NCHW ones on 96x96 outputs or more run as the channels_last direct convolution (its tiles write
# the NCHW planes; the 3 input planes interleaved into pixels, transpose.h), smaller ones in the direct few-channel
# kernel; channels_last ones in the channels_last direct convolution. A 3-channel output goes back from pixels to
# planes (the NCHW transposed convolution below runs as channels_last output phases).
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("size", [192, 40], ids=["96x96_out", "20x20_out"])
def test_three_channel_stems(size, dtype, channels_last, threads):
    run_case((1, 3, size, size + 1), (16, 7, 7), (2, 2), (3, 3, 3, 3), channels_last=channels_last, dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_three_channel_transposed_output(dtype, threads):
    x = torch.randn(2, 16, 9, 8, dtype=dtype, requires_grad=True)
    w = torch.randn(16, 3, 4, 4, dtype=dtype, requires_grad=True)
    y = fastconv.nn.functional.conv_transpose2d(x, w, None, stride=2, padding=1)
    y_ref = F.conv_transpose2d(x, w, None, stride=2, padding=1)
    assert_close(y, y_ref, dtype, "output")
    g = torch.randn_like(y_ref)
    for name, a, e in zip(("grad_input", "grad_weight"), torch.autograd.grad(y, (x, w), g),
                          torch.autograd.grad(y_ref, (x, w), g)):
        assert_close(a, e, dtype, name)


def pytest_in_subprocess(env, *args):
    """The pytest output of `args` run in a fresh process with `env` added to the environment (settings the
    kernels read once per process)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(**env), timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res.stdout


def passed_count(out):
    """The number of tests a pytest run's summary line says passed."""
    m = re.search(r"\n(\d+) passed", out)
    return int(m.group(1)) if m else 0


@pytest.mark.skipif(fastconv.build_info()["simd"] != "AVX-512", reason="the AVX-512 tiles only")
@pytest.mark.parametrize("setting", ["0", "1"], ids=["register", "embedded"])
def test_implicit_forward_both_broadcast_forms(setting):
    """The direct tiles broadcast their inputs inside the FMAs on AMD and into registers on Intel
    (csrc/cpu/cpu_tuning.h); both forms, the one this CPU does not pick included: the short-row and odd-tile
    cases above in a process with FASTCONV_FMA_EMBEDDED_BROADCAST set."""
    out = pytest_in_subprocess({"FASTCONV_FMA_EMBEDDED_BROADCAST": setting}, __file__,
                               "-k", "test_implicit_forward_short_rows")
    assert passed_count(out) >= 64, out[-1000:]  # 8 cases x 2 dtypes x 2 layouts x 2 thread counts


@pytest.mark.parametrize("setting", ["0", "1"], ids=["cached", "nontemporal"])
def test_large_results_both_store_forms(setting):
    """Large results go out through non-temporal stores on AMD and ordinary ones on Intel (cpu_tuning.h); both
    forms, whichever this CPU picks: the streamed-output cases of this file and of the pooling tests, the
    channels_last depthwise forwards (forward_cols) and the small-group ones, in a process with
    FASTCONV_NONTEMPORAL_STORES set."""
    pool_tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test_pool_threads.py")
    out = pytest_in_subprocess({"FASTCONV_NONTEMPORAL_STORES": setting}, __file__, pool_tests,
                               "-k", "streamed or streaming_stores or (test_depthwise and nhwc and cols) or "
                               "(test_small_group and nhwc and not same)")
    # 9 streamed, 6 depthwise cases x 2 dtypes x 2 thread counts, 8 small-group cases x 2 dtypes x 2 thread counts
    assert passed_count(out) >= 65, out[-1000:]
