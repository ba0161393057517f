// Compares the CUDA kernels (csrc/cuda) with the CPU kernels (csrc/cpu) on random data: convolution
// forward / grad-input / grad-weight / bias over padding modes, groups, strides, dilations, asymmetric
// padding and a grad_output smaller than the formula's size; the depthwise kernels; the tensor-core implicit GEMMs
// (float16 / bfloat16 / TF32, both tile sizes, split-K determinism); max / avg / adaptive pooling, the index
// scatter (atomic and deterministic), the max-pool backward gather and the gather; float and double against the CPU, float16 / bfloat16 against the
// CPU's float32 on the same (rounded) inputs. Both layouts everywhere.
// Without a CUDA device it prints a message and exits 0 (so ctest passes on GPU-less CI machines).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <string>
#include <vector>

#include "common/adaptive_pool_params.h"
#include "common/pool_params.h"
#include "cpu/pool/adaptive_pool_kernels.h"
#include "cpu/conv/conv_kernels.h"
#include "cpu/pool/pool_kernels.h"
#include "cuda/conv_kernels.cuh"
#include "cuda/pool_kernels.cuh"
#include "test_util.h"

using namespace fastconv;
using fastconv_test::max_rel_error;
using fastconv_test::random_vector;

namespace {

void ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
    std::exit(2);
  }
}

// A device copy of a host vector (also used for outputs: pre-filled with NaN bytes so a kernel that does
// not write every element fails).
template <typename T>
struct Dev {
  T* ptr = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    ok(cudaMalloc(&ptr, (n ? n : 1) * sizeof(T)), "cudaMalloc");
    ok(cudaMemset(ptr, 0xff, (n ? n : 1) * sizeof(T)), "cudaMemset");
  }
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) {
    ok(cudaMemcpy(ptr, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), "H2D");
  }
  ~Dev() { cudaFree(ptr); }
  Dev(const Dev&) = delete;
  std::vector<T> host() const {
    std::vector<T> h(n);
    ok(cudaDeviceSynchronize(), "kernel");
    ok(cudaMemcpy(h.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), "D2H");
    return h;
  }
};

// Host conversions for the 16-bit types (round to nearest even, as the device does).
template <typename T> T from_float(float v);
template <> __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> float from_float<float>(float v) { return v; }
float as_float(float v) { return v; }
float as_float(__half v) { return __half2float(v); }
float as_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
std::vector<T> convert(const std::vector<float>& v) {
  std::vector<T> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = from_float<T>(v[i]);
  return r;
}
template <typename T>
std::vector<float> to_float(const std::vector<T>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = as_float(v[i]);
  return r;
}

ConvParams conv(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int64_t stride,
                int64_t pad_t, int64_t pad_b, int64_t pad_l, int64_t pad_r, int64_t dil, int64_t groups, PaddingMode mode,
                Layout layout, int64_t crop = 0) {
  ConvParams p;
  p.N = N, p.C = C, p.H = H, p.W = W, p.K = K, p.R = R, p.S = S;
  p.stride_h = p.stride_w = stride;
  p.pad_t = pad_t, p.pad_b = pad_b, p.pad_l = pad_l, p.pad_r = pad_r;
  p.dil_h = p.dil_w = dil;
  p.groups = groups;
  p.mode = mode;
  p.layout = layout;
  p.OH = conv_out_size(H, pad_t, pad_b, R, stride, dil) - crop;
  p.OW = conv_out_size(W, pad_l, pad_r, S, stride, dil) - crop;
  return p;
}

std::string name(const ConvParams& p) {
  char b[256];
  std::snprintf(b, sizeof b, "N%lld C%lld %lldx%lld K%lld %lldx%lld s%lld pad(%lld,%lld,%lld,%lld) d%lld g%lld mode%d %s",
                (long long)p.N, (long long)p.C, (long long)p.H, (long long)p.W, (long long)p.K, (long long)p.R,
                (long long)p.S, (long long)p.stride_h, (long long)p.pad_t, (long long)p.pad_b, (long long)p.pad_l,
                (long long)p.pad_r, (long long)p.dil_h, (long long)p.groups, int(p.mode),
                p.layout == Layout::NCHW ? "NCHW" : "NHWC");
  return b;
}

// float / double: CUDA vs CPU in the same type.
template <typename T>
void check_conv_exact_type(const ConvParams& p, double tol) {
  const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.K * p.OH * p.OW, nw = p.K * (p.C / p.groups) * p.R * p.S;
  const auto x = random_vector<T>(nx, 1), w = random_vector<T>(nw, 2), b = random_vector<T>(p.K, 3),
             gy = random_vector<T>(ny, 4);
  std::vector<T> y(ny), gx(nx), gw(nw), gb(p.K);
  cpu::conv_forward_direct<T>(p, x.data(), w.data(), b.data(), y.data());
  cpu::conv_backward_input_direct<T>(p, gy.data(), w.data(), gx.data());
  cpu::conv_backward_weight_direct<T>(p, x.data(), gy.data(), gw.data());
  cpu::conv_backward_bias<T>(p, gy.data(), gb.data());
  Dev<T> dx(x), dw(w), db(b), dgy(gy), dy(ny), dgx(nx), dgw(nw), dgb(p.K);
  const cuda::ConvOptions opt;
  const size_t wsb = cuda::conv_backward_weight_workspace<T>(p, opt);
  Dev<unsigned char> ws(wsb);
  cuda::conv_forward<T>(p, dx.ptr, dw.ptr, db.ptr, dy.ptr, opt, nullptr);
  cuda::conv_backward_input<T>(p, dgy.ptr, dw.ptr, dgx.ptr, opt, nullptr);
  cuda::conv_backward_weight<T>(p, dx.ptr, dgy.ptr, dgw.ptr, opt, nullptr, wsb ? ws.ptr : nullptr, wsb);
  cuda::conv_backward_bias<T>(p, dgy.ptr, dgb.ptr, nullptr);
  const std::string n = name(p);
  double e;
  FC_CHECK((e = max_rel_error(dy.host(), y)) <= tol, "forward %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(dgx.host(), gx)) <= tol, "backward_input %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(dgw.host(), gw)) <= tol, "backward_weight %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(dgb.host(), gb)) <= tol, "backward_bias %s err %g", n.c_str(), e);
}

// float16 / bfloat16: CUDA on the rounded inputs vs the CPU's float32 on the same values.
template <typename T>
void check_conv_low_precision(const ConvParams& p, double tol) {
  const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.K * p.OH * p.OW, nw = p.K * (p.C / p.groups) * p.R * p.S;
  const auto x = convert<T>(random_vector<float>(nx, 5)), w = convert<T>(random_vector<float>(nw, 6)),
             gy = convert<T>(random_vector<float>(ny, 7));
  const auto xf = to_float(x), wf = to_float(w), gyf = to_float(gy);
  std::vector<float> y(ny), gx(nx), gw(nw);
  cpu::conv_forward_direct<float>(p, xf.data(), wf.data(), nullptr, y.data());
  cpu::conv_backward_input_direct<float>(p, gyf.data(), wf.data(), gx.data());
  cpu::conv_backward_weight_direct<float>(p, xf.data(), gyf.data(), gw.data());
  Dev<T> dx(x), dw(w), dgy(gy), dy(ny), dgx(nx), dgw(nw);
  const cuda::ConvOptions opt;
  const size_t wsb = cuda::conv_backward_weight_workspace<T>(p, opt);
  Dev<unsigned char> ws(wsb);
  cuda::conv_forward<T>(p, dx.ptr, dw.ptr, nullptr, dy.ptr, opt, nullptr);
  cuda::conv_backward_input<T>(p, dgy.ptr, dw.ptr, dgx.ptr, opt, nullptr);
  cuda::conv_backward_weight<T>(p, dx.ptr, dgy.ptr, dgw.ptr, opt, nullptr, wsb ? ws.ptr : nullptr, wsb);
  const std::string n = name(p) + (sizeof(T) == 2 && std::is_same_v<T, __half> ? " fp16" : " bf16");
  double e;
  FC_CHECK((e = max_rel_error(to_float(dy.host()), y)) <= tol, "forward %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(to_float(dgx.host()), gx)) <= tol, "backward_input %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(to_float(dgw.host()), gw)) <= tol, "backward_weight %s err %g", n.c_str(), e);
}

void conv_tests() {
  for (Layout l : {Layout::NCHW, Layout::NHWC}) {
    const std::vector<ConvParams> cases = {
        conv(2, 3, 7, 9, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, PaddingMode::Zeros, l),
        conv(2, 4, 8, 7, 6, 3, 2, 2, 1, 0, 2, 1, 2, 2, PaddingMode::Zeros, l),
        conv(1, 6, 9, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6, PaddingMode::Zeros, l),      // depthwise
        conv(2, 3, 6, 7, 5, 3, 3, 1, 2, 1, 1, 2, 1, 1, PaddingMode::Reflect, l),
        conv(2, 3, 5, 6, 5, 3, 3, 2, 2, 2, 3, 3, 1, 1, PaddingMode::Replicate, l),
        conv(1, 4, 5, 5, 4, 3, 3, 1, 2, 1, 2, 1, 2, 2, PaddingMode::Circular, l),
        conv(1, 2, 1, 1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, PaddingMode::Replicate, l),   // 1x1 input, replicate
        conv(2, 3, 9, 8, 4, 2, 3, 3, 0, 0, 0, 0, 1, 1, PaddingMode::Zeros, l, 1),   // grad_output cropped
        conv(0, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, PaddingMode::Zeros, l),      // empty batch
        conv(2, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, PaddingMode::Zeros, l),
        conv(2, 32, 10, 10, 16, 1, 1, 2, 0, 0, 0, 0, 1, 1, PaddingMode::Zeros, l),
        // tensor-core path (float16/bfloat16 NHWC): groups, reflect padding, partial M and N tiles
        conv(2, 32, 9, 7, 96, 3, 3, 2, 1, 1, 1, 1, 1, 2, PaddingMode::Reflect, l),
        conv(3, 24, 13, 11, 80, 2, 3, 1, 1, 0, 2, 1, 2, 1, PaddingMode::Zeros, l),
        // depthwise kernels (NHWC): 16-byte channel vectors (C 16), one channel (C 6), 5x5 dilated, 7x7 run-time
        // sized with asymmetric padding and a cropped grad_output
        conv(2, 16, 9, 10, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16, PaddingMode::Zeros, l),
        conv(2, 6, 11, 9, 6, 3, 3, 2, 1, 1, 1, 1, 1, 6, PaddingMode::Zeros, l),
        conv(1, 24, 12, 13, 24, 5, 5, 1, 4, 4, 4, 4, 2, 24, PaddingMode::Zeros, l),
        conv(2, 8, 15, 14, 8, 7, 7, 2, 3, 2, 1, 3, 1, 8, PaddingMode::Zeros, l, 1),
    };
    for (const auto& p : cases) {
      check_conv_exact_type<float>(p, 2e-5);
      check_conv_exact_type<double>(p, 1e-12);
      check_conv_low_precision<__half>(p, 4e-3);
      check_conv_low_precision<__nv_bfloat16>(p, 2e-2);
    }
  }
}

// ---- tensor-core implicit GEMMs (tensor_core/): NHWC, (K, R, S, C) weight, fused bias, split-K weight gradient --

// The tensor-core path on p against the CPU's float32 on the same (rounded) values; float runs as TF32. Requires the
// path to take p (a device of compute capability 8.0+), checks every element is written (NaN-filled outputs) and
// that two weight gradients are bit-identical (split-K's fixed-order reduction).
template <typename T>
void check_tensor_core(const ConvParams& p, double tol) {
  cuda::ConvOptions opt;
  opt.allow_tf32 = true;
  const std::string n = name(p) + " " + (std::is_same_v<T, float> ? "tf32" : std::is_same_v<T, __half> ? "fp16" : "bf16") +
                        " tiles " + std::getenv("FASTCONV_CUDA_TILES");
  ConvParams q = p;
  q.weight_rsc = true;
  const bool fwd = cuda::conv_uses_tensor_cores<T>(p, cuda::ConvPass::Forward, opt),
             bwd = cuda::conv_uses_tensor_cores<T>(p, cuda::ConvPass::BackwardInput, opt);
  const size_t wsb = cuda::conv_backward_weight_workspace<T>(p, opt);
  FC_CHECK(fwd && bwd && wsb > 0, "tensor-core path not taken: %s (fwd %d, bwd %d, ws %zu)", n.c_str(), fwd, bwd, wsb);
  if (!(fwd && bwd && wsb > 0)) return;
  const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.K * p.OH * p.OW, nw = p.K * p.C * p.R * p.S;
  const auto x = convert<T>(random_vector<float>(nx, 21)), w = convert<T>(random_vector<float>(nw, 22)),
             b = convert<T>(random_vector<float>(p.K, 23)), gy = convert<T>(random_vector<float>(ny, 24));
  const auto xf = to_float(x), wf = to_float(w), bf = to_float(b), gyf = to_float(gy);
  std::vector<T> w_krsc(nw);  // (K, C, R, S) -> (K, R, S, C)
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t rs = 0; rs < p.R * p.S; ++rs) w_krsc[(k * p.R * p.S + rs) * p.C + c] = w[(k * p.C + c) * p.R * p.S + rs];
  std::vector<float> y(ny), gx(nx), gw(nw);
  cpu::conv_forward_direct<float>(p, xf.data(), wf.data(), bf.data(), y.data());
  cpu::conv_backward_input_direct<float>(p, gyf.data(), wf.data(), gx.data());
  cpu::conv_backward_weight_direct<float>(p, xf.data(), gyf.data(), gw.data());
  Dev<T> dx(x), dw(w_krsc), db(b), dgy(gy), dy(ny), dgx(nx), dgw(nw), dgw2(nw);
  Dev<unsigned char> ws(wsb);
  cuda::conv_forward<T>(q, dx.ptr, dw.ptr, db.ptr, dy.ptr, opt, nullptr);
  cuda::conv_backward_input<T>(q, dgy.ptr, dw.ptr, dgx.ptr, opt, nullptr);
  cuda::conv_backward_weight<T>(p, dx.ptr, dgy.ptr, dgw.ptr, opt, nullptr, ws.ptr, wsb);
  cuda::conv_backward_weight<T>(p, dx.ptr, dgy.ptr, dgw2.ptr, opt, nullptr, ws.ptr, wsb);
  double e;
  FC_CHECK((e = max_rel_error(to_float(dy.host()), y)) <= tol, "tc forward %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(to_float(dgx.host()), gx)) <= tol, "tc backward_input %s err %g", n.c_str(), e);
  FC_CHECK((e = max_rel_error(to_float(dgw.host()), gw)) <= tol, "tc backward_weight %s err %g", n.c_str(), e);
  const auto g1 = dgw.host(), g2 = dgw2.host();
  FC_CHECK(std::memcmp(g1.data(), g2.data(), nw * sizeof(T)) == 0, "tc backward_weight %s not deterministic", n.c_str());
}

void tensor_core_tests() {
  int dev = 0, major = 0;
  ok(cudaGetDevice(&dev), "cudaGetDevice");
  ok(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev), "attribute");
  if (major < 8) {
    std::printf("test_cuda_kernels: compute capability %d < 8: tensor-core tests skipped\n", major);
    return;
  }
  const Layout l = Layout::NHWC;
  const std::vector<ConvParams> cases = {
      conv(2, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, PaddingMode::Zeros, l),    // ResNet 3x3
      conv(2, 64, 14, 14, 128, 1, 1, 2, 0, 0, 0, 0, 1, 1, PaddingMode::Zeros, l),   // 1x1 stride 2 (downsample)
      conv(3, 32, 15, 13, 48, 3, 3, 2, 1, 1, 1, 1, 1, 1, PaddingMode::Zeros, l),    // strided 3x3, partial tiles
      conv(2, 16, 12, 11, 8, 5, 5, 1, 4, 4, 4, 4, 2, 1, PaddingMode::Zeros, l),     // dilation 2
      conv(2, 24, 10, 9, 40, 3, 2, 1, 1, 0, 2, 1, 1, 1, PaddingMode::Zeros, l),     // asymmetric padding
      conv(2, 32, 9, 8, 16, 2, 3, 3, 0, 0, 0, 0, 1, 1, PaddingMode::Zeros, l, 1),   // grad_output cropped
      conv(4, 128, 16, 16, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, PaddingMode::Zeros, l),  // several k-tiles, split-K
  };
  for (const auto& p : cases) {
    check_tensor_core<__half>(p, 4e-3);
    check_tensor_core<__nv_bfloat16>(p, 2e-2);
    check_tensor_core<float>(p, 5e-3);
  }
}

template <typename T>
void max_pool_backward_gather_test(Layout l, double tol, int64_t C) {
  for (int ceil_mode = 0; ceil_mode < 2; ++ceil_mode) {
    PoolParams p;
    p.N = 2, p.C = C, p.H = 11, p.W = 10, p.kh = 3, p.kw = 3, p.sh = 2, p.sw = 1, p.ph = 1, p.pw = 1, p.dh = 2, p.dw = 1;
    p.ceil_mode = ceil_mode;
    p.layout = l;
    set_pool_output_size(p);
    const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.C * p.OH * p.OW;
    const auto x = random_vector<T>(nx, 31), gy = random_vector<T>(ny, 32);
    std::vector<T> y(ny), gx(nx);
    std::vector<int64_t> ind(ny);
    cpu::max_pool_forward<T>(p, x.data(), y.data(), ind.data());
    cpu::pool_scatter<T>(p, gy.data(), ind.data(), gx.data(), true);
    Dev<T> dgy(gy), dgx(nx);
    Dev<int64_t> dind(ind), bad(2);
    ok(cudaMemset(bad.ptr, 0, 2 * sizeof(int64_t)), "memset");
    cuda::max_pool_backward<T>(p, dgy.ptr, dind.ptr, dgx.ptr, bad.ptr, nullptr);
    FC_CHECK(max_rel_error(dgx.host(), gx) <= tol, "max_pool_backward gather differs (ceil_mode %d)", ceil_mode);
    FC_CHECK(bad.host()[0] == 0, "max_pool_backward: bad index reported for valid indices");
  }
}

// C = 16 in NHWC runs the 16-byte channel-vector kernels (pool_nhwc_vec.cu), C = 5 the element kernels.
template <typename T>
void pool_tests_typed(Layout l, double tol, int64_t C) {
  PoolParams p;
  p.N = 2, p.C = C, p.H = 9, p.W = 8, p.kh = 3, p.kw = 2, p.sh = 2, p.sw = 1, p.ph = 1, p.pw = 1, p.dh = 1, p.dw = 2;
  p.ceil_mode = true;
  p.layout = l;
  set_pool_output_size(p);
  const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.C * p.OH * p.OW;
  auto x = random_vector<T>(nx, 11);
  x[3] = x[4];  // a tie
  x[C] = x[0];  // a tie in one channel (NHWC) / one row (NCHW)
  const auto gy = random_vector<T>(ny, 12);
  std::vector<T> y(ny), gx(nx), g2(ny), ya(ny), gxa(nx);
  std::vector<int64_t> ind(ny);
  cpu::max_pool_forward<T>(p, x.data(), y.data(), ind.data());
  cpu::pool_scatter<T>(p, gy.data(), ind.data(), gx.data(), true);
  cpu::pool_gather<T>(p, x.data(), ind.data(), g2.data());
  Dev<T> dx(x), dgy(gy), dy(ny), dgx(nx), dg2(ny), dgx_det(nx);
  Dev<int64_t> dind(ny), bad(2);
  ok(cudaMemset(bad.ptr, 0, 2 * sizeof(int64_t)), "memset");
  cuda::max_pool_forward<T>(p, dx.ptr, dy.ptr, dind.ptr, nullptr);
  cuda::pool_scatter<T>(p, dgy.ptr, dind.ptr, dgx.ptr, true, false, nullptr, bad.ptr, nullptr);
  cuda::pool_scatter<T>(p, dgy.ptr, dind.ptr, dgx_det.ptr, true, true, nullptr, bad.ptr, nullptr);
  cuda::pool_gather<T>(p, dx.ptr, dind.ptr, dg2.ptr, bad.ptr, nullptr);
  FC_CHECK(dy.host() == y, "max_pool values differ");
  FC_CHECK(dind.host() == ind, "max_pool indices differ");
  FC_CHECK(max_rel_error(dgx.host(), gx) <= tol, "pool_scatter (atomic) differs");
  FC_CHECK(dgx_det.host() == gx, "pool_scatter (deterministic) differs from the CPU's order");
  FC_CHECK(dg2.host() == g2, "pool_gather differs");
  FC_CHECK(bad.host()[0] == 0, "bad index reported for valid indices");
  const PoolParams pm = p;  // the max pooling's window and sizes, for the bad-index check at the end

  p.count_include_pad = false;
  p.dh = p.dw = 1;
  set_pool_output_size(p);
  const size_t na = p.N * p.C * p.OH * p.OW;
  const auto gya = random_vector<T>(na, 13);
  ya.resize(na);
  cpu::avg_pool_forward<T>(p, x.data(), ya.data());
  cpu::avg_pool_backward<T>(p, gya.data(), gxa.data());
  Dev<T> dya(na), dgya(gya), dgxa(nx);
  cuda::avg_pool_forward<T>(p, dx.ptr, dya.ptr, nullptr);
  cuda::avg_pool_backward<T>(p, dgya.ptr, dgxa.ptr, nullptr);
  FC_CHECK(max_rel_error(dya.host(), ya) <= tol, "avg_pool forward differs");
  FC_CHECK(max_rel_error(dgxa.host(), gxa) <= tol, "avg_pool backward differs");

  AdaptivePoolParams a;
  a.N = 2, a.C = 3, a.H = 7, a.W = 10, a.OH = 3, a.OW = 4, a.layout = l;
  const size_t ax = a.N * a.C * a.H * a.W, ay = a.N * a.C * a.OH * a.OW;
  const auto xa = random_vector<T>(ax, 14), gyd = random_vector<T>(ay, 15);
  std::vector<T> yavg(ay), gavg(ax), ymax(ay);
  std::vector<int64_t> imax(ay);
  cpu::adaptive_avg_pool_forward<T>(a, xa.data(), yavg.data());
  cpu::adaptive_avg_pool_backward<T>(a, gyd.data(), gavg.data());
  cpu::adaptive_max_pool_forward<T>(a, xa.data(), ymax.data(), imax.data());
  Dev<T> dxa(xa), dgyd(gyd), dyavg(ay), dgavg(ax), dymax(ay);
  Dev<int64_t> dimax(ay);
  cuda::adaptive_avg_pool_forward<T>(a, dxa.ptr, dyavg.ptr, nullptr);
  cuda::adaptive_avg_pool_backward<T>(a, dgyd.ptr, dgavg.ptr, nullptr);
  cuda::adaptive_max_pool_forward<T>(a, dxa.ptr, dymax.ptr, dimax.ptr, nullptr);
  FC_CHECK(max_rel_error(dyavg.host(), yavg) <= tol, "adaptive_avg forward differs");
  FC_CHECK(max_rel_error(dgavg.host(), gavg) <= tol, "adaptive_avg backward differs");
  FC_CHECK(dymax.host() == ymax && dimax.host() == imax, "adaptive_max forward differs");

  // A bad index is reported, never followed.
  std::vector<int64_t> bad_ind = ind;
  bad_ind[ny / 2] = pm.H * pm.W + 5;
  Dev<int64_t> dbad_ind(bad_ind);
  ok(cudaMemset(bad.ptr, 0, 2 * sizeof(int64_t)), "memset");
  // pm, not p: p now has the average pooling's output size, and the indices and dg2 have ny elements
  cuda::pool_gather<T>(pm, dx.ptr, dbad_ind.ptr, dg2.ptr, bad.ptr, nullptr);
  const auto flag = bad.host();
  FC_CHECK(flag[0] == 1 && flag[1] == pm.H * pm.W + 5, "bad index not reported (%lld, %lld)", (long long)flag[0],
           (long long)flag[1]);
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("test_cuda_kernels: no CUDA device, skipped\n");
    return 0;
  }
  // The tensor-core tile size is read once per process: this run takes the 64 x 64 tiles unless
  // FASTCONV_CUDA_TILES says otherwise (scripts/gpu_check.sh runs the binary again with FASTCONV_CUDA_TILES=big).
  if (std::getenv("FASTCONV_CUDA_TILES") == nullptr) setenv("FASTCONV_CUDA_TILES", "small", 1);
  std::printf("test_cuda_kernels: tensor-core tiles %s\n", std::getenv("FASTCONV_CUDA_TILES"));
  conv_tests();
  tensor_core_tests();
  for (Layout l : {Layout::NCHW, Layout::NHWC}) {
    for (int64_t C : {5, 16}) {
      pool_tests_typed<float>(l, 2e-6, C);
      pool_tests_typed<double>(l, 1e-14, C);
      max_pool_backward_gather_test<float>(l, 2e-6, C);
      max_pool_backward_gather_test<double>(l, 1e-14, C);
    }
  }
  return fastconv_test::report("test_cuda_kernels");
}
