// See conv_layout_switch.h. The scratch slots are the calling thread's own (kScratchLayoutIn/Out); the
// kernels called in between use the other slots.
#include "conv_layout_switch.h"

#include "conv_depthwise.h"
#include "conv_direct_small.h"  // use_direct_small
#include "conv_gemm.h"  // is_identity_1x1
#include "conv_implicit_nhwc.h"
#include "conv_kernels.h"
#include "../gemm/gemm_scratch.h"
#include "../transpose.h"

namespace fastconv {
namespace cpu {
namespace {

constexpr int64_t kMinWeightBytes = int64_t(2) << 20;
constexpr int64_t kMaxOutputPixels = 28 * 28;
constexpr int64_t kShortDepthwiseRow = 16;
constexpr int64_t kMaxPointwiseSwitchPixels = 7 * 7;
constexpr int64_t kMinPhaseWidth = 4;
constexpr int64_t kMinStridedSwitchChannels = 16, kMaxStackedOutputPixels = 7 * 7, kMaxStackedStridedPixels = 3 * 3;
constexpr int64_t kMinLargeKernelTaps = 25;
constexpr int64_t kMinStemTaps = 49;
constexpr int64_t kMinStemSwitchPixels = 96 * 96;

ConvParams in_layout(const ConvParams& p, Layout target) {
  ConvParams q = p;
  q.layout = target;
  return q;
}

// One activation tensor (N, C, HW) from layout `from` into the other layout.
template <typename T>
void relayout(Layout from, int64_t N, int64_t C, int64_t HW, const T* src, T* dst, int threads) {
  if (from == Layout::NHWC)  // (HW, C) -> (C, HW) per image
    transpose_tiled_batch(N, HW, C, src, HW * C, C, 1, dst, C * HW, HW, threads);
  else  // (C, HW) -> (HW, C)
    transpose_tiled_batch(N, C, HW, src, C * HW, HW, 1, dst, HW * C, C, threads);
}

}  // namespace

Layout preferred_layout(const ConvParams& p, ConvPass pass, int64_t elem_size) {
  // The rules must never send a shape back and forth (each switch would undo the other, forever: a
  // depthwise layer with a >= 2 MB kernel per group once recursed until the stack overflowed), so the GEMM
  // rules leave depthwise layers alone; the dispatch also refuses a switch that is not a fixed point
  // (switch_target).
  const bool depthwise = is_depthwise(p);
  const int64_t weight_bytes = p.K_per_group() * p.C_per_group() * p.R * p.S * elem_size;
  const bool pointwise = !depthwise && is_identity_1x1(p);
  // Every pass of a 1x1 convolution in channels_last is one GEMM over the whole batch (conv_gemm_*.cpp). In
  // NCHW each image's plane is a GEMM of its own: 49 columns at 7x7, which fill 64 columns of micro-tiles,
  // and a weight gradient that sums 49 pixels per pass over the whole gradient. There the transposes cost
  // less (ResNet-50 layer4 512->2048 forward 0.84x -> 1.0x of torch, forward+backward 0.76x -> 1.0x); at
  // 14x14 they measured even.
  if (pointwise) return p.OH * p.OW <= kMaxPointwiseSwitchPixels ? Layout::NHWC : p.layout;
  // Not for 1x1 kernels (strided ones included): channels_last stacks their small planes into one GEMM
  // (ResNet-50's stride-2 downsamples measured 1.2x faster forward+backward staying there). Nor for a forward
  // that runs as a direct convolution in channels_last (conv_implicit_nhwc.cpp): ResNet-50's
  // 512-channel stride-2 3x3 was 1.2x faster there than through the transposes and NCHW's im2col + GEMM.
  const bool implicit_forward = pass == ConvPass::Forward && implicit_forward_applies(p, elem_size);
  // Nor for a strided input gradient that runs by output phases in channels_last (conv_implicit_nhwc.cpp) on
  // phases at least kMinPhaseWidth wide: DCGAN's 256->128 4x4/2 transposed convolution 1.16x faster there.
  // Measured again with today's kernels, 4x4 phases gain too (DCGAN's 512->256 on 4x4 inputs, batch 16, forward
  // in one process: channels_last 4.89 -> 3.94 ms, NCHW 5.36 -> 4.30 ms, torch 4.5-5.5; a 256->128 at batch 32
  // 0.64x -> 1.17x of torch); ResNet-18 layer4's 7x7 phases measured even in NCHW, and a 3x3 input's phases
  // (5x5 transposed output) 1.09x -> 0.99x of torch there: hence 4.
  // Not when every phase is a single tap (a kernel no larger than the stride: U-Net's 2x2 stride-2 transposed
  // convolutions): the phase kernel then reads all of a 1024-channel pixel per tap without blocking the
  // channels, and with 2 MB or more of weight NCHW's GEMM measured 1.7x faster (U-Net up1 15.6 -> 9.0 ms).
  const bool single_tap_phases = p.R <= p.stride_h && p.S <= p.stride_w;
  const bool implicit_strided_input = pass == ConvPass::BackwardInput && (p.stride_h > 1 || p.stride_w > 1) &&
                                      p.W >= kMinPhaseWidth * p.stride_w && !single_tap_phases &&
                                      implicit_backward_input_applies(in_layout(p, Layout::NHWC), elem_size);
  // The other way for strided forwards with more than 5x5 outputs and 16 or more channels per group: NCHW's
  // im2col + GEMM copies the input R*S/(sh*sw) times, the channels_last direct convolution about once, and the
  // transposes cost less than the difference (ResNet-18/50 stride-2 3x3 at 56x56 and 28x28 outputs 0.82-0.86x ->
  // 0.88-0.92x of torch, A/B in one process; with 3 channels, stems, the direct few-channel kernel stays). At 7x7
  // and 6x6, where NCHW stacks the images into one GEMM, it measured even until the direct convolution merged a
  // kernel row's taps; now it is 5-12% faster (ResNet-18 layer4's 256 -> 512 at batch 4 1.71 -> 1.61 ms, torch
  // 1.66; 512 -> 512 at batch 8 6.49 -> 6.01, torch 5.97; 128 -> 256 0.85 -> 0.78; 6x6 outputs 2.24 -> 1.93). At
  // 5x5 and 4x4 it was 3-5% slower, until short rows were computed in stacks and the weight packing wrote in order
  // (conv_implicit_nhwc.cpp): now, on this Zen 4, A/B in one process, median ratios to torch, 4x4/2 at 4x4 outputs
  // 0.79x -> 0.87x (DCGAN's transposed layers' input gradient), 3x3/2 at 4x4 0.67x -> 0.80x, at 5x5 0.67x -> 0.87x.
  if (p.layout == Layout::NCHW && pass == ConvPass::Forward && !depthwise && (p.stride_h > 1 || p.stride_w > 1) &&
      p.R * p.S > 1 && p.C_per_group() >= kMinStridedSwitchChannels && p.OH * p.OW > kMaxStackedStridedPixels &&
      implicit_forward_applies(in_layout(p, Layout::NHWC), elem_size))
    return Layout::NHWC;
  // Strided stems with few channels and a large kernel that the direct few-channel kernel does not take (AlexNet's
  // 3 -> 96 11x11/4: too many outputs for it) too: NCHW's im2col copies the input R*S/(sh*sw) = 7.6 times, the
  // transposes of a 3-channel input and the output cost less (see the commit for the A/B). And those it takes on
  // output planes of kMinStemSwitchPixels or more, since the channels_last direct convolution writes NCHW planes
  // itself and a 3-channel input is interleaved at memory speed (transpose.h): ResNet's 3 -> 64 7x7/2 stem on
  // 224x224 inputs 1.07-1.10x faster so at batch 1, 4 and 8 (A/B in one process, Zen 4); on 128x128 and 64x64
  // inputs 3-4% slower. A 1-d one counts (one row, strided along it): M5's 1 -> 128 80-tap stride-4 audio stem on
  // 8000 samples 3.33 -> 2.67 ms (A/B in one process).
  if (p.layout == Layout::NCHW && pass == ConvPass::Forward && !depthwise && p.stride_w > 1 &&
      (p.stride_h > 1 || p.H == 1) &&
      p.R * p.S >= kMinStemTaps && p.C_per_group() < kMinStridedSwitchChannels &&
      p.OH * p.OW > kMaxStackedOutputPixels &&
      (!use_direct_small(p, elem_size) || p.OH * p.OW >= kMinStemSwitchPixels) &&
      implicit_forward_applies(in_layout(p, Layout::NHWC), elem_size))
    return Layout::NHWC;
  // And for the forward and input gradient of stride-1 kernels of 5x5 and more with 16 or more channels per
  // group (the im2col of NCHW copies the activations R*S times, the channels_last direct convolutions not at
  // all). A/B in one process, 2 threads, vs torch: MNIST's 16->32 5x5 on 14x14 forward 0.71x -> 0.92x, input
  // gradient 0.37x -> 0.73x; GoogLeNet's 16->32 5x5 0.82x -> 0.98x, 0.52x -> 0.73x; AlexNet's grouped 5x5
  // 0.74x -> 0.94x, 0.79x -> 0.87x. Not the weight gradient (0.47x -> 0.64x on MNIST's, 0.71x -> 0.66x on
  // GoogLeNet's), nor few channels (LeNet's 6->16 forward 0.88x -> 0.73x).
  // The weight gradient too when it has one vector of input channels (16 floats), where channels_last's
  // implicit kernel shares each gradient broadcast among a kernel row's taps (conv_implicit_nhwc_weight.cpp):
  // MNIST's 16->32 5x5 on 14x14 (batch 64) 0.48x -> 0.70-0.87x of torch. Planes of any size, since that kernel's
  // tap groups: GoogLeNet's 16->32 5x5 on 28x28 (batch 8) 0.72x -> 1.08x, on 56x56 0.79x -> 1.07x, a 16->48 7x7
  // on 28x28 0.70x -> 0.98x, a 16->16 5x5 on 224x224 0.64x -> 1.02x (A/B in one process, 2 threads).
  const bool one_vector_weight_gradient =
      pass == ConvPass::BackwardWeight && p.C * elem_size == 64 &&
      (elem_size == 4 ? implicit_backward_weight_applies<float>(in_layout(p, Layout::NHWC))
                      : implicit_backward_weight_applies<double>(in_layout(p, Layout::NHWC)));
  const bool large_kernel_direct =
      !depthwise && p.stride_h == 1 && p.stride_w == 1 && p.R * p.S >= kMinLargeKernelTaps &&
      p.C_per_group() >= kMinStridedSwitchChannels &&
      ((pass == ConvPass::Forward && implicit_forward_applies(in_layout(p, Layout::NHWC), elem_size)) ||
       (pass == ConvPass::BackwardInput && implicit_backward_input_applies(in_layout(p, Layout::NHWC), elem_size)) ||
       one_vector_weight_gradient);
  if (p.layout == Layout::NCHW && large_kernel_direct) return Layout::NHWC;
  // NCHW's strided input gradient (a transposed convolution's forward) goes there too, by the same measure: NCHW's
  // GEMM + col2im spent a fifth of its time in col2im (A/B in one process, 2 threads: DCGAN's 128 -> 64 4x4/2
  // transposed forward 4.2-4.4 -> 3.45 ms, torch 3.4-3.9; ResNet-18 layer4's and ResNet-50's stride-2 3x3
  // forward+backward 0.84x -> 0.88x and 1.0x -> 1.04x of torch; layer3's 1.05x -> 0.99x).
  if (p.layout == Layout::NCHW && !depthwise && implicit_strided_input) return Layout::NHWC;
  // Not a strided weight gradient: channels_last's own (im2col copying whole channel runs per tap, the GEMM
  // reading grad_output in place) beat the transposes + NCHW's strided im2col (A/B in one process, 2 threads, Zen 4;
  // weight gradient alone / forward+backward): DCGAN's 256 -> 128 and 512 -> 256 4x4/2 transposed layers 1.09-1.13x /
  // 1.04-1.11x (g3's forward+backward 0.92x -> 1.01x of torch), ResNet-18 layer4's 256 -> 512 3x3/2 1.11-1.20x /
  // 1.08x, ResNet-50's 256-channel 3x3/2 1.02x / 1.02x, U-Net's up1 (1024 -> 512, 2x2/2) 1.08x / 1.05x. A 5x5
  // stride-1 256-channel one at 14x14 measured 0.6x, so those still switch.
  const bool strided_weight_gradient = pass == ConvPass::BackwardWeight && (p.stride_h > 1 || p.stride_w > 1);
  if (p.layout == Layout::NHWC && !depthwise && p.R * p.S > 1 && weight_bytes >= kMinWeightBytes &&
      p.OH * p.OW <= kMaxOutputPixels && !implicit_forward && !implicit_strided_input && !large_kernel_direct &&
      !strided_weight_gradient)
    return Layout::NCHW;
  // The NCHW 3x3 register kernel (conv_depthwise_nchw_3x3.cpp) needs no transposes: the forward of 3x3 pad-1
  // layers at stride 1 and 2 and the stride-1 input gradient stay (MobileNet's 512x14x14 stride-1 and
  // stride-2 forwards 0.5-0.87x of torch through NHWC, 2.2-2.9x there). So do the shapes of its strip kernel
  // for 3x3 / 5x5 / 7x7 (conv_depthwise_nchw_strips.cpp): forwards 0.55x -> 1.66x of torch on 672x14x14 5x5,
  // 0.71x -> 1.01x on 1152x7x7 5x5, 0.93x -> 2.3x on a 480x14x14 unpadded 3x3 (A/B in one process). (The other
  // way, channels_last 5x5 layers through these kernels, lost more to the transposes than they gained.)
  const bool register_rows =
      (depthwise_3x3_registers_applies(p, elem_size) || depthwise_strips_applies(p, elem_size)) &&
      (pass == ConvPass::Forward || (pass == ConvPass::BackwardInput && p.stride_h == 1));
  if (p.layout == Layout::NCHW && depthwise && p.OW < kShortDepthwiseRow && !register_rows) return Layout::NHWC;
  return p.layout;
}

Layout switch_target(const ConvParams& p, ConvPass pass, int64_t elem_size) {
  const Layout target = preferred_layout(p, pass, elem_size);
  if (target == p.layout) return target;
  ConvParams q = p;
  q.layout = target;
  return preferred_layout(q, pass, elem_size) == target ? target : p.layout;
}

template <typename T>
void conv_forward_in_layout(const ConvParams& p, Layout target, const T* x, const T* w, const T* bias, T* y) {
  T* xt = thread_scratch<T>(kScratchLayoutIn, size_t(p.N * p.C * p.H * p.W));
  T* yt = thread_scratch<T>(kScratchLayoutOut, size_t(p.N * p.K * p.OH * p.OW));
  relayout(p.layout, p.N, p.C, p.H * p.W, x, xt, p.num_threads);
  conv_forward(in_layout(p, target), xt, w, bias, yt);
  relayout(target, p.N, p.K, p.OH * p.OW, yt, y, p.num_threads);
}

template <typename T>
void conv_forward_nchw_via_direct(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  conv_forward_implicit_nhwc(in_layout(p, Layout::NHWC), x, w, bias, y, /*nchw=*/true);
}

template <typename T>
void conv_backward_input_in_layout(const ConvParams& p, Layout target, const T* gy, const T* w, T* gx) {
  T* gyt = thread_scratch<T>(kScratchLayoutIn, size_t(p.N * p.K * p.OH * p.OW));
  T* gxt = thread_scratch<T>(kScratchLayoutOut, size_t(p.N * p.C * p.H * p.W));
  relayout(p.layout, p.N, p.K, p.OH * p.OW, gy, gyt, p.num_threads);
  conv_backward_input(in_layout(p, target), gyt, w, gxt);
  relayout(target, p.N, p.C, p.H * p.W, gxt, gx, p.num_threads);
}

template <typename T>
void conv_backward_weight_in_layout(const ConvParams& p, Layout target, const T* x, const T* gy, T* gw) {
  T* xt = thread_scratch<T>(kScratchLayoutIn, size_t(p.N * p.C * p.H * p.W));
  T* gyt = thread_scratch<T>(kScratchLayoutOut, size_t(p.N * p.K * p.OH * p.OW));
  relayout(p.layout, p.N, p.C, p.H * p.W, x, xt, p.num_threads);
  relayout(p.layout, p.N, p.K, p.OH * p.OW, gy, gyt, p.num_threads);
  conv_backward_weight(in_layout(p, target), xt, gyt, gw);  // gw is (K, Cg, R, S) in both layouts
}

#define FASTCONV_INSTANTIATE_LAYOUT_SWITCH(T)                                                                  \
  template void conv_forward_in_layout<T>(const ConvParams&, Layout, const T*, const T*, const T*, T*);       \
  template void conv_forward_nchw_via_direct<T>(const ConvParams&, const T*, const T*, const T*, T*);        \
  template void conv_backward_input_in_layout<T>(const ConvParams&, Layout, const T*, const T*, T*);          \
  template void conv_backward_weight_in_layout<T>(const ConvParams&, Layout, const T*, const T*, T*);
FASTCONV_INSTANTIATE_LAYOUT_SWITCH(float)
FASTCONV_INSTANTIATE_LAYOUT_SWITCH(double)

}  // namespace cpu
}  // namespace fastconv
