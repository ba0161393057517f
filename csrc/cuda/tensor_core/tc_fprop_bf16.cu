// Tensor-core convolution, fprop for __nv_bfloat16 (see tc_conv_impl.cuh; one instantiation per file for build parallelism).
#include "tc_conv_impl.cuh"

FASTCONV_TC_INSTANTIATE_FPROP(__nv_bfloat16)
