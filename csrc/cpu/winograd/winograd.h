// Winograd minimal filtering (Lavin & Gray, CVPR 2016) for stride-1, undilated convolutions, on 6x6 input
// patches: F(4x4, 3x3) for 3x3 kernels (a 4x4 output tile costs 36 multiplies per (input, output channel)
// instead of 144) and F(2x2, 5x5) for 5x5 ones (a 2x2 tile: 36 instead of 100).
//
//   U[xi][c][k] = (G g_kc G^T)[xi]        weights, transformed per call (inference: kept, p.winograd_weight)
//   V[xi][t][c] = (B^T d_tc B)[xi]        6x6 input patches of a block of tiles t, channels as vector lanes
//   M[xi][t][k] = sum_c V[xi][t][c] U[xi][c][k]   36 GEMMs per block of tiles (the GEMM micro-kernel)
//   y_tk        = A^T M_tk A (m x m)      output tile, clipped at the edges, plus bias
//
// Channels are the vector lanes of both transforms: channels_last activations are read and written a vector
// at a time, NCHW ones a plane per lane (for small planes the dispatch transposes NCHW activations to
// channels_last instead: winograd_direct_nchw). Padding of any size and every padding mode are folded into
// the input gather. The weight gradient runs the same transforms transposed (winograd_backward_weight.cpp).
// Groups of 8, 16 or 32 channels in and out have kernels of their own (winograd_small_group.cpp).
// Accuracy: relative errors against a float64 reference of 1e-7 to 3.3e-6 on the benchmark zoo (direct
// convolution: ~2e-7); docs and numbers in README, "Algorithms and accuracy".
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// fastconv.backends.cpu.allow_winograd (default on): the switch for the Winograd paths.
bool winograd_allowed();
void set_winograd_allowed(bool allowed);

// Tests: off, every 3x3 stride-1 float32 convolution takes the Winograd path whatever its channel and tile
// counts (use_winograd_forward's size rule); returns the previous setting.
bool set_winograd_size_rule(bool on);
bool winograd_size_rule();
// Tests: the forward's work split (0: by size, 1: private blocks, 2: output-channel panels, 3: team blocks;
// winograd_forward.cpp), and the tiles per block of the team regime and of the weight gradient (0: by
// size). Both return the previous setting.
int set_winograd_forward_regime(int regime);
int64_t set_winograd_block_tiles(int64_t tiles);
int64_t winograd_block_tiles();

// The shapes the Winograd forward kernels take (3x3 and 5x5 kernels; any layout: the dispatch chooses
// channels_last for it),
// with enough channels that the transforms do not dominate, float32 only (float64 keeps the exact paths).
// Groups too, when the output channels per group are a multiple of the GEMM's 32 columns: the transformed
// weight is block diagonal and each column panel's GEMMs read only its group's channels.
bool use_winograd_forward(const ConvParams& p, int64_t elem_size);

// Whether NCHW activations with output planes of out_plane pixels are read and written in place (long rows),
// rather than transposed to channels_last first (measured, 2 threads: planes of 224x224 to 56x56 ran 1.1-1.5x
// faster in place, 28x28 either way, 14x14 1.5x slower).
bool winograd_direct_nchw(int64_t out_plane);

// Forward convolution (use_winograd_forward), NCHW or channels_last: y = conv(x, w) + bias. Uses
// p.winograd_weight, when set, instead of transforming w.
template <typename T>
void conv_forward_winograd(const ConvParams& p, const T* x, const T* w, const T* bias, T* y);

// Whether the forward of p transforms its weight inside its GEMM loop (the output-channel panel regime: each
// panel's share, a block of input channels at a time, used while in L2). A transformed weight kept between calls
// (p.winograd_weight) is 4x the weight read back from memory there, slower than transforming it again (A/B in one
// process, 2 threads: 0.56-0.94x on 64-512 channels, 7x7 to 28x28, batch 1-4); the inference cache skips these.
bool winograd_forward_fuses_weight_transform(const ConvParams& p, int64_t elem_size);

// The forward's transformed weight (what p.winograd_weight points to): winograd_weight_elems values of
// elem_size bytes, filled by winograd_transform_weight from the (K, C, 3, 3) weight.
int64_t winograd_weight_elems(const ConvParams& p, int64_t elem_size);
template <typename T>
void winograd_transform_weight(const ConvParams& p, const T* w, T* U);

// The input gradient of p (use_winograd_backward_input: zero padding <= 2, the output of the
// formula's size) as a Winograd forward convolution of grad_output with the rotated, transposed kernel.
bool use_winograd_backward_input(const ConvParams& p, int64_t elem_size);
template <typename T>
void conv_backward_input_winograd(const ConvParams& p, const T* gy, const T* w, T* gx);

// The weight gradient of p (the shapes of use_winograd_forward, any padding mode): 36 GEMMs over the tiles'
// transformed inputs and grad_outputs (winograd_backward_weight.cpp).
bool use_winograd_backward_weight(const ConvParams& p, int64_t elem_size);
template <typename T>
void conv_backward_weight_winograd(const ConvParams& p, const T* x, const T* gy, T* gw);

// Grouped 3x3 stride-1 float32 convolutions with 8, 16 or 32 channels per group in and out (ResNeXt-50 32x4d's
// layer2, layer3 and layer4), zero padding: F(4x4, 3x3) per group (winograd_small_group.cpp),
// forward, input gradient (padding <= 2) and, for 16 channels per group, weight gradient.
bool small_group_winograd_applies(const ConvParams& p, int64_t elem_size);
bool small_group_winograd_backward_input_applies(const ConvParams& p, int64_t elem_size);
bool small_group_winograd_backward_weight_applies(const ConvParams& p, int64_t elem_size);
void small_group_winograd_forward(const ConvParams& p, const float* x, const float* w, const float* bias, float* y);
void small_group_winograd_backward_input(const ConvParams& p, const float* gy, const float* w, float* gx);
void small_group_winograd_backward_weight(const ConvParams& p, const float* x, const float* gy, float* gw);

}  // namespace cpu
}  // namespace fastconv
