// The CUTLASS kernel types behind tc_conv.cuh and the per-pass launchers. Included by one small .cu file per
// (pass, element type), so that the package build compiles the heavy template instantiations in parallel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include <cutlass/conv/conv2d_problem_size.h>
#include <cutlass/conv/device/implicit_gemm_convolution.h>
#include <cutlass/conv/kernel/default_conv2d_dgrad.h>
#include <cutlass/conv/kernel/default_conv2d_fprop.h>
#include <cutlass/conv/kernel/default_conv2d_wgrad.h>
#include <cutlass/cutlass.h>
#include <cutlass/epilogue/thread/linear_combination.h>
#include <cutlass/gemm/threadblock/threadblock_swizzle.h>

#include "../cuda_common.cuh"
#include "../split_reduce.cuh"
#include "tc_conv.cuh"
#include "tc_passes.cuh"

namespace fastconv {
namespace cuda {
namespace tc {

// Storage type, MMA instruction and k-depth of a block tile per element type. float runs as TF32 (m16n8k8).
template <typename T> struct Elem;
template <> struct Elem<__half> {
  using type = cutlass::half_t;
  using Inst = cutlass::gemm::GemmShape<16, 8, 16>;
  static constexpr int kTileK = 64;
};
template <> struct Elem<__nv_bfloat16> {
  using type = cutlass::bfloat16_t;
  using Inst = cutlass::gemm::GemmShape<16, 8, 16>;
  static constexpr int kTileK = 64;
};
template <> struct Elem<float> {
  using type = float;
  using Inst = cutlass::gemm::GemmShape<16, 8, 8>;
  static constexpr int kTileK = 32;
};

// Elements per 128-bit access (kVec16): C and K must be multiples of it (the optimized iterators load whole vectors).

// Block tiles. Big: 128 x 128 over 4 warps of 64 x 64, 3 stages (96 KB of shared memory for 16-bit types). Small:
// 64 x 64 over 4 warps of 32 x 32, 4 stages: four times the blocks, for problems that would leave SMs idle.
template <typename T, bool Big> struct Tiles {
  static constexpr int kBlock = Big ? 128 : 64, kWarp = Big ? 64 : 32;
  using Block = cutlass::gemm::GemmShape<kBlock, kBlock, Elem<T>::kTileK>;
  using Warp = cutlass::gemm::GemmShape<kWarp, kWarp, Elem<T>::kTileK>;
  static constexpr int kStages = Big ? 3 : 4;
};

using NHWC = cutlass::layout::TensorNHWC;
template <typename T> using E = typename Elem<T>::type;
// D = alpha * accumulator + beta * C, vectorised like the loads. The forward's bias is C with zero strides.
template <typename T> using OutputOp = cutlass::epilogue::thread::LinearCombination<E<T>, kVec16<T>, float, float>;
// The weight gradient writes float partials (one slice per split), reduced by split_reduce (../split_reduce.cuh).
using PartialOp = cutlass::epilogue::thread::LinearCombination<float, 4, float, float>;

template <typename T, bool Big>
using FpropKernel = typename cutlass::conv::kernel::DefaultConv2dFprop<
    E<T>, NHWC, E<T>, NHWC, E<T>, NHWC, float, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
    typename Tiles<T, Big>::Block, typename Tiles<T, Big>::Warp, typename Elem<T>::Inst, OutputOp<T>,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<4>, Tiles<T, Big>::kStages,
    cutlass::arch::OpMultiplyAdd, cutlass::conv::IteratorAlgorithm::kOptimized>::Kernel;

// Strided: CUTLASS splits the problem by output phase (h mod stride, w mod stride); unit stride: one implicit GEMM.
template <typename T, bool Big, bool Strided>
using DgradKernel = typename cutlass::conv::kernel::DefaultConv2dDgrad<
    E<T>, NHWC, E<T>, NHWC, E<T>, NHWC, float, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
    typename Tiles<T, Big>::Block, typename Tiles<T, Big>::Warp, typename Elem<T>::Inst, OutputOp<T>,
    std::conditional_t<Strided, cutlass::conv::threadblock::StridedDgradIdentityThreadblockSwizzle<1>,
                       cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<4>>,
    Tiles<T, Big>::kStages, cutlass::arch::OpMultiplyAdd, cutlass::conv::IteratorAlgorithm::kOptimized,
    Strided ? cutlass::conv::StrideSupport::kStrided : cutlass::conv::StrideSupport::kUnity>::Kernel;

template <typename T>
using WgradKernel = typename cutlass::conv::kernel::DefaultConv2dWgrad<
    E<T>, NHWC, E<T>, NHWC, float, NHWC, float, cutlass::arch::OpClassTensorOp, cutlass::arch::Sm80,
    typename Tiles<T, true>::Block, typename Tiles<T, true>::Warp, typename Elem<T>::Inst, PartialOp,
    cutlass::gemm::threadblock::GemmIdentityThreadblockSwizzle<1>, Tiles<T, true>::kStages,
    cutlass::arch::OpMultiplyAdd, cutlass::conv::IteratorAlgorithm::kOptimized>::Kernel;

template <typename Kernel> using Device = cutlass::conv::device::ImplicitGemmConvolution<Kernel>;

// A read-only operand as CUTLASS's TensorRef takes it (non-const pointer to its element type; never written).
template <typename T>
E<T>* operand(const T* p) {
  return const_cast<E<T>*>(reinterpret_cast<const E<T>*>(p));
}

// ---- host-side checks -------------------------------------------------------------------------------------------

// Whether the code the runtime loads for this kernel on this device came from sm_80+ (CUTLASS compiles the SM80
// mainloop out below it: a build for older archs alone would launch empty kernels). ptxVersion covers both
// shipped SASS and PTX JIT-compiled for a newer GPU. Cached per device (0: not asked, 1: yes, 2: no).
template <typename Kernel>
bool code_loaded_sm80() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> known[kMaxDevices];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return false;
  if (known[dev].load() == 0) {
    cudaFuncAttributes a{};
    bool loaded = false;
    if (cudaFuncGetAttributes(&a, cutlass::Kernel<Kernel>) == cudaSuccess)
      loaded = a.ptxVersion >= 80;
    else
      (void)cudaGetLastError();  // no image for this device: clear the error; the caller takes another path
    known[dev].store(loaded ? 1 : 2);
  }
  return known[dev].load() == 1;
}

// CUTLASS's problem description (int sizes: callers check the 2^31 limits first). Padding: CUTLASS reads only the
// leading pads; the trailing ones are in the explicit output size p.OH, p.OW.
inline cutlass::conv::Conv2dProblemSize problem_size(const ConvParams& p, int splits = 1) {
  return cutlass::conv::Conv2dProblemSize(
      int(p.N), int(p.H), int(p.W), int(p.C), int(p.K), int(p.R), int(p.S), int(p.OH), int(p.OW), int(p.pad_t),
      int(p.pad_l), int(p.stride_h), int(p.stride_w), int(p.dil_h), int(p.dil_w),
      cutlass::conv::Mode::kCrossCorrelation, splits);
}

// Shape checks common to every pass and element type (before any CUTLASS call).
template <typename T>
bool shape_fits(const ConvParams& p) {
  constexpr int64_t kLimit = (int64_t(1) << 31) / int64_t(sizeof(float));  // elements: float partials included
  if (p.layout != Layout::NHWC || p.groups != 1 || p.mode != PaddingMode::Zeros) return false;
  if (p.C % kVec16<T> != 0 || p.K % kVec16<T> != 0) return false;
  if (p.N <= 0 || p.OH <= 0 || p.OW <= 0 || p.H <= 0 || p.W <= 0) return false;
  if (p.pad_t < 0 || p.pad_l < 0) return false;
  return p.N * p.H * p.W * p.C < kLimit && p.N * p.OH * p.OW * p.K < kLimit && p.K * p.R * p.S * p.C < kLimit;
}

inline void check_status(cutlass::Status s, const char* what) {
  if (s != cutlass::Status::kSuccess)
    throw CudaError(std::string("fastconv CUTLASS error in ") + what + ": " + cutlass::cutlassGetStatusString(s));
}

// initialize + run on `stream`: CUTLASS sets the kernel's shared-memory limit and launches.
template <typename Conv>
void launch_conv(const typename Conv::Arguments& args, void* workspace, cudaStream_t stream, const char* what) {
  Conv op;
  check_status(op.initialize(args, workspace, stream), what);
  check_status(op.run(stream), what);
  FASTCONV_CHECK_LAUNCH(what);
}

// Blocks of a launch with 128 x 128 tiles; below one wave of the device the 64 x 64 tiles take the problem.
// FASTCONV_CUDA_TILES=big|small forces one (the kernel tests run both on small problems).
inline int64_t big_tiles(int64_t m, int64_t n) { return ((m + 127) / 128) * ((n + 127) / 128); }
inline bool use_big(int64_t m, int64_t n) {
  static const char* force = std::getenv("FASTCONV_CUDA_TILES");
  if (force != nullptr && std::string(force) == "big") return true;
  if (force != nullptr && std::string(force) == "small") return false;
  return big_tiles(m, n) >= device_facts().sms;
}

// CUTLASS's own check (alignment, its iterators' limits, grid size) of one kernel on a problem.
template <typename Kernel>
bool implementable(const cutlass::conv::Conv2dProblemSize& ps,
                   cutlass::conv::SplitKMode mode = cutlass::conv::SplitKMode::kSerial) {
  typename Device<Kernel>::Arguments args(ps);
  args.split_k_mode = mode;
  return Device<Kernel>::can_implement(args) == cutlass::Status::kSuccess;
}

template <typename T>
bool tc_usable(const ConvParams& p) {
  if (!shape_fits<T>(p)) return false;
  return device_facts().major >= 8;
}

// ---- forward ------------------------------------------------------------------------------------------------

template <typename T>
bool fprop_applies(const ConvParams& p) {
  if (!tc_usable<T>(p) || !code_loaded_sm80<FpropKernel<T, true>>()) return false;
  const auto ps = problem_size(p);
  return implementable<FpropKernel<T, true>>(ps) && implementable<FpropKernel<T, false>>(ps);
}

template <typename T, bool Big>
void fprop_run(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  using Conv = Device<FpropKernel<T, Big>>;
  const auto ps = problem_size(p);
  auto* yp = reinterpret_cast<E<T>*>(y);
  // Bias: the epilogue's source C read with zero strides, so every output pixel adds bias[k]; beta = 0 skips C.
  const cutlass::TensorRef<E<T>, NHWC> c_ref =
      bias ? cutlass::TensorRef<E<T>, NHWC>(operand(bias), NHWC(NHWC::Stride(0)))
           : cutlass::TensorRef<E<T>, NHWC>(yp, NHWC::packed({ps.N, ps.P, ps.Q, ps.K}));
  typename Conv::Arguments args(
      ps, {operand(x), NHWC::packed({ps.N, ps.H, ps.W, ps.C})},
      {operand(w), NHWC::packed({ps.K, ps.R, ps.S, ps.C})}, c_ref,
      {yp, NHWC::packed({ps.N, ps.P, ps.Q, ps.K})}, {1.0f, bias ? 1.0f : 0.0f});
  launch_conv<Conv>(args, nullptr, stream, "tensor-core conv forward");
}

template <typename T>
void fprop(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  if (use_big(p.N * p.OH * p.OW, p.K))
    fprop_run<T, true>(p, x, w, bias, y, stream);
  else
    fprop_run<T, false>(p, x, w, bias, y, stream);
}

// ---- input gradient -----------------------------------------------------------------------------------------

inline bool unit_stride(const ConvParams& p) { return p.stride_h == 1 && p.stride_w == 1; }

template <typename T>
bool dgrad_applies(const ConvParams& p) {
  if (!tc_usable<T>(p)) return false;
  const auto ps = problem_size(p);
  if (unit_stride(p))
    return code_loaded_sm80<DgradKernel<T, true, false>>() && implementable<DgradKernel<T, true, false>>(ps) &&
           implementable<DgradKernel<T, false, false>>(ps);
  return code_loaded_sm80<DgradKernel<T, true, true>>() && implementable<DgradKernel<T, true, true>>(ps);
}

template <typename T, bool Big, bool Strided>
void dgrad_run(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream) {
  using Conv = Device<DgradKernel<T, Big, Strided>>;
  const auto ps = problem_size(p);
  auto* gxp = reinterpret_cast<E<T>*>(gx);
  const auto gx_layout = NHWC::packed({ps.N, ps.H, ps.W, ps.C});
  typename Conv::Arguments args(
      ps, {operand(gy), NHWC::packed({ps.N, ps.P, ps.Q, ps.K})},
      {operand(w), NHWC::packed({ps.K, ps.R, ps.S, ps.C})},
      {gxp, gx_layout}, {gxp, gx_layout}, {1.0f, 0.0f});
  launch_conv<Conv>(args, nullptr, stream, "tensor-core conv input gradient");
}

template <typename T>
void dgrad(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream) {
  if (!unit_stride(p)) {
    // The phase decomposition skips blocks whose output rows start past the input; zero first so that every
    // element of gx is written whatever the kernel's tiling (a memset is a small fraction of the GEMM).
    check_cuda(cudaMemsetAsync(gx, 0, size_t(p.N * p.H * p.W * p.C) * sizeof(T), stream), "memset (input gradient)");
    dgrad_run<T, true, true>(p, gy, w, gx, stream);
  } else if (use_big(p.N * p.H * p.W, p.C)) {
    dgrad_run<T, true, false>(p, gy, w, gx, stream);
  } else {
    dgrad_run<T, false, false>(p, gy, w, gx, stream);
  }
}

// ---- weight gradient ------------------------------------------------------------------------------------------

// Split-K slices: enough blocks for two waves of the device, at least 8 k-tiles per slice, at most 32 slices.
// A pure function of the shape and the device, so the workspace query and the launch agree.
inline int wgrad_splits(const ConvParams& p, int tile_k) {
  const int64_t tiles = big_tiles(p.K, p.R * p.S * p.C);
  const int64_t k_tiles = (p.N * p.OH * p.OW + tile_k - 1) / tile_k;
  int64_t splits = (2 * int64_t(device_facts().sms) + tiles - 1) / tiles;
  splits = std::min<int64_t>(splits, std::max<int64_t>(1, k_tiles / 8));
  return int(std::max<int64_t>(1, std::min<int64_t>(splits, 32)));
}

template <typename T>
bool wgrad_applies(const ConvParams& p) {
  if (!tc_usable<T>(p) || !code_loaded_sm80<WgradKernel<T>>()) return false;
  return implementable<WgradKernel<T>>(problem_size(p, wgrad_splits(p, Elem<T>::kTileK)),
                                      cutlass::conv::SplitKMode::kParallel);
}

template <typename T>
size_t wgrad_workspace_bytes(const ConvParams& p) {
  return size_t(wgrad_splits(p, Elem<T>::kTileK)) * size_t(p.K * p.R * p.S * p.C) * sizeof(float);
}

template <typename T>
void wgrad(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace, size_t workspace_bytes,
           cudaStream_t stream) {
  using Conv = Device<WgradKernel<T>>;
  const int splits = wgrad_splits(p, Elem<T>::kTileK);
  if (workspace == nullptr || workspace_bytes < wgrad_workspace_bytes<T>(p) ||
      !is_aligned16(workspace))
    throw CudaError("fastconv: tensor-core weight gradient: workspace missing, too small or misaligned");
  const auto ps = problem_size(p, splits);
  auto* partial = static_cast<float*>(workspace);
  const auto w_layout = NHWC::packed({ps.K, ps.R, ps.S, ps.C});
  typename Conv::Arguments args(
      ps, {operand(gy), NHWC::packed({ps.N, ps.P, ps.Q, ps.K})},
      {operand(x), NHWC::packed({ps.N, ps.H, ps.W, ps.C})},
      {partial, w_layout}, {partial, w_layout}, {1.0f, 0.0f},
      splits > 1 ? cutlass::conv::SplitKMode::kParallel : cutlass::conv::SplitKMode::kSerial);
  // Parallel split-K memsets its "workspace" (the partials themselves here) before the kernel overwrites them.
  launch_conv<Conv>(args, splits > 1 ? workspace : nullptr, stream, "tensor-core conv weight gradient");
  split_reduce<float, T>(partial, gw, p.K, p.R * p.S, p.C, splits, stream);
}

}  // namespace tc
}  // namespace cuda
}  // namespace fastconv

// Explicit instantiations, one pass and element type per .cu file.
#define FASTCONV_TC_INSTANTIATE_FPROP(T)                                                                          \
  template bool fastconv::cuda::tc::fprop_applies<T>(const fastconv::ConvParams&);                               \
  template void fastconv::cuda::tc::fprop<T>(const fastconv::ConvParams&, const T*, const T*, const T*, T*,      \
                                             cudaStream_t);
#define FASTCONV_TC_INSTANTIATE_DGRAD(T)                                                                          \
  template bool fastconv::cuda::tc::dgrad_applies<T>(const fastconv::ConvParams&);                               \
  template void fastconv::cuda::tc::dgrad<T>(const fastconv::ConvParams&, const T*, const T*, T*, cudaStream_t);
#define FASTCONV_TC_INSTANTIATE_WGRAD(T)                                                                          \
  template bool fastconv::cuda::tc::wgrad_applies<T>(const fastconv::ConvParams&);                               \
  template size_t fastconv::cuda::tc::wgrad_workspace_bytes<T>(const fastconv::ConvParams&);                     \
  template void fastconv::cuda::tc::wgrad<T>(const fastconv::ConvParams&, const T*, const T*, T*, void*, size_t, \
                                             cudaStream_t);
