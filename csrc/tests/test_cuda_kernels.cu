// Compares the CUDA kernels (csrc/cuda) with the CPU kernels (csrc/cpu) on random data: convolution
// forward / grad-input / grad-weight / bias over padding modes, groups, strides, dilations, asymmetric
// padding and a grad_output smaller than the formula's size; max / avg / adaptive pooling, the index scatter
// (atomic and deterministic) and gather; float and double against the CPU, float16 / bfloat16 against the
// CPU's float32 on the same (rounded) inputs. Both layouts everywhere.
// Without a CUDA device it prints a message and exits 0 (so ctest passes on GPU-less CI machines).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
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
  cuda::conv_forward<T>(p, dx.ptr, dw.ptr, db.ptr, dy.ptr, opt, nullptr);
  cuda::conv_backward_input<T>(p, dgy.ptr, dw.ptr, dgx.ptr, opt, nullptr);
  cuda::conv_backward_weight<T>(p, dx.ptr, dgy.ptr, dgw.ptr, opt, nullptr);
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
  cuda::conv_forward<T>(p, dx.ptr, dw.ptr, nullptr, dy.ptr, opt, nullptr);
  cuda::conv_backward_input<T>(p, dgy.ptr, dw.ptr, dgx.ptr, opt, nullptr);
  cuda::conv_backward_weight<T>(p, dx.ptr, dgy.ptr, dgw.ptr, opt, nullptr);
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
    };
    for (const auto& p : cases) {
      check_conv_exact_type<float>(p, 2e-5);
      check_conv_exact_type<double>(p, 1e-12);
      check_conv_low_precision<__half>(p, 4e-3);
      check_conv_low_precision<__nv_bfloat16>(p, 2e-2);
    }
  }
}

template <typename T>
void pool_tests_typed(Layout l, double tol) {
  PoolParams p;
  p.N = 2, p.C = 5, p.H = 9, p.W = 8, p.kh = 3, p.kw = 2, p.sh = 2, p.sw = 1, p.ph = 1, p.pw = 1, p.dh = 1, p.dw = 2;
  p.ceil_mode = true;
  p.layout = l;
  set_pool_output_size(p);
  const size_t nx = p.N * p.C * p.H * p.W, ny = p.N * p.C * p.OH * p.OW;
  auto x = random_vector<T>(nx, 11);
  x[3] = x[4];  // a tie
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
  conv_tests();
  for (Layout l : {Layout::NCHW, Layout::NHWC}) {
    pool_tests_typed<float>(l, 2e-6);
    pool_tests_typed<double>(l, 1e-14);
  }
  return fastconv_test::report("test_cuda_kernels");
}
