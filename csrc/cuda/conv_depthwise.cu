// Depthwise convolution (groups == C == K) in NHWC: MobileNet's and EfficientNet's 3x3 / 5x5 layers. The GEMM
// kernels waste their tiles on it (one input channel per output channel), and the direct kernel reads one
// element per thread. Here neighbouring threads take neighbouring vectors of channels (16-byte loads where C and
// the pointers allow), and each thread keeps a row of kTileW outputs in registers, so an input column loaded for
// one output is reused by the next ones from L1. Float accumulation (double for double); every kernel is a gather
// or a fixed-order reduction, so results are deterministic.
#include <algorithm>
#include <cstdint>

#include "conv_kernels.cuh"
#include "cuda_common.cuh"
#include "split_reduce.cuh"

namespace fastconv {
namespace cuda {
namespace {

constexpr int kTileW = 4;          // outputs per thread along a row (forward) / inputs (input gradient)
constexpr int kMaxTaps = 49;       // R * S up to 7x7 (weight gradient accumulators per thread)

template <typename T, int V>
struct alignas(sizeof(T) * V) Vec {
  T v[V];
};

template <typename T, int V>
__device__ __forceinline__ void load_vec(const T* p, acc_t<T> (&out)[V]) {
  const Vec<T, V> q = *reinterpret_cast<const Vec<T, V>*>(p);
#pragma unroll
  for (int v = 0; v < V; ++v) out[v] = to_acc(q.v[v]);
}

template <typename T, int V>
__device__ __forceinline__ void store_vec(T* p, const acc_t<T> (&in)[V]) {
  Vec<T, V> q;
#pragma unroll
  for (int v = 0; v < V; ++v) q.v[v] = from_acc<T>(in[v]);
  *reinterpret_cast<Vec<T, V>*>(p) = q;
}

// Forward: thread (n, oh, tile of kTileW outputs along ow, vector of V channels). KR / KS > 0: compile-time kernel
// size (unrolled taps); 0: p.R / p.S at run time.
template <typename T, int V, int KR, int KS>
__global__ void depthwise_forward_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ w,
                                         const T* __restrict__ bias, T* __restrict__ y, int64_t total) {
  using A = acc_t<T>;
  const int R = KR > 0 ? KR : int(p.R), S = KS > 0 ? KS : int(p.S);
  const int64_t CV = p.C / V, OWT = (p.OW + kTileW - 1) / kTileW;
  FASTCONV_GRID_STRIDE(i, total) {
    const int64_t c0 = (i % CV) * V;
    int64_t t = i / CV;
    const int64_t ow0 = (t % OWT) * kTileW;
    t /= OWT;
    const int64_t oh = t % p.OH, n = t / p.OH;
    A acc[kTileW][V];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const A b = bias ? to_acc(bias[c0 + v]) : A(0);
#pragma unroll
      for (int j = 0; j < kTileW; ++j) acc[j][v] = b;
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
      if (ih < 0 || ih >= p.H) continue;
      const T* xrow = x + ((n * p.H + ih) * p.W) * p.C + c0;
#pragma unroll
      for (int s = 0; s < S; ++s) {
        A wv[V];
#pragma unroll
        for (int v = 0; v < V; ++v) wv[v] = to_acc(w[(c0 + v) * R * S + r * S + s]);
#pragma unroll
        for (int j = 0; j < kTileW; ++j) {
          const int64_t iw = (ow0 + j) * p.stride_w - p.pad_l + s * p.dil_w;
          if (ow0 + j >= p.OW || iw < 0 || iw >= p.W) continue;
          A xv[V];
          load_vec<T, V>(xrow + iw * p.C, xv);
#pragma unroll
          for (int v = 0; v < V; ++v) acc[j][v] += xv[v] * wv[v];
        }
      }
    }
    T* yp = y + ((n * p.OH + oh) * p.OW + ow0) * p.C + c0;
#pragma unroll
    for (int j = 0; j < kTileW; ++j)
      if (ow0 + j < p.OW) store_vec<T, V>(yp + j * p.C, acc[j]);
  }
}

// Input gradient as a gather: input (n, ih, iw) takes gy at every (oh, ow) whose window covers it through tap
// (r, s), i.e. oh * stride = ih + pad - r * dil (when divisible). Thread: (n, ih, kTileW inputs along iw, V channels).
template <typename T, int V, int KR, int KS>
__global__ void depthwise_backward_input_kernel(ConvParams p, const T* __restrict__ gy, const T* __restrict__ w,
                                                T* __restrict__ gx, int64_t total) {
  using A = acc_t<T>;
  const int R = KR > 0 ? KR : int(p.R), S = KS > 0 ? KS : int(p.S);
  const int64_t CV = p.C / V, IWT = (p.W + kTileW - 1) / kTileW;
  FASTCONV_GRID_STRIDE(i, total) {
    const int64_t c0 = (i % CV) * V;
    int64_t t = i / CV;
    const int64_t iw0 = (t % IWT) * kTileW;
    t /= IWT;
    const int64_t ih = t % p.H, n = t / p.H;
    A acc[kTileW][V];
#pragma unroll
    for (int j = 0; j < kTileW; ++j)
#pragma unroll
      for (int v = 0; v < V; ++v) acc[j][v] = A(0);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t th = ih + p.pad_t - r * p.dil_h;
      if (th < 0 || th % p.stride_h != 0 || th / p.stride_h >= p.OH) continue;
      const T* grow = gy + ((n * p.OH + th / p.stride_h) * p.OW) * p.C + c0;
#pragma unroll
      for (int s = 0; s < S; ++s) {
        A wv[V];
#pragma unroll
        for (int v = 0; v < V; ++v) wv[v] = to_acc(w[(c0 + v) * R * S + r * S + s]);
#pragma unroll
        for (int j = 0; j < kTileW; ++j) {
          const int64_t tw = iw0 + j + p.pad_l - s * p.dil_w;
          if (iw0 + j >= p.W || tw < 0 || tw % p.stride_w != 0 || tw / p.stride_w >= p.OW) continue;
          A gv[V];
          load_vec<T, V>(grow + (tw / p.stride_w) * p.C, gv);
#pragma unroll
          for (int v = 0; v < V; ++v) acc[j][v] += gv[v] * wv[v];
        }
      }
    }
    T* gp = gx + ((n * p.H + ih) * p.W + iw0) * p.C + c0;
#pragma unroll
    for (int j = 0; j < kTileW; ++j)
      if (iw0 + j < p.W) store_vec<T, V>(gp + j * p.C, acc[j]);
  }
}

// Weight gradient, stage 1: block (32 channels, chunk of output pixels). Lane = channel; the 8 warps take the
// chunk's pixels round-robin, each thread accumulating all R*S taps; the warps' sums are added in warp order and
// written as partial[chunk][tap][c]. Stage 2 (split_reduce) adds the chunks in order.
constexpr int kWgradWarps = 8;

template <typename T, int KR, int KS>
__global__ void __launch_bounds__(kWgradWarps * 32)
    depthwise_backward_weight_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ gy,
                                     acc_t<T>* __restrict__ partial, int64_t pixels_per_chunk) {
  using A = acc_t<T>;
  constexpr int kTaps = KR > 0 ? KR * KS : kMaxTaps;
  const int R = KR > 0 ? KR : int(p.R), S = KS > 0 ? KS : int(p.S);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t c = int64_t(blockIdx.x) * 32 + lane;
  const int64_t chunk = blockIdx.y, pixels = p.N * p.OH * p.OW;
  const int64_t begin = chunk * pixels_per_chunk;
  const int64_t end = begin + pixels_per_chunk < pixels ? begin + pixels_per_chunk : pixels;
  A acc[kTaps];
#pragma unroll
  for (int k = 0; k < kTaps; ++k) acc[k] = A(0);
  if (c < p.C) {
    for (int64_t q = begin + warp; q < end; q += kWgradWarps) {
      const int64_t ow = q % p.OW, oh = (q / p.OW) % p.OH, n = q / (p.OW * p.OH);
      const A g = to_acc(gy[q * p.C + c]);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int64_t ih = oh * p.stride_h - p.pad_t + r * p.dil_h;
        if (ih < 0 || ih >= p.H) continue;
#pragma unroll
        for (int s = 0; s < S; ++s) {
          const int64_t iw = ow * p.stride_w - p.pad_l + s * p.dil_w;
          if (iw >= 0 && iw < p.W) acc[r * S + s] += g * to_acc(x[((n * p.H + ih) * p.W + iw) * p.C + c]);
        }
      }
    }
  }
  // Fixed-order block reduction: warp 0 adds warps 1..7 in order.
  __shared__ A sums[kWgradWarps - 1][32];
  const int64_t RS = int64_t(R) * S;
  A* out = partial + chunk * RS * p.C;
#pragma unroll
  for (int k = 0; k < R * S; ++k) {
    if (warp > 0) sums[warp - 1][lane] = acc[k];
    __syncthreads();
    if (warp == 0) {
      A v = acc[k];
      for (int u = 0; u < kWgradWarps - 1; ++u) v += sums[u][lane];
      if (c < p.C) out[k * p.C + c] = v;
    }
    __syncthreads();
  }
}

// Vector width: 16 bytes of channels where C and every pointer allow it, else one channel.
template <typename T>
int vector_width(const ConvParams& p, const void* a, const void* b) {
  const int V = 16 / int(sizeof(T));
  const bool aligned = reinterpret_cast<uintptr_t>(a) % 16 == 0 && reinterpret_cast<uintptr_t>(b) % 16 == 0;
  return (p.C % V == 0 && aligned) ? V : 1;
}

// Launches KERNEL<T, V, KR, KS> with the kernel size as template arguments where it is 3x3 or 5x5.
#define FASTCONV_DW_LAUNCH(KERNEL, V, ...)                                                                  \
  do {                                                                                                      \
    if (p.R == 3 && p.S == 3)                                                                               \
      KERNEL<T, V, 3, 3><<<grid_for(total), kThreads, 0, stream>>>(__VA_ARGS__);                           \
    else if (p.R == 5 && p.S == 5)                                                                          \
      KERNEL<T, V, 5, 5><<<grid_for(total), kThreads, 0, stream>>>(__VA_ARGS__);                           \
    else                                                                                                    \
      KERNEL<T, V, 0, 0><<<grid_for(total), kThreads, 0, stream>>>(__VA_ARGS__);                           \
  } while (0)

}  // namespace

template <typename T>
bool depthwise_applies(const ConvParams& p) {
  return p.layout == Layout::NHWC && p.groups == p.C && p.K == p.C && p.groups > 1 &&
         p.mode == PaddingMode::Zeros && p.R * p.S <= kMaxTaps && p.pad_t >= 0 && p.pad_l >= 0;
}

template <typename T>
void depthwise_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  constexpr int VW = 16 / int(sizeof(T));
  const int64_t OWT = (p.OW + kTileW - 1) / kTileW;
  if (vector_width<T>(p, x, y) == VW) {
    const int64_t total = p.N * p.OH * OWT * (p.C / VW);
    FASTCONV_DW_LAUNCH(depthwise_forward_kernel, VW, p, x, w, bias, y, total);
  } else {
    const int64_t total = p.N * p.OH * OWT * p.C;
    FASTCONV_DW_LAUNCH(depthwise_forward_kernel, 1, p, x, w, bias, y, total);
  }
  FASTCONV_CHECK_LAUNCH("depthwise_forward");
}

template <typename T>
void depthwise_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream) {
  constexpr int VW = 16 / int(sizeof(T));
  const int64_t IWT = (p.W + kTileW - 1) / kTileW;
  if (vector_width<T>(p, gy, gx) == VW) {
    const int64_t total = p.N * p.H * IWT * (p.C / VW);
    FASTCONV_DW_LAUNCH(depthwise_backward_input_kernel, VW, p, gy, w, gx, total);
  } else {
    const int64_t total = p.N * p.H * IWT * p.C;
    FASTCONV_DW_LAUNCH(depthwise_backward_input_kernel, 1, p, gy, w, gx, total);
  }
  FASTCONV_CHECK_LAUNCH("depthwise_backward_input");
}

// Chunks of output pixels for the weight gradient: about four blocks per SM in all, each chunk at least 256
// pixels, at most 1024 chunks (the partials stay a few MB).
template <typename T>
int64_t depthwise_weight_chunks(const ConvParams& p) {
  int dev = 0, sms = 108;
  if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const int64_t channel_blocks = (p.C + 31) / 32, pixels = p.N * p.OH * p.OW;
  int64_t chunks = (4 * int64_t(sms) + channel_blocks - 1) / channel_blocks;
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, pixels / 256));
  return std::max<int64_t>(1, std::min<int64_t>(chunks, 1024));
}

template <typename T>
size_t depthwise_weight_workspace(const ConvParams& p) {
  return size_t(depthwise_weight_chunks<T>(p)) * size_t(p.R * p.S * p.C) * sizeof(acc_t<T>);
}

template <typename T>
void depthwise_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream) {
  const int64_t chunks = depthwise_weight_chunks<T>(p), pixels = p.N * p.OH * p.OW;
  if (workspace == nullptr || workspace_bytes < depthwise_weight_workspace<T>(p))
    throw CudaError("fastconv: depthwise weight gradient: workspace missing or too small");
  auto* partial = static_cast<acc_t<T>*>(workspace);
  const dim3 grid(static_cast<unsigned>((p.C + 31) / 32), static_cast<unsigned>(chunks));
  const int64_t per_chunk = (pixels + chunks - 1) / chunks;
  const int threads = kWgradWarps * 32;
  if (p.R == 3 && p.S == 3)
    depthwise_backward_weight_kernel<T, 3, 3><<<grid, threads, 0, stream>>>(p, x, gy, partial, per_chunk);
  else if (p.R == 5 && p.S == 5)
    depthwise_backward_weight_kernel<T, 5, 5><<<grid, threads, 0, stream>>>(p, x, gy, partial, per_chunk);
  else
    depthwise_backward_weight_kernel<T, 0, 0><<<grid, threads, 0, stream>>>(p, x, gy, partial, per_chunk);
  FASTCONV_CHECK_LAUNCH("depthwise_backward_weight");
  // partial is [chunk][tap][c]: split_reduce's (K = 1, RS, C) writes gw[c][tap], the (C, 1, R, S) weight.
  split_reduce<acc_t<T>, T>(partial, gw, 1, p.R * p.S, p.C, int(chunks), stream);
}

#define FASTCONV_INSTANTIATE(T)                                                                                 \
  template bool depthwise_applies<T>(const ConvParams&);                                                        \
  template size_t depthwise_weight_workspace<T>(const ConvParams&);                                             \
  template void depthwise_forward<T>(const ConvParams&, const T*, const T*, const T*, T*, cudaStream_t);        \
  template void depthwise_backward_input<T>(const ConvParams&, const T*, const T*, T*, cudaStream_t);           \
  template void depthwise_backward_weight<T>(const ConvParams&, const T*, const T*, T*, void*, size_t,          \
                                             cudaStream_t);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
FASTCONV_INSTANTIATE(__half)
FASTCONV_INSTANTIATE(__nv_bfloat16)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
