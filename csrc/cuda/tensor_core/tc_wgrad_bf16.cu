// Tensor-core convolution, wgrad for __nv_bfloat16 (see tc_conv_impl.cuh; one instantiation per file for build parallelism).
#include "tc_conv_impl.cuh"

FASTCONV_TC_INSTANTIATE_WGRAD(__nv_bfloat16)
