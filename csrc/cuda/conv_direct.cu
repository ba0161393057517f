// Direct (loop-nest) CUDA convolution kernels: correct for every parameter combination (stride, padding
// incl. asymmetric and the reflect/replicate/circular modes, dilation, groups, a grad_output smaller than
// the formula's size), both layouts, 64-bit indexing. Every kernel is a gather, so results do not depend
// on scheduling (no atomics). They are the fallback of the tensor-core paths and the reference of tests.
#include "conv_kernels.cuh"
#include "cuda_common.cuh"

namespace fastconv {
namespace cuda {
namespace {

// One thread per output element (n, k, oh, ow), elements visited in memory order so that NHWC threads of
// a warp read neighbouring output channels (the same input pixels: broadcast loads).
template <typename T>
__global__ void conv_forward_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ w,
                                    const T* __restrict__ bias, T* __restrict__ y, int64_t total) {
  using A = acc_t<T>;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t xcs = channel_stride(p.H, p.W, p.layout);
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 o = decode(i, p.K, p.OH, p.OW, p.layout);
    const int64_t g = o.c / Kg;
    A acc = bias ? to_acc(bias[o.c]) : A(0);
    const T* wk = w + o.c * Cg * p.R * p.S;
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t ih = remap_index_dev(o.h * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      if (ih < 0) continue;
      for (int64_t s = 0; s < p.S; ++s) {
        const int64_t iw = remap_index_dev(o.w * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
        if (iw < 0) continue;
        const T* xp = x + offset4(o.n, g * Cg, ih, iw, p.C, p.H, p.W, p.layout);
        const T* wp = wk + r * p.S + s;
        for (int64_t c = 0; c < Cg; ++c) acc += to_acc(xp[c * xcs]) * to_acc(wp[c * p.R * p.S]);
      }
    }
    y[i] = from_acc<T>(acc);
  }
}

// Padded coordinates (in [-pad_lo, n + pad_hi)) that remap_index sends to input coordinate i: at most
// three ranges (the coordinate itself and, per padding mode, its mirror / wrap / replicated edge).
struct Preimages {
  int64_t lo[3], hi[3];  // inclusive ranges
  int count;
};

__device__ __forceinline__ Preimages preimages(int64_t i, int64_t n, int64_t pad_lo, int64_t pad_hi,
                                               PaddingMode mode) {
  Preimages r;
  r.count = 0;
  auto add = [&](int64_t a, int64_t b) {
    a = a < -pad_lo ? -pad_lo : a;
    b = b > n + pad_hi - 1 ? n + pad_hi - 1 : b;
    if (a <= b) {
      r.lo[r.count] = a;
      r.hi[r.count] = b;
      ++r.count;
    }
  };
  add(i, i);
  switch (mode) {
    case PaddingMode::Zeros: break;
    case PaddingMode::Reflect:
      if (i > 0) add(-i, -i);
      if (i < n - 1) add(2 * (n - 1) - i, 2 * (n - 1) - i);
      break;
    case PaddingMode::Replicate:
      if (i == 0) add(-pad_lo, -1);
      if (i == n - 1) add(n, n + pad_hi - 1);
      break;
    case PaddingMode::Circular:
      add(i - n, i - n);
      add(i + n, i + n);
      break;
  }
  return r;
}

// One thread per input element (n, c, h, w): sums gy * w over every (padded position, tap) whose output
// exists, i.e. the transpose of the forward's gather, padding folded back through preimages().
template <typename T>
__global__ void conv_backward_input_kernel(ConvParams p, const T* __restrict__ gy, const T* __restrict__ w,
                                           T* __restrict__ gx, int64_t total) {
  using A = acc_t<T>;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t ycs = channel_stride(p.OH, p.OW, p.layout);
  FASTCONV_GRID_STRIDE(i, total) {
    const Coord4 q = decode(i, p.C, p.H, p.W, p.layout);
    const int64_t g = q.c / Cg, cl = q.c % Cg;
    const Preimages ph = preimages(q.h, p.H, p.pad_t, p.pad_b, p.mode);
    const Preimages pw = preimages(q.w, p.W, p.pad_l, p.pad_r, p.mode);
    A acc = A(0);
    for (int a = 0; a < ph.count; ++a)
      for (int64_t hp = ph.lo[a]; hp <= ph.hi[a]; ++hp)
        for (int b = 0; b < pw.count; ++b)
          for (int64_t wp = pw.lo[b]; wp <= pw.hi[b]; ++wp)
            for (int64_t r = 0; r < p.R; ++r) {
              const int64_t th = hp + p.pad_t - r * p.dil_h;  // = oh * stride_h
              if (th < 0 || th % p.stride_h != 0) continue;
              const int64_t oh = th / p.stride_h;
              if (oh >= p.OH) continue;
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t tw = wp + p.pad_l - s * p.dil_w;
                if (tw < 0 || tw % p.stride_w != 0) continue;
                const int64_t ow = tw / p.stride_w;
                if (ow >= p.OW) continue;
                const T* gp = gy + offset4(q.n, g * Kg, oh, ow, p.K, p.OH, p.OW, p.layout);
                const T* wp_ = w + ((g * Kg * Cg + cl) * p.R + r) * p.S + s;
                for (int64_t k = 0; k < Kg; ++k) acc += to_acc(gp[k * ycs]) * to_acc(wp_[k * Cg * p.R * p.S]);
              }
            }
    gx[i] = from_acc<T>(acc);
  }
}

// One warp per weight element (k, c, r, s): lanes stride over (n, oh, ow) and the warp reduces with a
// fixed shuffle tree, so the result is the same on every run.
template <typename T>
__global__ void conv_backward_weight_kernel(ConvParams p, const T* __restrict__ x, const T* __restrict__ gy,
                                            T* __restrict__ gw, int64_t total) {
  using A = acc_t<T>;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int lane = threadIdx.x & 31;
  const int64_t warps_per_grid = (int64_t(gridDim.x) * blockDim.x) >> 5;
  const int64_t positions = p.N * p.OH * p.OW;
  for (int64_t e = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; e < total; e += warps_per_grid) {
    const int64_t s = e % p.S, r = (e / p.S) % p.R, cl = (e / (p.S * p.R)) % Cg, k = e / (p.S * p.R * Cg);
    const int64_t c = (k / Kg) * Cg + cl;
    A acc = A(0);
    for (int64_t j = lane; j < positions; j += 32) {
      const int64_t ow = j % p.OW, oh = (j / p.OW) % p.OH, n = j / (p.OW * p.OH);
      const int64_t ih = remap_index_dev(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      const int64_t iw = remap_index_dev(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
      if (ih < 0 || iw < 0) continue;
      acc += to_acc(gy[offset4(n, k, oh, ow, p.K, p.OH, p.OW, p.layout)]) *
             to_acc(x[offset4(n, c, ih, iw, p.C, p.H, p.W, p.layout)]);
    }
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) gw[e] = from_acc<T>(acc);
  }
}

// One block per output channel k: threads stride over (n, oh, ow), then a fixed-order block reduction.
template <typename T, int kBlock>
__global__ void conv_backward_bias_kernel(ConvParams p, const T* __restrict__ gy, T* __restrict__ gb) {
  using A = acc_t<T>;
  __shared__ A partial[kBlock];
  const int64_t positions = p.N * p.OH * p.OW, hw = p.OH * p.OW;
  for (int64_t k = blockIdx.x; k < p.K; k += gridDim.x) {
    A acc = A(0);
    for (int64_t j = threadIdx.x; j < positions; j += kBlock) {
      const int64_t n = j / hw, pix = j % hw;
      const int64_t off = p.layout == Layout::NCHW ? (n * p.K + k) * hw + pix : (n * hw + pix) * p.K + k;
      acc += to_acc(gy[off]);
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int step = kBlock / 2; step > 0; step >>= 1) {
      if (threadIdx.x < step) partial[threadIdx.x] += partial[threadIdx.x + step];
      __syncthreads();
    }
    if (threadIdx.x == 0) gb[k] = from_acc<T>(partial[0]);
    __syncthreads();
  }
}

template <typename T>
__global__ void bias_add_kernel(int64_t C, int64_t hw, Layout layout, const T* __restrict__ bias, T* __restrict__ y,
                                int64_t total) {
  FASTCONV_GRID_STRIDE(i, total) {
    const int64_t c = layout == Layout::NCHW ? (i / hw) % C : i % C;
    y[i] = from_acc<T>(to_acc(y[i]) + to_acc(bias[c]));
  }
}

}  // namespace

template <typename T>
void conv_forward_direct(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream) {
  const int64_t total = p.N * p.K * p.OH * p.OW;
  if (total == 0) return;
  conv_forward_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, x, w, bias, y, total);
  FASTCONV_CHECK_LAUNCH("conv_forward_direct");
}

template <typename T>
void conv_backward_input_direct(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream) {
  const int64_t total = p.N * p.C * p.H * p.W;
  if (total == 0) return;
  conv_backward_input_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(p, gy, w, gx, total);
  FASTCONV_CHECK_LAUNCH("conv_backward_input_direct");
}

template <typename T>
void conv_backward_weight_direct(const ConvParams& p, const T* x, const T* gy, T* gw, cudaStream_t stream) {
  const int64_t total = p.K * (p.C / p.groups) * p.R * p.S;
  if (total == 0) return;
  // 8 warps per block, one weight element per warp.
  conv_backward_weight_kernel<T><<<grid_for(total * 32), kThreads, 0, stream>>>(p, x, gy, gw, total);
  FASTCONV_CHECK_LAUNCH("conv_backward_weight_direct");
}

template <typename T>
void conv_backward_bias(const ConvParams& p, const T* gy, T* gb, cudaStream_t stream) {
  if (p.K == 0) return;
  constexpr int kBlock = 256;
  const unsigned int blocks = static_cast<unsigned int>(p.K < 65535 ? p.K : 65535);
  conv_backward_bias_kernel<T, kBlock><<<blocks, kBlock, 0, stream>>>(p, gy, gb);
  FASTCONV_CHECK_LAUNCH("conv_backward_bias");
}

template <typename T>
void bias_add(int64_t N, int64_t C, int64_t hw, Layout layout, const T* bias, T* y, cudaStream_t stream) {
  const int64_t total = N * C * hw;
  if (total == 0) return;
  bias_add_kernel<T><<<grid_for(total), kThreads, 0, stream>>>(C, hw, layout, bias, y, total);
  FASTCONV_CHECK_LAUNCH("bias_add");
}

#define FASTCONV_INSTANTIATE(T)                                                                            \
  template void conv_forward_direct<T>(const ConvParams&, const T*, const T*, const T*, T*, cudaStream_t); \
  template void conv_backward_input_direct<T>(const ConvParams&, const T*, const T*, T*, cudaStream_t);    \
  template void conv_backward_weight_direct<T>(const ConvParams&, const T*, const T*, T*, cudaStream_t);   \
  template void conv_backward_bias<T>(const ConvParams&, const T*, T*, cudaStream_t);                      \
  template void bias_add<T>(int64_t, int64_t, int64_t, Layout, const T*, T*, cudaStream_t);
FASTCONV_CUDA_FOR_EACH_TYPE(FASTCONV_INSTANTIATE)
#undef FASTCONV_INSTANTIATE

}  // namespace cuda
}  // namespace fastconv
