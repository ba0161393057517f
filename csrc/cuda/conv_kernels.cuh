// CUDA convolution launchers (torch-free). Same contract as csrc/cpu/conv/conv_kernels.h: activations dense in
// p.layout (NCHW or NHWC), weight dense (K, C/groups, R, S), bias may be null; every entry point writes
// (never accumulates into) its output. Pointers are device pointers; work is enqueued on `stream`; a failed
// launch throws CudaError. T is float, double, __half or __nv_bfloat16 (accumulation in float, double for
// double). All kernels are deterministic (gather formulations, fixed-order reductions, no atomics).
#pragma once

#include <cuda_runtime.h>

#include "../common/conv_params.h"

namespace fastconv {
namespace cuda {

struct ConvOptions {
  bool allow_tf32 = false;  // float32 may use TF32 tensor cores (torch.backends.cudnn.allow_tf32)
};

// y = conv(x, w) + bias; y has (N, K, OH, OW) in p.layout.
template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, const ConvOptions& opt,
                  cudaStream_t stream);

// gx = adjoint of conv_forward in x (padding modes folded back onto the input).
template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, const ConvOptions& opt,
                         cudaStream_t stream);

// gw = adjoint of conv_forward in w.
template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, const ConvOptions& opt,
                          cudaStream_t stream);

// gb[k] = sum over n, oh, ow of gy (p.N, p.K, p.OH, p.OW, p.layout are read).
template <typename T>
void conv_backward_bias(const ConvParams& p, const T* gy, T* gb, cudaStream_t stream);

// y[n, c, h, w] += bias[c] for a dense (N, C, H*W) tensor in `layout` (transposed convolution's bias).
template <typename T>
void bias_add(int64_t N, int64_t C, int64_t hw, Layout layout, const T* bias, T* y, cudaStream_t stream);

// The reference kernels (one thread per output element / one warp per weight element). The entry points
// above use them for every shape the tensor-core path does not take.
template <typename T>
void conv_forward_direct(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream);
template <typename T>
void conv_backward_input_direct(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream);
template <typename T>
void conv_backward_weight_direct(const ConvParams& p, const T* x, const T* gy, T* gw, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
