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

// A vector of V channels, widened to the accumulation type / rounded back.
template <typename T, int V>
__device__ __forceinline__ void load_acc(const T* p, acc_t<T> (&out)[V]) {
  const Vec<T, V> q = load_vec<T, V>(p);
#pragma unroll
  for (int v = 0; v < V; ++v) out[v] = to_acc(q.v[v]);
}

template <typename T, int V>
__device__ __forceinline__ void store_acc(T* p, const acc_t<T> (&in)[V]) {
  Vec<T, V> q;
#pragma unroll
  for (int v = 0; v < V; ++v) q.v[v] = from_acc<T>(in[v]);
  store_vec<T, V>(p, q);
}

// Coordinate along one axis of the tensor read (source) for destination coordinate d and tap k, or -1 when the tap
// reads nothing. Forward: the input row d * stride - pad + k * dil. Adjoint (input gradient): the output row o with
// o * stride == d + pad - k * dil, when that divides.
template <bool Adjoint>
__device__ __forceinline__ int64_t tap_source(int64_t d, int64_t k, int64_t stride, int64_t pad, int64_t dil,
                                              int64_t n_src) {
  if (!Adjoint) {
    const int64_t i = d * stride - pad + k * dil;
    return i >= 0 && i < n_src ? i : -1;
  }
  const int64_t t = d + pad - k * dil;
  return t >= 0 && t % stride == 0 && t / stride < n_src ? t / stride : -1;
}

// Forward (Adjoint false: y from x, plus the bias) and input gradient (Adjoint true: gx from gy, a gather over the
// outputs whose window holds each input). Thread: (n, row, tile of kTileW destination columns, V channels).
// KR / KS > 0: compile-time kernel size (unrolled taps); 0: p.R / p.S at run time.
template <typename T, int V, int KR, int KS, bool Adjoint>
__global__ void depthwise_gather_kernel(ConvParams p, const T* __restrict__ src, const T* __restrict__ w,
                                        const T* __restrict__ bias, T* __restrict__ dst, int64_t total) {
  using A = acc_t<T>;
  const int R = KR > 0 ? KR : int(p.R), S = KS > 0 ? KS : int(p.S);
  const int64_t SH = Adjoint ? p.OH : p.H, SW = Adjoint ? p.OW : p.W;  // source and destination sizes
  const int64_t DH = Adjoint ? p.H : p.OH, DW = Adjoint ? p.W : p.OW;
  const int64_t CV = p.C / V, DWT = (DW + kTileW - 1) / kTileW;
  FASTCONV_GRID_STRIDE(i, total) {
    const int64_t c0 = (i % CV) * V;
    int64_t t = i / CV;
    const int64_t d0 = (t % DWT) * kTileW;
    t /= DWT;
    const int64_t dh = t % DH, n = t / DH;
    A acc[kTileW][V];
#pragma unroll
    for (int v = 0; v < V; ++v) {
      const A b = bias ? to_acc(bias[c0 + v]) : A(0);
#pragma unroll
      for (int j = 0; j < kTileW; ++j) acc[j][v] = b;
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int64_t sh = tap_source<Adjoint>(dh, r, p.stride_h, p.pad_t, p.dil_h, SH);
      if (sh < 0) continue;
      const T* row = src + ((n * SH + sh) * SW) * p.C + c0;
#pragma unroll
      for (int s = 0; s < S; ++s) {
        A wv[V];
#pragma unroll
        for (int v = 0; v < V; ++v) wv[v] = to_acc(w[(c0 + v) * R * S + r * S + s]);
#pragma unroll
        for (int j = 0; j < kTileW; ++j) {
          const int64_t sw = tap_source<Adjoint>(d0 + j, s, p.stride_w, p.pad_l, p.dil_w, SW);
          if (d0 + j >= DW || sw < 0) continue;
          A sv[V];
          load_acc<T, V>(row + sw * p.C, sv);
#pragma unroll
          for (int v = 0; v < V; ++v) acc[j][v] += sv[v] * wv[v];
        }
      }
    }
    T* out = dst + ((n * DH + dh) * DW + d0) * p.C + c0;
#pragma unroll
    for (int j = 0; j < kTileW; ++j)
      if (d0 + j < DW) store_acc<T, V>(out + j * p.C, acc[j]);
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

// Launches depthwise_gather_kernel with the kernel size as template arguments where it is 3x3 or 5x5.
template <typename T, int V, bool Adjoint>
void launch_gather(const ConvParams& p, const T* src, const T* w, const T* bias, T* dst, int64_t total,
                   cudaStream_t stream) {
  const unsigned grid = grid_for(total);
  if (p.R == 3 && p.S == 3)
    depthwise_gather_kernel<T, V, 3, 3, Adjoint><<<grid, kThreads, 0, stream>>>(p, src, w, bias, dst, total);
  else if (p.R == 5 && p.S == 5)
    depthwise_gather_kernel<T, V, 5, 5, Adjoint><<<grid, kThreads, 0, stream>>>(p, src, w, bias, dst, total);
  else
    depthwise_gather_kernel<T, V, 0, 0, Adjoint><<<grid, kThreads, 0, stream>>>(p, src, w, bias, dst, total);
}

// Both gathers: 16-byte channel vectors where C and the two activation pointers allow, else one channel.
template <typename T, bool Adjoint>
void depthwise_gather(const ConvParams& p, const T* src, const T* w, const T* bias, T* dst, cudaStream_t stream) {
  constexpr int VW = kVec16<T>;
  const int64_t DH = Adjoint ? p.H : p.OH, DW = Adjoint ? p.W : p.OW;
  const int64_t pixels = p.N * DH * ((DW + kTileW - 1) / kTileW);
  if (p.C % VW == 0 && is_aligned16(src) && is_aligned16(dst))
    launch_gather<T, VW, Adjoint>(p, src, w, bias, dst, pixels * (p.C / VW), stream);
  else
    launch_gather<T, 1, Adjoint>(p, src, w, bias, dst, pixels * p.C, stream);
}

}  // namespace

template <typename T>
bool depthwise_applies(const ConvParams& p) {
  return p.layout == Layout::NHWC && p.groups == p.C && p.K == p.C && p.groups > 1 &&
         p.mode == PaddingMode::Zeros && p.R * p.S <= kMaxTaps && p.pad_t >= 0 && p.pad_l >= 0;
}

template <typename T>
void depthwise_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  depthwise_gather<T, false>(p, x, w, bias, y, stream);
  FASTCONV_CHECK_LAUNCH("depthwise_forward");
}

template <typename T>
void depthwise_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream) {
  depthwise_gather<T, true>(p, gy, w, nullptr, gx, stream);
  FASTCONV_CHECK_LAUNCH("depthwise_backward_input");
}

// Chunks of output pixels for the weight gradient: about four blocks per SM in all, each chunk at least 256
// pixels, at most 1024 chunks (the partials stay a few MB).
static int64_t depthwise_weight_chunks(const ConvParams& p) {
  const int sms = device_facts().sms > 0 ? device_facts().sms : 108;  // 108: an A100's, if the runtime cannot say
  const int64_t channel_blocks = (p.C + 31) / 32, pixels = p.N * p.OH * p.OW;
  int64_t chunks = (4 * int64_t(sms) + channel_blocks - 1) / channel_blocks;
  chunks = std::min<int64_t>(chunks, std::max<int64_t>(1, pixels / 256));
  return std::max<int64_t>(1, std::min<int64_t>(chunks, 1024));
}

template <typename T>
size_t depthwise_weight_workspace(const ConvParams& p) {
  return size_t(depthwise_weight_chunks(p)) * size_t(p.R * p.S * p.C) * sizeof(acc_t<T>);
}

template <typename T>
void depthwise_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream) {
  const int64_t chunks = depthwise_weight_chunks(p), pixels = p.N * p.OH * p.OW;
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
FASTCONV_CUDA_FOR_EACH_TYPE(FASTCONV_INSTANTIATE)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
