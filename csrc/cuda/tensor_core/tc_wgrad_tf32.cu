// Tensor-core convolution, wgrad for float (see tc_conv_impl.cuh; one instantiation per file for build parallelism).
#include "tc_conv_impl.cuh"

FASTCONV_TC_INSTANTIATE_WGRAD(float)
