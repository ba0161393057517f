// Chooses the CPU algorithm for each convolution pass:
//   dilated, stride 1, whose undilated subgrids take Winograd -> conv_subgrid.cpp (regrouped, then this
//     (use_subgrids)                                           dispatch undilated)
//   grouped 3-wide kernels with 2-16 channels per group   -> conv_small_group*.cpp (forward, input gradient
//     in and out (ResNeXt; small_group_*_applies)           (stride 2 along the width: two column phases), weight
//                                                            gradient, either layout; several groups across the
//                                                            vector lanes)
//   float32 3x3 stride-1 groups of 8, 16 or 32 channels   -> winograd/winograd_small_group.cpp (F(4x4, 3x3) per
//     in and out (small_group_winograd_*applies;            group, either layout: forward, input gradient with
//     allow_winograd; before the general Winograd kernel)   padding <= 2, weight gradient with 16 per group)
//   weight gradient with <= 16 channels per group and     -> conv_few_channel_weight.cpp (either layout; the
//     output channels in whole vectors (use_few_channel_weight)  output channels across the lanes)
//   float32 3x3 / 5x5 stride 1 (use_winograd_forward),    -> winograd/ F(4x4, 3x3) / F(2x2, 5x5) (NCHW with
//     forward, input gradient (use_winograd_backward_input)  small planes on transposed, channels_last
//     and weight gradient (use_winograd_backward_weight)     activations)
//   weight gradient with more channels per group, output  -> conv_many_channel_weight.cpp (either layout; the same
//     channels in whole vectors, stride 1 and 3x3 or more  register tile, the result split over the threads)
//     (Winograd's first), or 4x4+ strided on 128+ channels
//     (use_many_channel_weight)
//   a layout the shape runs faster in (switch_target)     -> the same dispatch on transposed activations
//                                                            (conv_layout_switch.cpp; an NCHW float forward
//                                                            that runs the channels_last direct convolution
//                                                            there writes its NCHW output from the tiles)
//   depthwise (groups == C > 1, one input channel per group) -> conv_depthwise_{nchw,nhwc}.cpp
//                                                            (input gradient: unless the input is far larger
//                                                            than the output, depthwise_gather_wasteful)
//   kernel covering the whole unpadded input (1x1 output) -> conv_whole_input.cpp (one GEMM per pass)
//   forward with few input channels (use_direct_small)    -> conv_direct_small.cpp (no column matrix)
//   channels_last input gradient of a kernel that tiles its input (kernel == stride, unpadded: U-Net's
//     transposed 2x2/2; use_patch_backward_input)        -> conv_patch_input.cpp (one GEMM, rows copied out)
//   input gradient (stride 1, zeros) whose transposed forward is a use_direct_small one
//                                                          -> conv_direct_small_input.cpp (direct forward kernel)
//   weight gradient of tiny C*R*S (use_direct_small_weight) -> conv_direct_small_weight.cpp
//   everything else with a non-empty output               -> im2col + packed GEMM (conv_gemm*.cpp)
//   empty outputs / empty gradients                       -> the direct reference kernels
// A channels_last weight (p.weight_rsc) reaches the Winograd transforms, the channels_last direct
// convolution's packing (conv_implicit_nhwc.cpp) and the NCHW input gradient's GEMM as it is, and is made dense
// for every other path (dense_weight).
// Every pass runs on one thread when its work is below kMinParallelWork (sized_threads, conv_threads.h).
#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "bias_add.h"
#include "conv_depthwise.h"
#include "conv_direct_small.h"
#include "conv_few_channel_weight.h"
#include "conv_many_channel_weight.h"
#include "conv_gemm.h"
#include "conv_implicit_nhwc.h"
#include "conv_kernels.h"
#include "conv_layout_switch.h"
#include "conv_patch_input.h"
#include "conv_small_group.h"
#include "conv_subgrid.h"
#include "conv_threads.h"
#include "conv_whole_input.h"
#include "../gemm/gemm_scratch.h"
#include "../transpose.h"
#include "../winograd/winograd.h"

#include <algorithm>
#include <type_traits>

namespace fastconv {
namespace cpu {
namespace {

// The fast paths assume a non-empty output (an empty grad_output leaves nothing to multiply).
bool use_fast(const ConvParams& p) { return p.N > 0 && p.OH > 0 && p.OW > 0; }

// The depthwise input-gradient kernels gather: every input pixel visits all R*S taps, which costs
// H*W*R*S against the OH*OW*R*S multiply-adds that exist. For a kernel far wider than its output (a
// transposed convolution with a 2x131072 kernel on a 1x1 input took 87 s) most visits find no output;
// there the general paths below (im2col + GEMM with col2im, which visits only real taps) run instead.
bool depthwise_gather_wasteful(const ConvParams& p) { return p.H * p.W > 16 * p.OH * p.OW; }

// The weight as (K, Cg, R, S): a (K, R, S, Cg) one (p.weight_rsc) is transposed into the calling thread's
// scratch and p says so from then on. The Winograd transforms skip this copy (for a 512 -> 512 3x3 layer,
// 9.4 MB read and written per pass, a sixth of its Winograd time).
template <typename T>
const T* dense_weight(ConvParams& p, const T* w) {
  if (!p.weight_rsc) return w;
  const int64_t RS = p.R * p.S, Cg = p.C_per_group();
  T* dense = thread_scratch<T>(kScratchDenseWeight, size_t(p.K * Cg * RS));
  batched_transpose(p.K, RS, Cg, w, dense, p.num_threads);
  p.weight_rsc = false;
  return dense;
}

// The forward's algorithm for p, in the order conv_forward tries them.
enum class ForwardPath {
  Subgrids, SmallGroupWinograd, Winograd, OtherLayout, Depthwise, SmallGroups, WholeInput, DirectSmall, Gemm, Reference
};

ForwardPath forward_path(const ConvParams& p, int64_t elem_size) {
  if (!use_fast(p)) return ForwardPath::Reference;
  if (use_subgrids(p, ConvPass::Forward, elem_size)) return ForwardPath::Subgrids;
  // before the layout rules (either layout, as it is), and before the general Winograd kernel, which takes groups of
  // 32 too (ResNeXt-50's layer4: 0.74x of the exact path channels_last, against 1.5-2x here)
  if (small_group_winograd_applies(p, elem_size)) return ForwardPath::SmallGroupWinograd;
  // before the layout rules: the Winograd kernel wants channels_last whatever they say
  if (use_winograd_forward(p, elem_size)) return ForwardPath::Winograd;
  if (small_group_forward_applies(p, elem_size)) return ForwardPath::SmallGroups;  // either layout, as it is
  if (switch_target(p, ConvPass::Forward, elem_size) != p.layout) return ForwardPath::OtherLayout;
  if (is_depthwise(p)) return ForwardPath::Depthwise;
  if (is_whole_input_kernel(p)) return ForwardPath::WholeInput;
  if (use_direct_small(p, elem_size)) return ForwardPath::DirectSmall;
  return ForwardPath::Gemm;  // its first choice, the channels_last direct convolution (implicit_forward_applies)
}

// An NCHW float forward moved to channels_last for the direct convolution there: its tiles write the NCHW output
// themselves, and its bands of input rows are transposed as they are gathered (conv_forward_nchw_via_direct; that
// against a whole-input transpose first, A/B in one process: AlexNet's stem 4.47 -> 4.29 ms, ResNet-18's 64 -> 128
// 3x3/2 at batch 4 2.66 -> 2.49 ms, 128 -> 256 2.56 -> 2.49, MNIST's 5x5 even). On this Zen 4, 2 threads, both ways
// alternated call by call in one process: AlexNet's 3 -> 96 11x11/4 stem 1.09-1.15x faster, GoogLeNet's 16 -> 32
// 5x5 on 28x28 1.08x, MNIST's on 14x14 1.03x, a 32 -> 64 3x3/2 on 15x15 outputs 1.06x; planes of 7x7 and below
// 2-5% slower (a tile's channel rows are then as short as its 4-7 pixels), so they keep both transposes. Double
// keeps them too (its tiles would store element by element).
constexpr int64_t kMinPlanarOutputPixels = 64;

bool direct_writes_nchw(const ConvParams& p, Layout target, int64_t elem_size) {
  if (p.layout != Layout::NCHW || target != Layout::NHWC || elem_size != 4) return false;
  if (p.OH * p.OW < kMinPlanarOutputPixels) return false;
  ConvParams q = p;
  q.layout = target;
  return forward_path(q, elem_size) == ForwardPath::Gemm && implicit_forward_applies(q, elem_size);
}

}  // namespace

template <typename T>
void conv_forward(const ConvParams& params, const T* x, const T* w, const T* bias, T* y) {
  capture_caller_denormal_mode();  // the caller's torch.set_flush_denormal, for every thread
  ConvParams p = sized_threads(params);
  switch (forward_path(p, sizeof(T))) {
    case ForwardPath::Subgrids:
      w = dense_weight(p, w);
      return conv_forward_subgrids(p, x, w, bias, y);
    case ForwardPath::Winograd:
      return p.layout == Layout::NHWC || winograd_direct_nchw(p.OH * p.OW)
                 ? conv_forward_winograd(p, x, w, bias, y)
                 : conv_forward_in_layout(p, Layout::NHWC, x, w, bias, y);
    case ForwardPath::OtherLayout: {  // (this dispatch again, in the other layout)
      const Layout other = switch_target(p, ConvPass::Forward, sizeof(T));
      if (direct_writes_nchw(p, other, sizeof(T))) return conv_forward_nchw_via_direct(p, x, w, bias, y);
      return conv_forward_in_layout(p, other, x, w, bias, y);
    }
    // From here each path makes the weight dense unless it reads a channels_last one as it is.
    case ForwardPath::Depthwise:
      w = dense_weight(p, w);
      return p.layout == Layout::NCHW ? depthwise_forward_nchw(p, x, w, bias, y)
                                      : depthwise_forward_nhwc(p, x, w, bias, y);
    case ForwardPath::SmallGroupWinograd:
      if constexpr (std::is_same_v<T, float>) {
        w = dense_weight(p, w);
        return small_group_winograd_forward(p, x, w, bias, y);
      }
      break;
    case ForwardPath::SmallGroups:
      w = dense_weight(p, w);
      return small_group_forward(p, x, w, bias, y);
    case ForwardPath::WholeInput:
      w = dense_weight(p, w);
      return whole_input_forward(p, x, w, bias, y);
    case ForwardPath::DirectSmall:
      w = dense_weight(p, w);
      return conv_forward_direct_small(p, x, w, bias, y);
    case ForwardPath::Gemm:  // its first choice, the channels_last direct convolution, packs a channels_last weight
      if (!implicit_forward_applies(p, sizeof(T))) w = dense_weight(p, w);
      return conv_forward_gemm(p, x, w, bias, y);
    case ForwardPath::Reference:
      break;
  }
  w = dense_weight(p, w);
  conv_forward_direct(p, x, w, bias, y);
}

template <typename T>
void conv_backward_input(const ConvParams& params, const T* gy, const T* w, T* gx) {
  capture_caller_denormal_mode();  // the caller's torch.set_flush_denormal, for every thread
  ConvParams p = sized_threads(params);
  if (use_fast(p) && use_subgrids(p, ConvPass::BackwardInput, sizeof(T))) {
    w = dense_weight(p, w);
    return conv_backward_input_subgrids(p, gy, w, gx);
  }
  if constexpr (std::is_same_v<T, float>) {
    if (use_fast(p) && small_group_winograd_backward_input_applies(p, sizeof(T))) {  // (see conv_forward)
      w = dense_weight(p, w);
      return small_group_winograd_backward_input(p, gy, w, gx);
    }
  }
  if (use_fast(p) && use_winograd_backward_input(p, sizeof(T)))  // (see conv_forward)
    return p.layout == Layout::NHWC || winograd_direct_nchw(p.H * p.W)
               ? conv_backward_input_winograd(p, gy, w, gx)
               : conv_backward_input_in_layout(p, Layout::NHWC, gy, w, gx);
  if (use_fast(p) && use_patch_backward_input(p)) return conv_backward_input_patches(p, gy, w, gx);  // any weight
  if (use_fast(p) && small_group_backward_input_applies(p, sizeof(T))) {  // either layout, as it is
    w = dense_weight(p, w);
    return small_group_backward_input(p, gy, w, gx);
  }
  // (see conv_forward)
  if (const Layout other = switch_target(p, ConvPass::BackwardInput, sizeof(T)); use_fast(p) && other != p.layout)
    return conv_backward_input_in_layout(p, other, gy, w, gx);
  if (use_fast(p) && is_depthwise(p) && !depthwise_gather_wasteful(p)) {
    w = dense_weight(p, w);
    return p.layout == Layout::NCHW ? depthwise_backward_input_nchw(p, gy, w, gx)
                                    : depthwise_backward_input_nhwc(p, gy, w, gx);
  }
  if (use_fast(p) && is_whole_input_kernel(p)) {
    w = dense_weight(p, w);
    return whole_input_backward_input(p, gy, w, gx);
  }
  if (use_fast(p) && use_direct_small_input(p, sizeof(T))) {
    w = dense_weight(p, w);
    return conv_backward_input_direct_small(p, gy, w, gx);
  }
  // The channels_last direct convolution packs a channels_last weight as it is, and NCHW's GEMM transposes one
  // straight into its (C*R*S, K) rows; the channels_last GEMM wants it dense.
  if (use_fast(p)) {
    if (p.layout == Layout::NHWC && !implicit_backward_input_applies(p, sizeof(T))) w = dense_weight(p, w);
    return conv_backward_input_gemm(p, gy, w, gx);
  }
  w = dense_weight(p, w);
  conv_backward_input_direct(p, gy, w, gx);
}

template <typename T>
void conv_transpose_forward(const ConvParams& params, const T* x, const T* w, const T* bias, T* y) {
  const ConvParams p = sized_threads(params);
  if (bias && use_fast(p) && use_patch_backward_input(p)) {  // the bias in the GEMM's epilogue
    capture_caller_denormal_mode();
    return conv_backward_input_patches(p, x, w, y, bias);
  }
  conv_backward_input(params, x, w, y);
  if (bias) bias_add<T>(p.N, p.C, p.H * p.W, p.layout, bias, y, params.num_threads);
}

template <typename T>
void conv_backward_weight(const ConvParams& params, const T* x, const T* gy, T* gw) {
  capture_caller_denormal_mode();  // the caller's torch.set_flush_denormal, for every thread
  const ConvParams p = sized_threads(params);
  if (use_fast(p) && use_subgrids(p, ConvPass::BackwardWeight, sizeof(T))) return conv_backward_weight_subgrids(p, x, gy, gw);
  if (use_fast(p) && small_group_backward_weight_applies(p, sizeof(T))) {
    if constexpr (std::is_same_v<T, float>) {
      if (small_group_winograd_backward_weight_applies(p, sizeof(T)))
        return small_group_winograd_backward_weight(p, x, gy, gw);
    }
    return small_group_backward_weight(p, x, gy, gw);
  }
  if (use_fast(p) && use_few_channel_weight(p, sizeof(T))) return conv_backward_weight_few_channels(p, x, gy, gw);
  if (use_fast(p) && use_winograd_backward_weight(p, sizeof(T)))  // (see conv_forward)
    return p.layout == Layout::NHWC || winograd_direct_nchw(p.OH * p.OW)
               ? conv_backward_weight_winograd(p, x, gy, gw)
               : conv_backward_weight_in_layout(p, Layout::NHWC, x, gy, gw);
  if (use_fast(p) && use_many_channel_weight(p, sizeof(T)))
    return conv_backward_weight_many_channels(p, x, gy, gw);
  if (const Layout other = switch_target(p, ConvPass::BackwardWeight, sizeof(T)); use_fast(p) && other != p.layout)
    return conv_backward_weight_in_layout(p, other, x, gy, gw);
  if (use_fast(p) && is_depthwise(p))
    return p.layout == Layout::NCHW ? depthwise_backward_weight_nchw(p, x, gy, gw)
                                    : depthwise_backward_weight_nhwc(p, x, gy, gw);
  if (use_fast(p) && is_whole_input_kernel(p)) return whole_input_backward_weight(p, x, gy, gw);
  if (use_fast(p) && use_direct_small_weight(p)) return conv_backward_weight_direct_small(p, x, gy, gw);
  if (use_fast(p)) return conv_backward_weight_gemm(p, x, gy, gw);
  conv_backward_weight_direct(p, x, gy, gw);
}

#define FASTCONV_INSTANTIATE(T)                                                           \
  template void conv_forward<T>(const ConvParams&, const T*, const T*, const T*, T*);     \
  template void conv_backward_input<T>(const ConvParams&, const T*, const T*, T*);        \
  template void conv_transpose_forward<T>(const ConvParams&, const T*, const T*, const T*, T*); \
  template void conv_backward_weight<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)

}  // namespace cpu
}  // namespace fastconv
