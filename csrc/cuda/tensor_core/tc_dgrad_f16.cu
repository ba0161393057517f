// Tensor-core convolution, dgrad for __half (see tc_conv_impl.cuh; one instantiation per file for build parallelism).
#include "tc_conv_impl.cuh"

FASTCONV_TC_INSTANTIATE_DGRAD(__half)
