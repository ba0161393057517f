// Tensor-core implicit-GEMM convolution forward (see conv_implicit_gemm.cuh). Block tile 64 x 64 x 16,
// 4 warps each owning a 32 x 32 sub-tile (2 x 2 WMMA fragments). Operand tiles are gathered into shared
// memory with bounds checks (simple, correct for every shape); the epilogue stages the float accumulators
// in shared memory, adds the bias and converts once.
#include <mma.h>

#include <type_traits>

#include "conv_implicit_gemm.cuh"
#include "cuda_common.cuh"

namespace fastconv {
namespace cuda {
namespace {

// Tile sizes (struct members: no unused-variable warnings where an architecture compiles the kernel empty).
struct Tile {
  static constexpr int BM = 64, BN = 64, BK = 16, Threads = 128;
  static constexpr int PadA = 8, PadB = 8, PadC = 4;  // WMMA leading dimensions stay multiples of 16 bytes
};
static_assert(Tile::BM == 64 && Tile::BN == 64 && Tile::BK == 16 && Tile::Threads == 128 &&
                  Tile::PadA % 8 == 0 && Tile::PadB % 8 == 0 && Tile::PadC % 4 == 0,
              "the kernel assumes 4 warps, each owning 32 x 32 outputs, and one WMMA k-step per tile");

template <typename T>
__global__ void __launch_bounds__(Tile::Threads)
    implicit_gemm_forward_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ w,
                                 const T* __restrict__ bias, T* __restrict__ y) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  __shared__ __align__(32) T As[Tile::BM][Tile::BK + Tile::PadA];
  __shared__ __align__(32) T Bs[Tile::BK][Tile::BN + Tile::PadB];
  __shared__ __align__(32) float Cs[Tile::BM][Tile::BN + Tile::PadC];

  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, RS = p.R * p.S;
  const int64_t M = p.N * p.OH * p.OW, KK = Cg * RS;
  const int64_t g = blockIdx.z;
  const int64_t m0 = int64_t(blockIdx.x) * Tile::BM, n0 = int64_t(blockIdx.y) * Tile::BN;
  const int tid = threadIdx.x, warp = tid / 32, wm = warp / 2, wn = warp % 2;
  const T zero = from_acc<T>(0.0f);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  for (int64_t k0 = 0; k0 < KK; k0 += Tile::BK) {
    // A tile: rows = output pixels, columns = reduction index (c innermost).
    for (int e = tid; e < Tile::BM * Tile::BK; e += Tile::Threads) {
      const int row = e / Tile::BK, col = e % Tile::BK;
      const int64_t m = m0 + row, kk = k0 + col;
      T v = zero;
      if (m < M && kk < KK) {
        const int64_t c = kk % Cg, rs = kk / Cg, s = rs % p.S, r = rs / p.S;
        const int64_t ow = m % p.OW, oh = (m / p.OW) % p.OH, n = m / (p.OW * p.OH);
        const int64_t ih = remap_index_dev(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
        const int64_t iw = remap_index_dev(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
        if (ih >= 0 && iw >= 0) v = x[offset4(n, g * Cg + c, ih, iw, p.C, p.H, p.W, p.layout)];
      }
      As[row][col] = v;
    }
    // B tile: rows = reduction index, columns = output channels of the group. w is (K, Cg, R, S).
    for (int e = tid; e < Tile::BK * Tile::BN; e += Tile::Threads) {
      const int row = e / Tile::BN, col = e % Tile::BN;
      const int64_t kk = k0 + row, k = n0 + col;
      T v = zero;
      if (kk < KK && k < Kg) {
        const int64_t c = kk % Cg, rs = kk / Cg;
        v = w[((g * Kg + k) * Cg + c) * RS + rs];
      }
      Bs[row][col] = v;
    }
    __syncthreads();
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
    for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &As[wm * 32 + i * 16][0], Tile::BK + Tile::PadA);
    for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &Bs[0][wn * 32 + j * 16], Tile::BN + Tile::PadB);
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    __syncthreads();
  }

  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], Tile::BN + Tile::PadC, wmma::mem_row_major);
  __syncthreads();
  // Epilogue: consecutive threads take consecutive output channels (contiguous in NHWC).
  for (int e = tid; e < Tile::BM * Tile::BN; e += Tile::Threads) {
    const int row = e / Tile::BN, col = e % Tile::BN;
    const int64_t m = m0 + row, k = n0 + col;
    if (m >= M || k >= Kg) continue;
    const int64_t ow = m % p.OW, oh = (m / p.OW) % p.OH, n = m / (p.OW * p.OH);
    const int64_t kout = g * Kg + k;
    float v = Cs[row][col];
    if (bias) v += to_acc(bias[kout]);
    y[offset4(n, kout, oh, ow, p.K, p.OH, p.OW, p.layout)] = from_acc<T>(v);
  }
#endif
}

bool device_has_bf16_tensor_cores() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
  return major >= 8;
}

// Whether the code the runtime loads for this device's kernel was compiled for sm_80 or newer: below, the kernel
// body is compiled out (#if __CUDA_ARCH__ >= 800), and a build without sm_80+ code (say TORCH_CUDA_ARCH_LIST=7.5
// run on an A100 through PTX) would launch an empty kernel and return uninitialised memory. ptxVersion is the
// virtual architecture the loaded code came from, whether it was shipped as SASS or JIT-compiled from PTX.
template <typename T>
bool tensor_core_code_loaded() {
  cudaFuncAttributes a{};
  if (cudaFuncGetAttributes(&a, implicit_gemm_forward_kernel<T>) != cudaSuccess) {
    (void)cudaGetLastError();  // no image for this device: clear the error, take the direct kernel
    return false;
  }
  return a.ptxVersion >= 80;
}

}  // namespace

template <typename T>
bool implicit_gemm_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, const ConvOptions& opt,
                           cudaStream_t stream) {
  (void)opt;
  if constexpr (!std::is_same_v<T, __half> && !std::is_same_v<T, __nv_bfloat16>) {
    (void)p, (void)x, (void)w, (void)bias, (void)y, (void)stream;
    return false;
  } else {
    const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
    const int64_t M = p.N * p.OH * p.OW;
    // Tensor cores pay off when both GEMM sides are at least a fragment wide; depthwise and tiny-channel
    // convolutions stay on the direct kernel.
    if (p.layout != Layout::NHWC || Kg < 16 || Cg * p.R * p.S < 16 || M == 0) return false;
    const int64_t gx = (M + Tile::BM - 1) / Tile::BM, gy = (Kg + Tile::BN - 1) / Tile::BN;
    if (gx > 0x7fffffff || gy > 65535 || p.groups > 65535) return false;
    if (!device_has_bf16_tensor_cores() || !tensor_core_code_loaded<T>()) return false;
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(p.groups));
    implicit_gemm_forward_kernel<T><<<grid, Tile::Threads, 0, stream>>>(p, x, w, bias, y);
    FASTCONV_CHECK_LAUNCH("implicit_gemm_forward");
    return true;
  }
}

template bool implicit_gemm_forward<float>(const ConvParams&, const float*, const float*, const float*, float*,
                                           const ConvOptions&, cudaStream_t);
template bool implicit_gemm_forward<double>(const ConvParams&, const double*, const double*, const double*, double*,
                                            const ConvOptions&, cudaStream_t);
template bool implicit_gemm_forward<__half>(const ConvParams&, const __half*, const __half*, const __half*, __half*,
                                            const ConvOptions&, cudaStream_t);
template bool implicit_gemm_forward<__nv_bfloat16>(const ConvParams&, const __nv_bfloat16*, const __nv_bfloat16*,
                                                   const __nv_bfloat16*, __nv_bfloat16*, const ConvOptions&,
                                                   cudaStream_t);

}  // namespace cuda
}  // namespace fastconv
