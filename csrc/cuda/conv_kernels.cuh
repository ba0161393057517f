// CUDA convolution launchers (torch-free). Same contract as csrc/cpu/conv/conv_kernels.h: activations dense in
// p.layout (NCHW or NHWC), weight dense (K, C/groups, R, S), bias may be null; every entry point writes
// (never accumulates into) its output. Pointers are device pointers; work is enqueued on `stream`; a failed
// launch throws CudaError. T is float, double, __half or __nv_bfloat16 (accumulation in float, double for
// double). All kernels are deterministic (gather formulations, fixed-order reductions, no atomics).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "../common/conv_params.h"

namespace fastconv {
namespace cuda {

struct ConvOptions {
  bool allow_tf32 = false;  // float32 may use TF32 tensor cores (torch.backends.cudnn.allow_tf32)
};

// Which algorithm runs is decided in conv_dispatch.cu: the tensor-core implicit GEMMs (tensor_core/tc_conv.cuh)
// for NHWC float16 / bfloat16 (float32 when TF32 is allowed) with groups 1; the depthwise kernels
// (conv_depthwise.cu) for NHWC groups == C == K; the WMMA kernel for other float16 / bfloat16 NHWC forwards; the
// direct kernels for everything else (float64, NCHW, padding modes).

enum class ConvPass : int { Forward = 0, BackwardInput = 1, BackwardWeight = 2 };

// Whether `pass` of p runs on the tensor cores (tensor_core/tc_conv.cuh). There the forward and the input gradient
// read the weight as (K, R, S, C/groups) (p.weight_rsc): the caller asks first and passes the weight that way.
template <typename T>
bool conv_uses_tensor_cores(const ConvParams& p, ConvPass pass, const ConvOptions& opt);

// Bytes of device workspace conv_backward_weight needs for p (16-byte aligned; 0: none).
template <typename T>
size_t conv_backward_weight_workspace(const ConvParams& p, const ConvOptions& opt);

// y = conv(x, w) + bias; y has (N, K, OH, OW) in p.layout; w is (K, C/groups, R, S), or (K, R, S, C/groups) when
// p.weight_rsc (only where conv_uses_tensor_cores said so).
template <typename T>
void conv_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, const ConvOptions& opt,
                  cudaStream_t stream);

// gx = adjoint of conv_forward in x (padding modes folded back onto the input); w as for conv_forward.
template <typename T>
void conv_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, const ConvOptions& opt,
                         cudaStream_t stream);

// gw (K, C/groups, R, S) = adjoint of conv_forward in w; `workspace` holds conv_backward_weight_workspace bytes.
template <typename T>
void conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, const ConvOptions& opt,
                          cudaStream_t stream, void* workspace = nullptr, size_t workspace_bytes = 0);

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

// Depthwise convolution (groups == C == K, NHWC, w (C, 1, R, S)): the input tile of a block in shared memory,
// each thread a vector of channels over a row of outputs in registers. Every parameter but padding modes.
template <typename T>
bool depthwise_applies(const ConvParams& p);
template <typename T>
void depthwise_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream);
template <typename T>
void depthwise_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream);
template <typename T>
size_t depthwise_weight_workspace(const ConvParams& p);  // bytes of float (double) partials
template <typename T>
void depthwise_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace,
                               size_t workspace_bytes, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
