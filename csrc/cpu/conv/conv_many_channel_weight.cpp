// Weight gradient for layers with many input channels, output channels across the vector lanes (the register
// tile of conv_weight_tiles.h) and no column matrix:
//   - the padded input rows of a batch of images are gathered once as (row, column, channel), and for NCHW
//     grad_output is transposed to (pixel, channel); channels_last grad_output is read in place;
//   - the weight gradient is cut into units (group, output-channel block, kernel row, group of consecutive taps),
//     one register tile each, and chunks of consecutive units are taken dynamically by the threads. A unit's tile
//     runs over blocks of ~512 output pixels (accumulators in registers, added to the unit's slice of the result
//     after each block), every block of every image in order.
// Each output element is summed by one thread in one fixed order, so the result is the same for any thread count
// or schedule, and no thread keeps a private copy of the gradient to be reduced. im2col + GEMM instead wrote and
// re-read a column matrix R*S times the size of the input and reduced per-thread gradients.
#include "conv_many_channel_weight.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "../gemm/gemm_scratch.h"
#include "../transpose.h"
#include "conv_depthwise.h"  // is_depthwise
#include "conv_weight_tiles.h"

namespace fastconv {
namespace cpu {

constexpr int64_t kMaxGradientBytes = int64_t(8) << 20;  // the whole weight gradient (see use_many_channel_weight)
// One image's gathered input (and NCHW grad_output), which the scratch holds at least once: larger images (a
// 64-channel 1024x1024 one would take 270 MB, kept by the thread's scratch) stay on im2col + GEMM, whose column
// matrix is built a band of rows at a time.
constexpr int64_t kMaxImageBytes = int64_t(32) << 20;

#if defined(__AVX512F__)
namespace {

using namespace weight_tiles;

// The gathered input's rows, in pixels: (OW - 1)*sw + S.
int64_t padded_row(const ConvParams& p) { return (p.OW - 1) * p.stride_w + p.S; }

// One (image, group)'s gathered input, in elements: its padded input rows x padded_row x Cg.
int64_t gathered_image(const ConvParams& p) { return band_input_rows(p, p.OH) * padded_row(p) * p.C_per_group(); }

// The scratch one image takes: its groups' gathered input, and for NCHW its grad_output as (pixel, channel).
int64_t image_scratch(const ConvParams& p) {
  return p.groups * gathered_image(p) + (p.layout == Layout::NHWC ? 0 : p.OH * p.OW * p.K);
}

constexpr int64_t kBatchBytes = int64_t(8) << 20;  // gathered input (+ NCHW grad_output) of a batch of images
constexpr int64_t kBlockPixels = 512;              // output pixels per tile call (fewer: slower, 256: 2-4%)
constexpr int64_t kMaxChunkUnits = 16;             // consecutive units a thread takes at a time

// One register tile's share of the result: output-channel vectors [v0, v0 + kv) of group g x taps [j0, j1) of
// kernel row r.
struct Unit {
  int64_t g, v0, kv, r, j0, j1;
};

struct Plan {
  int64_t Cg, Kg, J;  // channels per group; taps per kernel row (S*Cg)
  int64_t Wp;         // padded input row, in pixels: (OW - 1)*sw + S
  int64_t img_x;      // gathered padded input of one (image, group): input rows * Wp * Cg
  int64_t npix;       // output pixels per image
  int64_t nb;         // images per batch
  int64_t block_rows; // output rows per tile call
  bool gy_in_place;   // channels_last: grad_output read where it is
  std::vector<Unit> units;
};

template <typename T>
Plan make_plan(const ConvParams& p) {
  constexpr int64_t L = Zmm<T>::L;
  Plan pl;
  pl.Cg = p.C_per_group(), pl.Kg = p.K_per_group(), pl.J = p.S * pl.Cg;
  pl.Wp = padded_row(p);
  pl.img_x = gathered_image(p);
  pl.npix = p.OH * p.OW;
  pl.gy_in_place = p.layout == Layout::NHWC;
  pl.nb = std::clamp<int64_t>(kBatchBytes / std::max<int64_t>(image_scratch(p) * int64_t(sizeof(T)), 1), 1, p.N);
  pl.block_rows = std::clamp<int64_t>(kBlockPixels / std::max<int64_t>(p.OW, 1), 1, p.OH);
  const int64_t vectors = pl.Kg / L, blocks = vector_blocks(vectors);
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t b = 0; b < blocks; ++b) {
      const auto [v0, kv] = block_vectors(vectors, blocks, b);
      const int64_t groups = tap_groups(pl.J, kv);
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t t = 0; t < groups; ++t) {
          const auto [j0, j1] = group_taps(pl.J, groups, t);
          pl.units.push_back({g, v0, kv, r, j0, j1});
        }
    }
  return pl;
}

// Units [u0, u1) over every output pixel of images [n0, n0 + ni), whose gathered input is in xb (and, for NCHW,
// transposed grad_output in gyb), added into part ((g, r, tap j), k). Blocks of whole images where an image has
// fewer than kBlockPixels outputs (DCGAN's 8x8: one image a tile spent a tenth of its time outside its loop).
template <typename T>
void run_units(const ConvParams& p, const Plan& pl, int64_t u0, int64_t u1, const T* gy, int64_t n0, int64_t ni,
               const T* xb, const T* gyb, T* part) {
  constexpr int64_t L = Zmm<T>::L;
  const int64_t gy_pix = pl.gy_in_place ? p.K : pl.Kg;
  const int64_t gy_img = pl.gy_in_place ? pl.npix * p.K : p.groups * pl.npix * pl.Kg;
  const int64_t x_img = p.groups * pl.img_x, x_row = p.stride_h * pl.Wp * pl.Cg;
  const int64_t imgs = pl.npix < kBlockPixels ? std::clamp<int64_t>(kBlockPixels / pl.npix, 1, ni) : 1;
  for (int64_t i = 0; i < ni; i += imgs)
    for (int64_t oh0 = 0; oh0 < p.OH; oh0 += pl.block_rows) {
      const PixelWalk w{std::min(imgs, ni - i), std::min(pl.block_rows, p.OH - oh0), p.OW,
                        gy_img, p.OW * gy_pix, gy_pix, x_img, x_row, p.stride_w * pl.Cg};
      for (int64_t u = u0; u < u1; ++u) {
        const Unit& un = pl.units[size_t(u)];
        const T* gb = pl.gy_in_place ? gy + ((n0 + i) * pl.npix + oh0 * p.OW) * p.K + un.g * pl.Kg
                                     : gyb + ((i * p.groups + un.g) * pl.npix + oh0 * p.OW) * pl.Kg;
        const T* xr = xb + (i * p.groups + un.g) * pl.img_x + (oh0 * p.stride_h + un.r * p.dil_h) * pl.Wp * pl.Cg + un.j0;
        pick_tile<T>(un.kv, un.j1 - un.j0)(w, gb + un.v0 * L, xr,
                                           part + ((un.g * p.R + un.r) * pl.J + un.j0) * pl.Kg + un.v0 * L, pl.Kg,
                                           nullptr, 0);
      }
    }
}

}  // namespace
#endif

bool use_many_channel_weight(const ConvParams& p, int64_t elem_size) {
#if defined(__AVX512F__)
  const int64_t L = 64 / elem_size, Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S;
  if (p.dil_w != 1 || Kg % L != 0 || Cg <= 16 || is_depthwise(p)) return false;  // (<= 16: the few-channel kernel)
  // Measured against im2col + GEMM (2 threads, Zen 4, the weight gradient alone, one process): stride 1 with 3x3 or
  // larger kernels 1.1-1.5x (AlexNet's grouped 48 -> 128 5x5 1.15-1.2x, 64 -> 128 5x5 1.3-1.5x, 64 -> 64 7x7
  // 1.3-1.4x, float64 3x3 on 14x14-28x28 1.1-1.16x); DCGAN's 128 -> 256 4x4/2 on 8x8 1.12-1.18x. Worse: 3x3/2 (0.84-1.07),
  // 2x2/2 (U-Net's transposed 2x2: 0.62-0.76, a GEMM with no column matrix there), 64 -> 128 4x4/2 on 16x16 (0.82),
  // short or strided 1-d kernels (WaveNet's k = 2: 0.61 channels_last; MelGAN's 1x16/8 on 256 channels: 0.91) and
  // gradients past 8 MB, whose tile sums spill to memory (float64 512 -> 512 3x3 on 7x7: 0.84-0.89).
  if (p.K * Cg * RS * elem_size > kMaxGradientBytes) return false;
  if (image_scratch(p) * elem_size > kMaxImageBytes) return false;
  return p.stride_h == 1 && p.stride_w == 1 ? RS >= 9 : p.R >= 4 && p.S >= 4 && Cg >= 128;
#else
  (void)p, (void)elem_size;
  return false;
#endif
}

template <typename T>
void conv_backward_weight_many_channels(const ConvParams& p, const T* x, const T* gy, T* gw) {
#if defined(__AVX512F__)
  const Plan pl = make_plan<T>(p);
  const int64_t U = int64_t(pl.units.size());
  const int nt = int(std::clamp<int64_t>(p.num_threads, 1, U));
  const int64_t chunk = std::clamp<int64_t>(U / (8 * int64_t(nt)), 1, kMaxChunkUnits), chunks = (U + chunk - 1) / chunk;
  // Scratch of the calling thread, read by the team: the batch's gathered input and grad_output, the result as
  // ((g, r, tap j), k) and then as (k, (r, s, c)).
  T* xb = thread_scratch<T>(kScratchCol, size_t(pl.nb * p.groups * pl.img_x));
  T* gyb = pl.gy_in_place ? nullptr : thread_scratch<T>(kScratchAcc, size_t(pl.nb * p.groups * pl.npix * pl.Kg));
  const int64_t part_size = p.groups * p.R * pl.J * pl.Kg;
  T* part = thread_scratch<T>(kScratchWeight, size_t(part_size));
  T* rsc = thread_scratch<T>(kScratchPackA, size_t(part_size));
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t e = 0; e < part_size; ++e) part[e] = T(0);
    for (int64_t n0 = 0; n0 < p.N; n0 += pl.nb) {
      const int64_t ni = std::min(pl.nb, p.N - n0);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < ni * p.groups; ++i) {
        const int64_t n = n0 + i / p.groups, g = i % p.groups;
        gather_padded_rows(p, pl.Cg, pl.Wp, x, n, g, -p.pad_t, band_input_rows(p, p.OH), xb + i * pl.img_x);
        if (!pl.gy_in_place)
          transpose_serial(pl.Kg, pl.npix, gy + (n * p.K + g * pl.Kg) * pl.npix, pl.npix, int64_t(1),
                           gyb + i * pl.npix * pl.Kg, pl.Kg);
      }
      // (each loop's implicit barrier: the batch gathered before any unit runs, every unit done before the next
      // batch overwrites it)
#pragma omp for schedule(dynamic)
      for (int64_t c = 0; c < chunks; ++c)
        run_units(p, pl, c * chunk, std::min(U, (c + 1) * chunk), gy, n0, ni, xb, gyb, part);
    }
    weight_from_tap_sums(p, pl.Cg, pl.Kg, part, rsc, gw);
  }
#else
  (void)p, (void)x, (void)gy, (void)gw;
#endif
}

template void conv_backward_weight_many_channels<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_many_channels<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
