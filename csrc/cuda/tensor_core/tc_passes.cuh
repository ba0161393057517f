// Per-pass entry points of the tensor-core convolutions, each instantiated in its own .cu file per element type
// (tc_<pass>_<type>.cu, from tc_conv_impl.cuh); tc_conv.cu puts them behind tc_conv.cuh.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cuda {
namespace tc {

template <typename T> bool fprop_applies(const ConvParams& p);
template <typename T> void fprop(const ConvParams& p, const T* x, const T* w, const T* bias, T* y, cudaStream_t stream);

template <typename T> bool dgrad_applies(const ConvParams& p);
template <typename T> void dgrad(const ConvParams& p, const T* gy, const T* w, T* gx, cudaStream_t stream);

template <typename T> bool wgrad_applies(const ConvParams& p);
template <typename T> size_t wgrad_workspace_bytes(const ConvParams& p);
template <typename T>
void wgrad(const ConvParams& p, const T* x, const T* gy, T* gw, void* workspace, size_t workspace_bytes,
           cudaStream_t stream);

}  // namespace tc
}  // namespace cuda
}  // namespace fastconv
