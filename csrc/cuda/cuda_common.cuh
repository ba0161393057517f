// Helpers shared by every CUDA kernel file (torch-free): launch checking, the accumulation type of each
// storage type, conversions, and 64-bit grid-stride loops.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../common/conv_params.h"

namespace fastconv {
namespace cuda {

// Thrown by the launchers when a launch (or an async error before it) fails; the binding layer turns it
// into a Python RuntimeError.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess)
    throw CudaError(std::string("fastconv CUDA error in ") + what + ": " + cudaGetErrorString(err));
}

// Checks the launch just made (configuration errors; asynchronous faults surface at the next sync).
#define FASTCONV_CHECK_LAUNCH(what) ::fastconv::cuda::check_cuda(cudaGetLastError(), what)

// Expands M(T) for every element type the CUDA kernels take (their explicit instantiations).
#define FASTCONV_CUDA_FOR_EACH_TYPE(M) M(float) M(double) M(__half) M(__nv_bfloat16)

// Accumulation type: float for float/half/bfloat16, double for double.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };
template <typename T> using acc_t = typename Acc<T>::type;

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_acc(acc_t<T> v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Elements of T in one 16-byte vector (the width of the channel-vector and tensor-core loads).
template <typename T>
constexpr int kVec16 = 16 / int(sizeof(T));

inline bool is_aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Compute capability major and SM count of the current device, cached per device (a race writes the same value;
// {0, 0} when the runtime cannot say).
struct DeviceFacts {
  int major = 0, sms = 0;
};
inline DeviceFacts device_facts() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> major[kMaxDevices], sms[kMaxDevices];  // 0: not asked yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return {};
  if (major[dev].load() == 0) {
    int mj = 0, n = 0;
    if (cudaDeviceGetAttribute(&mj, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
      return {};
    sms[dev].store(n);
    major[dev].store(mj);
  }
  return {major[dev].load(), sms[dev].load()};
}

// V consecutive elements moved as one aligned access (16 bytes for the channel-vector kernels); the caller
// guarantees the alignment (C a multiple of V, 16-byte aligned base pointers).
template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};
template <typename T, int V>
__device__ __forceinline__ Vec<T, V> load_vec(const T* p) {
  return *reinterpret_cast<const Vec<T, V>*>(p);
}
template <typename T, int V>
__device__ __forceinline__ void store_vec(T* p, const Vec<T, V>& q) {
  *reinterpret_cast<Vec<T, V>*>(p) = q;
}

// Blocks for a 1-thread-per-element launch over `total` elements, capped: kernels loop grid-stride, so
// every element is covered with 64-bit indices whatever the cap.
constexpr int kThreads = 256;
inline unsigned int grid_for(int64_t total, int threads = kThreads) {
  const int64_t blocks = (total + threads - 1) / threads;
  const int64_t cap = int64_t(1) << 20;
  return static_cast<unsigned int>(blocks < 1 ? 1 : (blocks > cap ? cap : blocks));
}

#define FASTCONV_GRID_STRIDE(i, total)                                                                 \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (total);                       \
       i += int64_t(blockDim.x) * gridDim.x)

// Device copy of remap_index (conv_params.h): padded coordinate -> input coordinate, or -1 for a zero.
__device__ __forceinline__ int64_t remap_index_dev(int64_t i, int64_t n, PaddingMode mode) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PaddingMode::Zeros: return -1;
    case PaddingMode::Reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PaddingMode::Replicate: return i < 0 ? 0 : n - 1;
    case PaddingMode::Circular: return i < 0 ? i + n : i - n;
  }
  return -1;
}

// Decodes a linear offset of a dense (N, C, H, W) tensor stored in `layout` into (n, c, h, w).
struct Coord4 {
  int64_t n, c, h, w;
};
__device__ __forceinline__ Coord4 decode(int64_t i, int64_t C, int64_t H, int64_t W, Layout layout) {
  Coord4 r;
  if (layout == Layout::NCHW) {
    r.w = i % W; i /= W;
    r.h = i % H; i /= H;
    r.c = i % C; r.n = i / C;
  } else {
    r.c = i % C; i /= C;
    r.w = i % W; i /= W;
    r.h = i % H; r.n = i / H;
  }
  return r;
}

__host__ __device__ __forceinline__ int64_t offset4(int64_t n, int64_t c, int64_t h, int64_t w, int64_t C,
                                                    int64_t H, int64_t W, Layout layout) {
  return layout == Layout::NCHW ? ((n * C + c) * H + h) * W + w : ((n * H + h) * W + w) * C + c;
}

// Stride between consecutive channels of one pixel, and base offset of pixel (n, h, w) channel 0.
__device__ __forceinline__ int64_t channel_stride(int64_t H, int64_t W, Layout layout) {
  return layout == Layout::NCHW ? H * W : 1;
}

}  // namespace cuda
}  // namespace fastconv
