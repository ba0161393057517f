// Tensor-core implicit-GEMM convolutions (torch-free): forward, input gradient and weight gradient in NHWC,
// float16 / bfloat16, and float32 through TF32 when the caller allows it. The mainloops are CUTLASS's SM80
// implicit-GEMM convolution kernels (third_party/cutlass: precomputed filter/activation iterators, 128-bit
// cp.async loads in a multistage pipeline, ldmatrix + mma.sync); they also run on Hopper. Ours: which problems
// take them, the tile choice, the fused bias, split-K for the weight gradient with a fixed-order reduction
// (deterministic: no atomics anywhere), and the weight gradient's conversion to the caller's (K, C, R, S).
//
// GEMM views (CUTLASS's): forward M = N*OH*OW, N = K, K = R*S*C; input gradient M = N*H*W, N = C, K = R*S*K;
// weight gradient M = K, N = R*S*C, K = N*OH*OW (split in `splits` slices, each writing float partials).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "../../common/conv_params.h"
#include "../conv_kernels.cuh"

namespace fastconv {
namespace cuda {

// Whether the tensor-core path runs `pass` of p for element type T (__half, __nv_bfloat16, float) on the
// current device: p.layout NHWC, groups 1, zero padding, C and K multiples of 8 (float: 4), every tensor under
// 2^31 bytes, TF32 allowed for float, a device of compute capability >= 8.0 running sm_80+ code, and CUTLASS's
// own can_implement. When it runs, the forward and the input gradient read the weight as (K, R, S, C).
template <typename T>
bool tc_conv_applies(const ConvParams& p, ConvPass pass, const ConvOptions& opt);

// Device workspace the weight gradient needs (its float split-K partials), in bytes; 0 for the other passes.
template <typename T>
size_t tc_conv_workspace_bytes(const ConvParams& p, ConvPass pass);

// y (NHWC) = conv(x (NHWC), w (K, R, S, C)) + bias (may be null).
template <typename T>
void tc_conv_forward(const ConvParams& p, const T* x, const T* w_krsc, const T* bias, T* y, cudaStream_t stream);

// gx (NHWC) = adjoint of the forward in x; w is (K, R, S, C).
template <typename T>
void tc_conv_backward_input(const ConvParams& p, const T* gy, const T* w_krsc, T* gx, cudaStream_t stream);

// gw (K, C, R, S contiguous) = adjoint of the forward in w; `workspace` holds tc_conv_workspace_bytes(p,
// ConvPass::BackwardWeight) bytes (16-byte aligned).
template <typename T>
void tc_conv_backward_weight(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace,
                             size_t workspace_bytes, cudaStream_t stream);

}  // namespace cuda
}  // namespace fastconv
