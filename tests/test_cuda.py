"""fastconv's CUDA kernels: every op against torch on CUDA and against fastconv on the CPU, in float16,
bfloat16, float32 and float64, contiguous / channels_last / non-contiguous; gradcheck in float64 on CUDA;
torch.library.opcheck of every op on CUDA samples; torch.compile(fullgraph=True); determinism; errors.

Skipped as a whole without a CUDA device (or with a fastconv built without its CUDA kernels).
FASTCONV_CUDA_LARGE=1 also runs the > 2^31-element (64-bit indexing) cases (about 10 GB of GPU memory).
"""
import os

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

import fastconv

CUDA_READY = torch.cuda.is_available() and fastconv.build_info()["cuda_built"]
pytestmark = pytest.mark.skipif(not CUDA_READY, reason="needs a CUDA device and fastconv built with CUDA")

FC = fastconv.nn.functional
OPS = torch.ops.fastconv
DEV = "cuda"
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
LAYOUTS = ["contiguous", "channels_last", "noncontig"]
# max|got - ref| <= tol * max|ref|. float16/bfloat16: both sides round their inputs/outputs to 16 bits.
TOL = {torch.float16: 4e-3, torch.bfloat16: 3e-2, torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.fixture(autouse=True)
def _no_tf32():
    """torch's float32 reference in full precision (fastconv only uses TF32 when these flags allow it)."""
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def close(got, ref, dtype, what=""):
    assert got.shape == ref.shape, f"{what}: shape {tuple(got.shape)} != {tuple(ref.shape)}"
    assert got.dtype == ref.dtype, f"{what}: dtype {got.dtype} != {ref.dtype}"
    if ref.numel() == 0:
        return
    scale = max(ref.double().abs().max().item(), 1e-6)
    err = (got.double().cpu() - ref.double().cpu()).abs().max().item()
    assert err <= TOL[dtype] * scale, f"{what}: max abs error {err:.3g} > {TOL[dtype]:.0e} * {scale:.3g}"


def rand(*shape, dtype=torch.float32, layout="contiguous", grad=False):
    """Random values on the GPU in the requested memory layout (noncontig: a strided slice)."""
    g = torch.Generator().manual_seed(hash(shape) % 2**31)
    t = torch.randn(*shape, generator=g, dtype=torch.float64)
    if layout == "noncontig" and len(shape) >= 3:
        big = torch.randn(*shape[:-1], shape[-1] * 2, generator=g, dtype=torch.float64)
        big[..., ::2] = t
        t = big.to(DEV, dtype)[..., ::2]
    else:
        t = t.to(DEV, dtype)
        if layout == "channels_last" and t.dim() == 4:
            t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_(grad)


def run_fwd_bwd(fn, inputs, gy_seed=0):
    """Output and gradients of every input for a fixed random grad_output."""
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    y = fn(*inputs)
    g = torch.Generator().manual_seed(gy_seed)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device, y.dtype)
    grads = torch.autograd.grad(y, inputs, gy)
    return (y.detach(), *grads)


def compare_three_ways(fc_fn, torch_fn, inputs, dtype, what):
    """fastconv CUDA vs torch CUDA (same dtype) and vs fastconv CPU (float64 on the same values)."""
    got = run_fwd_bwd(fc_fn, inputs)
    ref = run_fwd_bwd(torch_fn, inputs)
    for i, (a, b) in enumerate(zip(got, ref)):
        close(a, b, dtype, f"{what} vs torch [{i}]")
        assert a.device.type == "cuda"
    cpu = run_fwd_bwd(fc_fn, [t.detach().cpu().double() for t in inputs])
    for i, (a, b) in enumerate(zip(got, cpu)):
        close(a.double(), b, dtype, f"{what} vs fastconv cpu [{i}]")


# ---------------------------------------------------------------- convolution

CONV_CASES = [  # (N, C, H, W, K, kernel, stride, padding, dilation, groups)
    (2, 3, 9, 8, 4, 3, 1, 1, 1, 1),
    (2, 4, 10, 9, 6, (3, 2), (2, 1), (1, 0), (1, 2), 2),
    (1, 8, 7, 7, 8, 3, 1, 1, 1, 8),       # depthwise
    (2, 16, 8, 8, 32, 3, 1, 1, 1, 1),     # tensor-core path (fp16/bf16 NHWC)
    (3, 32, 9, 7, 96, 3, 2, 1, 1, 2),     # tensor-core path: groups, partial M and N tiles
    (2, 24, 13, 11, 80, (2, 3), 1, (1, 2), (2, 1), 1),
    (2, 32, 6, 6, 16, 1, 2, 0, 1, 1),     # 1x1 stride 2
    (0, 3, 5, 5, 2, 3, 1, 1, 1, 1),       # empty batch
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:5])))
def test_conv2d(case, layout, dtype):
    N, C, H, W, K, k, s, p, d, g = case
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rand(N, C, H, W, dtype=dtype, layout=layout)
    w = rand(K, C // g, kh, kw, dtype=dtype)
    b = rand(K, dtype=dtype)
    compare_three_ways(lambda x, w, b: FC.conv2d(x, w, b, s, p, d, g),
                       lambda x, w, b: F.conv2d(x, w, b, s, p, d, g), [x, w, b], dtype, f"conv2d {case}")


# Shapes the tensor-core implicit GEMMs take (csrc/cuda/tensor_core): ResNet-50's 3x3 and 1x1 (with its stride-2
# downsample, which runs the strided input gradient), dilation, asymmetric channel counts and partial tiles.
TC_CASES = [  # (N, C, H, W, K, kernel, stride, padding, dilation)
    (2, 64, 14, 14, 64, 3, 1, 1, 1),
    (2, 64, 14, 14, 128, 1, 2, 0, 1),
    (2, 256, 7, 7, 64, 1, 1, 0, 1),
    (3, 32, 15, 13, 48, 3, 2, 1, 1),
    (2, 16, 12, 11, 8, 5, 1, 4, 2),
    (4, 128, 16, 16, 256, 3, 1, 1, 1),   # several k-tiles: split-K weight gradient
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
@pytest.mark.parametrize("case", TC_CASES, ids=lambda c: "x".join(map(str, c[:5])))
def test_conv2d_tensor_cores(case, layout, dtype):
    """float16 / bfloat16 through the tensor cores: channels_last directly, NCHW through a transposed copy."""
    N, C, H, W, K, k, s, p, d = case
    x = rand(N, C, H, W, dtype=dtype, layout=layout)
    w = rand(K, C, k, k, dtype=dtype)
    b = rand(K, dtype=dtype)
    got = run_fwd_bwd(lambda x, w, b: FC.conv2d(x, w, b, s, p, d), [x, w, b])
    ref = run_fwd_bwd(lambda x, w, b: F.conv2d(x, w, b, s, p, d), [x, w, b])
    for i, (a, r) in enumerate(zip(got, ref)):
        close(a, r, dtype, f"conv2d {case} [{i}]")
    assert got[0].is_contiguous(memory_format=torch.channels_last) == (layout == "channels_last")
    x2 = rand(N, C, H, W, dtype=dtype, layout=layout)
    assert torch.equal(run_fwd_bwd(lambda x, w, b: FC.conv2d(x, w, b, s, p, d), [x2, w, b])[2], got[2]), \
        "weight gradient not deterministic"


@pytest.mark.parametrize("case", TC_CASES[:2], ids=lambda c: "x".join(map(str, c[:5])))
def test_conv2d_tf32_follows_torch_flags(case):
    """float32 stays exact by default; with torch.backends.cudnn.allow_tf32 it runs on TF32 tensor cores: within
    TF32's error of the float64 result, and not the exact float32 one (so the tensor-core path really ran)."""
    N, C, H, W, K, k, s, p, d = case
    x = rand(N, C, H, W, layout="channels_last")
    w = rand(K, C, k, k)
    exact = F.conv2d(x.double(), w.double(), None, s, p, d)
    y32 = FC.conv2d(x, w, None, s, p, d)
    close(y32, exact.float(), torch.float32, "float32 without TF32")
    torch.backends.cudnn.allow_tf32 = True
    y_tf32 = FC.conv2d(x, w, None, s, p, d)
    gx, gw = torch.autograd.grad(FC.conv2d(x.requires_grad_(), w.requires_grad_(), None, s, p, d).sum(), [x, w])
    torch.backends.cudnn.allow_tf32 = False
    scale = exact.abs().max().item()
    err = (y_tf32.double() - exact).abs().max().item()
    assert 1e-6 * scale < err <= 5e-3 * scale, f"TF32 error {err:.3g} (scale {scale:.3g})"
    gx_ref, gw_ref = torch.autograd.grad(F.conv2d(x.double(), w.double(), None, s, p, d).sum(), [x, w])
    assert (gx.double() - gx_ref).abs().max() <= 5e-3 * gx_ref.abs().max()
    assert (gw.double() - gw_ref).abs().max() <= 5e-3 * gw_ref.abs().max()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", [  # (N, C, H, W, kernel, stride, padding, dilation): MobileNet / EfficientNet
    (2, 32, 28, 28, 3, 1, 1, 1), (2, 96, 28, 27, 3, 2, 1, 1), (1, 24, 14, 14, 5, 1, 4, 2), (2, 6, 11, 9, 7, 2, 3, 1)],
    ids=lambda c: "x".join(map(str, c)))
def test_depthwise_conv(case, dtype):
    """The depthwise kernels (channels_last, groups == C == K): 16-byte channel vectors and single channels."""
    N, C, H, W, k, s, p, d = case
    x = rand(N, C, H, W, dtype=dtype, layout="channels_last")
    w = rand(C, 1, k, k, dtype=dtype)
    b = rand(C, dtype=dtype)
    compare_three_ways(lambda x, w, b: FC.conv2d(x, w, b, s, p, d, C),
                       lambda x, w, b: F.conv2d(x, w, b, s, p, d, C), [x, w, b], dtype, f"depthwise {case}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=str)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_conv2d_padding_modes(mode, layout, dtype):
    torch.manual_seed(0)
    ref = torch.nn.Conv2d(4, 6, 3, stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2, padding_mode=mode)
    mod = fastconv.nn.Conv2d(4, 6, 3, stride=(2, 1), padding=(2, 1), dilation=(1, 2), groups=2, padding_mode=mode)
    mod.load_state_dict(ref.state_dict())
    ref, mod = ref.to(DEV, dtype), mod.to(DEV, dtype)
    x = rand(2, 4, 7, 8, dtype=dtype, layout=layout)
    got = run_fwd_bwd(lambda x: mod(x), [x])
    want = run_fwd_bwd(lambda x: ref(x), [x])
    for a, b in zip(got, want):
        close(a, b, dtype, f"conv2d padding_mode={mode}")
    mod.zero_grad(), ref.zero_grad()
    mod(x).square().sum().backward()
    ref(x).square().sum().backward()
    close(mod.weight.grad, ref.weight.grad, dtype, "weight grad")
    close(mod.bias.grad, ref.bias.grad, dtype, "bias grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_conv1d(dtype):
    x, w, b = rand(3, 4, 17, dtype=dtype), rand(6, 2, 5, dtype=dtype), rand(6, dtype=dtype)
    compare_three_ways(lambda x, w, b: FC.conv1d(x, w, b, 2, 2, 2, 2),
                       lambda x, w, b: F.conv1d(x, w, b, 2, 2, 2, 2), [x, w, b], dtype, "conv1d")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("case", [  # (C_in, C_out, kernel, stride, padding, output_padding, groups, dilation)
    (4, 6, 3, 2, 1, 1, 2, 1),
    (3, 5, (2, 3), (1, 2), (0, 1), (0, 1), 1, (2, 1)),
    (8, 8, 3, 1, 1, 0, 8, 1),
], ids=str)
def test_conv_transpose2d(case, layout, dtype):
    cin, cout, k, s, p, op, g, d = case
    kh, kw = (k, k) if isinstance(k, int) else k
    x = rand(2, cin, 5, 6, dtype=dtype, layout=layout)
    w = rand(cin, cout // g, kh, kw, dtype=dtype)
    b = rand(cout, dtype=dtype)
    compare_three_ways(lambda x, w, b: FC.conv_transpose2d(x, w, b, s, p, op, g, d),
                       lambda x, w, b: F.conv_transpose2d(x, w, b, s, p, op, g, d), [x, w, b], dtype,
                       f"conv_transpose2d {case}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32], ids=str)
def test_conv_transpose1d(dtype):
    x, w, b = rand(2, 4, 9, dtype=dtype), rand(4, 3, 4, dtype=dtype), rand(3, dtype=dtype)
    compare_three_ways(lambda x, w, b: FC.conv_transpose1d(x, w, b, 3, 1, 2, 1, 1),
                       lambda x, w, b: F.conv_transpose1d(x, w, b, 3, 1, 2, 1, 1), [x, w, b], dtype,
                       "conv_transpose1d")


# ---------------------------------------------------------------- pooling

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("args", [  # (kernel, stride, padding, dilation, ceil_mode)
    (3, 2, 1, 1, False), ((3, 2), (2, 1), (1, 1), (1, 2), True), (2, 2, 0, 1, False)], ids=str)
@pytest.mark.parametrize("channels", [5, 16])  # 16 in channels_last: the 16-byte channel-vector kernels
def test_max_pool2d(args, layout, dtype, channels):
    k, s, p, d, c = args
    x = rand(2, channels, 11, 10, dtype=dtype, layout=layout)
    y, i = FC.max_pool2d(x, k, s, p, d, c, return_indices=True)
    y_ref, i_ref = F.max_pool2d(x, k, s, p, d, c, return_indices=True)
    close(y, y_ref, dtype, "max_pool2d values")
    assert torch.equal(i, i_ref), "max_pool2d indices differ from torch's"
    compare_three_ways(lambda x: FC.max_pool2d(x, k, s, p, d, c), lambda x: F.max_pool2d(x, k, s, p, d, c),
                       [x], dtype, f"max_pool2d {args}")


def test_max_pool2d_nan_and_ties():
    x = torch.tensor([[[[1.0, 1.0, float("nan")], [2.0, 2.0, float("nan")], [0.0, 5.0, 5.0]]]], device=DEV)
    for t in (x, x.contiguous(memory_format=torch.channels_last)):
        y, i = FC.max_pool2d(t, 2, 1, return_indices=True)
        y_ref, i_ref = F.max_pool2d(t.cpu(), 2, 1, return_indices=True)
        assert torch.equal(i.cpu(), i_ref)
        assert torch.allclose(y.cpu(), y_ref, equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("args", [  # (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    (3, 2, 1, False, True, None), ((3, 2), (2, 1), (1, 1), True, False, None), (2, 2, 0, True, True, 3)], ids=str)
@pytest.mark.parametrize("channels", [5, 16])
def test_avg_pool2d(args, layout, dtype, channels):
    k, s, p, c, cip, div = args
    x = rand(2, channels, 11, 10, dtype=dtype, layout=layout)
    compare_three_ways(lambda x: FC.avg_pool2d(x, k, s, p, c, cip, div), lambda x: F.avg_pool2d(x, k, s, p, c, cip, div),
                       [x], dtype, f"avg_pool2d {args}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
def test_pool1d_and_lp_pool(dtype):
    x = rand(2, 3, 15, dtype=dtype)
    compare_three_ways(lambda x: FC.max_pool1d(x, 3, 2, 1), lambda x: F.max_pool1d(x, 3, 2, 1), [x], dtype, "max_pool1d")
    compare_three_ways(lambda x: FC.avg_pool1d(x, 3, 2, 1), lambda x: F.avg_pool1d(x, 3, 2, 1), [x], dtype, "avg_pool1d")
    xp = rand(2, 3, 8, 9, dtype=dtype).abs() + 0.1
    compare_three_ways(lambda x: FC.lp_pool2d(x, 2.0, 3, 2), lambda x: F.lp_pool2d(x, 2.0, 3, 2), [xp], dtype, "lp_pool2d")
    compare_three_ways(lambda x: FC.lp_pool1d(x, 3.0, 2), lambda x: F.lp_pool1d(x, 3.0, 2), [xp[:, :, 0]], dtype,
                       "lp_pool1d")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_max_unpool2d(layout, dtype):
    x = rand(2, 3, 8, 9, dtype=dtype, layout=layout)
    y, i = F.max_pool2d(x, 2, 2, return_indices=True)
    # the indices follow y to the device of each leg (compare_three_ways also runs fastconv on the CPU)
    compare_three_ways(lambda y: FC.max_unpool2d(y, i.to(y.device), 2, 2, output_size=(8, 9)),
                       lambda y: F.max_unpool2d(y, i, 2, 2, output_size=(8, 9)), [y], dtype, "max_unpool2d")
    y1, i1 = F.max_pool1d(x[:, :, 0], 2, 2, return_indices=True)
    close(FC.max_unpool1d(y1, i1, 2, 2), F.max_unpool1d(y1, i1, 2, 2), dtype, "max_unpool1d")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("out", [(3, 4), (1, 1), (7, 13)], ids=str)
def test_adaptive_pool2d(out, layout, dtype):
    x = rand(2, 5, 7, 10, dtype=dtype, layout=layout)
    compare_three_ways(lambda x: FC.adaptive_avg_pool2d(x, out), lambda x: F.adaptive_avg_pool2d(x, out), [x], dtype,
                       f"adaptive_avg_pool2d {out}")
    compare_three_ways(lambda x: FC.adaptive_max_pool2d(x, out), lambda x: F.adaptive_max_pool2d(x, out), [x], dtype,
                       f"adaptive_max_pool2d {out}")
    _, i = FC.adaptive_max_pool2d(x, out, return_indices=True)
    _, i_ref = F.adaptive_max_pool2d(x, out, return_indices=True)
    assert torch.equal(i, i_ref)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64], ids=str)
def test_adaptive_pool1d(dtype):
    x = rand(2, 3, 11, dtype=dtype)
    compare_three_ways(lambda x: FC.adaptive_avg_pool1d(x, 4), lambda x: F.adaptive_avg_pool1d(x, 4), [x], dtype,
                       "adaptive_avg_pool1d")
    compare_three_ways(lambda x: FC.adaptive_max_pool1d(x, 4), lambda x: F.adaptive_max_pool1d(x, 4), [x], dtype,
                       "adaptive_max_pool1d")


# ---------------------------------------------------------------- gradcheck (float64 on CUDA)

def _g(*shape, cl=False):
    return rand(*shape, dtype=torch.float64, layout="channels_last" if cl else "contiguous", grad=True)


@pytest.mark.parametrize("cl", [False, True])
def test_gradcheck_conv(cl):
    x, w, b = _g(2, 4, 6, 5, cl=cl), _g(6, 2, 3, 2), _g(6)
    f = lambda x, w, b: FC.conv2d(x, w, b, (2, 1), 1, (1, 2), 2)  # noqa: E731
    assert gradcheck(f, (x, w, b))
    assert gradgradcheck(f, (x, w, b))
    for mode in ("reflect", "replicate", "circular"):
        g = lambda x, w: OPS.conv2d(x, w, None, [1, 1], [2, 1, 1, 2], [1, 1], 1, mode)  # noqa: E731
        assert gradcheck(g, (x, _g(3, 4, 3, 3)))
    t = lambda x, w, b: FC.conv_transpose2d(x, w, b, 2, 1, 1, 2)  # noqa: E731
    assert gradcheck(t, (x, _g(4, 3, 3, 3), _g(6)))


@pytest.mark.parametrize("cl", [False, True])
def test_gradcheck_pool(cl):
    x = _g(2, 3, 7, 6, cl=cl)
    assert gradcheck(lambda x: FC.max_pool2d(x, 3, 2, 1, 1, True), (x,))
    assert gradgradcheck(lambda x: FC.max_pool2d(x, 3, 2, 1, 1, True), (x,))
    assert gradcheck(lambda x: FC.avg_pool2d(x, 3, 2, 1, True, False), (x,))
    assert gradgradcheck(lambda x: FC.avg_pool2d(x, 3, 2, 1, True, False), (x,))
    assert gradcheck(lambda x: FC.adaptive_avg_pool2d(x, (3, 4)), (x,))
    assert gradcheck(lambda x: FC.adaptive_max_pool2d(x, (3, 4)), (x,))
    assert gradgradcheck(lambda x: FC.adaptive_max_pool2d(x, (3, 4)), (x,))
    y, i = F.max_pool2d(x.detach(), 2, 2, return_indices=True)
    assert gradcheck(lambda y: FC.max_unpool2d(y, i, 2, 2, output_size=(7, 6)), (y.requires_grad_(),))


# ---------------------------------------------------------------- opcheck on CUDA

def _r(*shape, cl=False, dtype=torch.float64):
    return rand(*shape, dtype=dtype, layout="channels_last" if cl else "contiguous", grad=True)


def _opcheck_samples():
    s = []
    for cl in (False, True):
        x = _r(2, 4, 6, 5, cl=cl)
        s.append(("conv2d", (x, _r(6, 2, 3, 3), _r(6), [1, 1], [1, 1, 1, 1], [1, 1], 2, "zeros")))
        s.append(("conv2d", (x, _r(4, 4, 2, 3), None, [2, 1], [0, 1, 1, 2], [1, 2], 1, "reflect")))
        s.append(("conv2d_backward_input", (_r(2, 6, 6, 5, cl=cl), _r(6, 2, 3, 3), [2, 4, 6, 5], [1, 1], [1, 1, 1, 1],
                                            [1, 1], 2, "circular")))
        s.append(("conv2d_backward_weight", (_r(2, 6, 6, 5, cl=cl), x, [6, 2, 3, 3], [1, 1], [1, 1, 1, 1], [1, 1], 2,
                                             "replicate")))
        s.append(("conv_backward_bias", (_r(2, 6, 4, 3, cl=cl),)))
        s.append(("conv_transpose2d", (x, _r(4, 3, 3, 3), _r(6), [2, 2], [1, 1], [1, 0], 2, [1, 1])))
        y, i = F.max_pool2d(x.detach(), 2, 2, return_indices=True)
        s.append(("max_pool2d_with_indices", (x, [3, 2], [2, 1], [1, 1], [1, 1], True)))
        s.append(("max_pool2d", (x.detach(), [3, 2], [2, 1], [1, 1], [1, 1], True)))
        s.append(("max_pool2d_backward", (_r(*y.shape, cl=cl), i, [6, 5])))
        s.append(("max_pool2d_backward_window", (_r(*y.shape, cl=cl), i, [6, 5], [2, 2], [2, 2], [0, 0], [1, 1])))
        s.append(("max_pool2d_gather", (x, i)))
        s.append(("max_unpool2d", (y.clone().requires_grad_(), i, [6, 5])))
        s.append(("avg_pool2d", (x, [3, 3], [2, 2], [1, 1], True, False, None)))
        s.append(("avg_pool2d_backward", (_r(2, 4, 4, 3, cl=cl), [6, 5], [3, 3], [2, 2], [1, 1], True, False, 2)))
        ya, ia = F.adaptive_max_pool2d(x.detach(), (4, 3), return_indices=True)
        s.append(("adaptive_avg_pool2d", (x, [4, 3])))
        s.append(("adaptive_avg_pool2d_backward", (_r(2, 4, 4, 3, cl=cl), [2, 4, 6, 5], cl)))
        s.append(("adaptive_max_pool2d", (x, [4, 3])))
        s.append(("adaptive_max_pool2d_backward", (_r(2, 4, 4, 3, cl=cl), ia, [2, 4, 6, 5], cl)))
        s.append(("adaptive_max_pool2d_gather", (x, ia)))
    s.append(("conv2d", (_r(2, 4, 6, 5, dtype=torch.float16), _r(6, 4, 3, 3, dtype=torch.float16), None, [1, 1],
                         [1, 1, 1, 1], [1, 1], 1, "zeros")))
    return s


OPCHECK_SAMPLES = _opcheck_samples() if CUDA_READY else []


def test_every_op_has_cuda_opcheck_samples():
    ops = {n for n in dir(OPS) if not n.startswith("_") and isinstance(getattr(OPS, n), torch._ops.OpOverloadPacket)}
    assert ops == {name for name, _ in OPCHECK_SAMPLES}


@pytest.mark.parametrize("i", range(len(OPCHECK_SAMPLES)))
def test_opcheck_cuda(i):
    name, args = OPCHECK_SAMPLES[i]
    # test_aot_dispatch_dynamic compiles; keep the default set, it is fast on these shapes.
    torch.library.opcheck(getattr(OPS, name).default, args)


# ---------------------------------------------------------------- torch.compile

def test_compile_fullgraph():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        fastconv.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), fastconv.nn.MaxPool2d(2),
        fastconv.nn.Conv2d(8, 8, 3, padding=1, groups=2, padding_mode="reflect"), fastconv.nn.AvgPool2d(2),
        fastconv.nn.ConvTranspose2d(8, 4, 2, stride=2), fastconv.nn.AdaptiveAvgPool2d((2, 3)),
    ).to(DEV)
    x = rand(2, 3, 16, 16)
    eager = model(x)
    eager.sum().backward()
    g_eager = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    close(out.detach(), eager.detach(), torch.float32, "compiled forward")
    for a, b in zip((p.grad for p in model.parameters()), g_eager):
        close(a, b, torch.float32, "compiled grad")


# ---------------------------------------------------------------- determinism, errors, streams

@pytest.fixture
def deterministic():
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(old)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
def test_deterministic_scatter(deterministic, dtype):
    x = rand(4, 8, 33, 31, dtype=dtype, layout="channels_last")
    outs = []
    for _ in range(3):
        xi = x.detach().clone().requires_grad_(True)
        FC.max_pool2d(xi, 3, 1, 1).sum().backward()  # overlapping windows: many sources per element
        outs.append(xi.grad)
    assert all(torch.equal(outs[0], o) for o in outs[1:])
    xc = x.detach().cpu().float().requires_grad_(True)
    FC.max_pool2d(xc, 3, 1, 1).sum().backward()
    close(outs[0].float(), xc.grad, dtype, "deterministic scatter vs cpu")


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16], ids=str)
def test_autocast_dtypes_like_torch(low):
    """Under torch.autocast("cuda") the convolutions compute in the region's dtype and pooling keeps its input's, as
    torch's own ops: the same output dtypes (an earlier version cast everything to float32), values within that
    dtype's tolerance, gradients in the parameters' dtype."""
    x = rand(2, 16, 9, 9, layout="channels_last")
    conv_fc = fastconv.nn.Conv2d(16, 32, 3, padding=1).to(DEV)
    conv_ref = torch.nn.Conv2d(16, 32, 3, padding=1).to(DEV)
    conv_ref.load_state_dict(conv_fc.state_dict())
    outs = []
    for conv, pool in ((conv_fc, FC.max_pool2d), (conv_ref, F.max_pool2d)):
        with torch.autocast("cuda", dtype=low):
            y = conv(x)
            z = pool(y, 2)
        z.float().sum().backward()
        outs.append((y, z, conv.weight.grad))
    (y, z, gw), (y_ref, z_ref, gw_ref) = outs
    assert y.dtype == y_ref.dtype == low and z.dtype == z_ref.dtype == low
    assert gw.dtype == gw_ref.dtype == torch.float32
    close(y.float(), y_ref.float(), low, "conv under autocast")
    close(z.float(), z_ref.float(), low, "max_pool under autocast")
    close(gw, gw_ref, low, "weight gradient under autocast")
    with torch.autocast("cuda", dtype=low):  # pooling of a float32 tensor stays float32, as torch's
        assert FC.avg_pool2d(x, 2).dtype == F.avg_pool2d(x, 2).dtype == torch.float32


BAD_INDEX_CHILD = """
import sys, torch, fastconv
x = torch.randn(1, 2, 4, 4, device="cuda")
y, i = fastconv.nn.functional.max_pool2d(x, 2, return_indices=True)
i[0, 1, 1, 1] = 99
ops = torch.ops.fastconv
run = {"gather": lambda: ops.max_pool2d_gather(x, i), "unpool": lambda: ops.max_unpool2d(y, i, [4, 4]),
       "backward": lambda: ops.max_pool2d_backward(y, i, [4, 4]),
       "adaptive_gather": lambda: ops.adaptive_max_pool2d_gather(x, i)}[sys.argv[1]]
run()
torch.cuda.synchronize()
print("no error")
"""


@pytest.mark.parametrize("op", ["gather", "unpool", "backward", "adaptive_gather"])
def test_bad_indices_stop_the_kernel(op):
    """An index outside its plane stops the kernel with a device-side assertion, as torch's own max_unpool does
    (reading a flag back would synchronise the stream on every call and breaks CUDA-graph capture). It leaves the
    CUDA context unusable, so it runs in a child process."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", BAD_INDEX_CHILD, op], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no error" not in r.stdout, r.stdout + r.stderr
    assert "device-side assert" in r.stderr, r.stderr
    assert "invalid pooling index 99" in r.stdout, r.stdout


def test_errors_name_the_argument():
    x = rand(1, 2, 5, 5)
    with pytest.raises(TypeError, match="same dtype"):
        OPS.conv2d(x, rand(3, 2, 3, 3, dtype=torch.float64), None, [1, 1], [0, 0, 0, 0], [1, 1], 1, "zeros")
    with pytest.raises(RuntimeError, match="same device"):
        OPS.conv2d(x, torch.randn(3, 2, 3, 3), None, [1, 1], [0, 0, 0, 0], [1, 1], 1, "zeros")
    with pytest.raises(TypeError, match="float16, bfloat16, float32 or float64"):
        OPS.avg_pool2d(x.int(), [2, 2], [2, 2], [0, 0], False, True, None)


def test_runs_on_current_stream_and_device():
    s = torch.cuda.Stream()
    x, w = rand(2, 4, 16, 16), rand(8, 4, 3, 3)
    with torch.cuda.stream(s):
        y = FC.conv2d(x, w, padding=1)
        p = FC.max_pool2d(y, 2)
    s.synchronize()
    close(p, F.max_pool2d(F.conv2d(x, w, padding=1), 2), torch.float32, "side stream")


# ---------------------------------------------------------------- 64-bit indexing (opt-in: big)

@pytest.mark.skipif(os.environ.get("FASTCONV_CUDA_LARGE") != "1", reason="set FASTCONV_CUDA_LARGE=1 (~10 GB)")
def test_more_than_2_31_elements():
    n = 2**31 + 2**20
    x = torch.randn(1, 1, 2, n // 2, device=DEV, dtype=torch.float16)  # > 2^31 elements
    y = FC.max_pool2d(x, (2, 2))
    close(y[..., -1000:], F.max_pool2d(x[..., -2000:], (2, 2)), torch.float16, "max_pool2d tail")
    ya = FC.avg_pool2d(x, (1, 2))
    close(ya[..., -1000:], F.avg_pool2d(x[..., -2000:], (1, 2)), torch.float16, "avg_pool2d tail")
    del y, ya
    xc = x.view(1, 2, 1, n // 2).contiguous(memory_format=torch.channels_last)
    w = torch.randn(2, 2, 1, 1, device=DEV, dtype=torch.float16)
    yc = FC.conv2d(xc, w)
    close(yc[..., -1000:], F.conv2d(xc[..., -1000:], w), torch.float16, "conv2d 1x1 tail")
