// Convolutions computed in the other activation layout: the activations are transposed into scratch, the
// pass runs in the preferred layout, and an activation result is transposed back. These cases, where the
// other layout's kernel is about 2x faster and the activations are small enough that the transposes
// cost little (measured on this 2-core AVX-512 machine, numbers in the commit):
//   NHWC, a kernel larger than 1x1 with 2 MB or more of weight per group, at most 28x28 outputs (VGG-16
//     conv4/conv5, ResNet layer3/layer4, DCGAN's first transposed layer) -> NCHW: the NCHW GEMM reads the
//     weight in place;
//   NCHW 1x1 (stride 1, unpadded) with at most 7x7 outputs -> NHWC, where all three passes are one GEMM
//     over the whole batch (and an NHWC 1x1 stays there whatever its weight);
//   NCHW forward and input gradient of stride-1 kernels of 5x5 or more with 16 or more channels per group
//     (MNIST, GoogLeNet, AlexNet 5x5) -> NHWC, where they run as direct convolutions (no im2col);
//   NCHW strided forwards with more than 7x7 outputs and 16 or more channels per group -> NHWC (likewise);
//   NCHW depthwise with output rows shorter than 16 (MobileNet's 14x14 and 7x7 stages) -> NHWC: the
//     NHWC depthwise kernel vectorises over channels, the NCHW one over a row of at most 15 outputs.
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

enum class ConvPass { Forward, BackwardInput, BackwardWeight };

// The layout a pass of p should run in (p.layout unless one of the cases above applies).
Layout preferred_layout(const ConvParams& p, ConvPass pass, int64_t elem_size);

// preferred_layout(p) when the pass, moved there, stays there (the dispatch then runs it there without
// switching again); else p.layout. The dispatch switches only through this.
Layout switch_target(const ConvParams& p, ConvPass pass, int64_t elem_size);

template <typename T>
void conv_forward_in_layout(const ConvParams& p, Layout target, const T* x, const T* w, const T* bias, T* y);

// An NCHW forward as the channels_last direct convolution (conv_implicit_nhwc.h), which reads the NCHW input and
// writes the NCHW output itself: the caller has checked that the channels_last dispatch would run p there.
template <typename T>
void conv_forward_nchw_via_direct(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

template <typename T>
void conv_backward_input_in_layout(const ConvParams& p, Layout target, const T* gy, const T* w, T* gx);

template <typename T>
void conv_backward_weight_in_layout(const ConvParams& p, Layout target, const T* x, const T* gy, T* gw);

}  // namespace cpu
}  // namespace fastconv
