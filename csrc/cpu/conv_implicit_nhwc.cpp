// NHWC forward without a column matrix (direct convolution on the GEMM micro-kernel, "implicit GEMM"), and
// the stride-1 input gradient as the same forward on grad_output (input_grad_problem):
//   y[n, oh, ow, g*Kg + k] = bias + sum_{r,s,c} xp[oh*sh + r*dh, ow*sw + s*dw, c] * w[g*Kg + k, c, r, s]
// where xp is a band of input rows of one group's channels, padded (zeros or the padding mode's values) into a
// thread's scratch so every tap of every pixel is an in-bounds read. A tile of MR output pixels x NR output
// channels runs the micro-kernel over all R*S taps and all Cg channels with its accumulators in registers
// (MicroKernel::run_taps): consecutive pixels' operands are stride_w pixels apart in xp, and each tap is a
// fixed offset. Compared with im2col + GEMM this copies the input about once instead of R*S/(sh*sw) times,
// packs the weight once per call instead of once per band, and writes each output once.
// Threads take (image, group, band of output rows, group of column panels) items dynamically; every output
// element belongs to one item (race-free, deterministic).
#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "conv_implicit_nhwc.h"
#include "gemm_microkernel.h"
#include "gemm_scratch.h"
#include "transpose.h"

namespace fastconv {
namespace cpu {
namespace {

// One column panel of the packed weight (all taps, all channels of a group) is re-read by every tile of a
// band, so it should stay in L2 (2 MB here; 1 MB leaves room for the band of input).
constexpr int64_t kMaxPanelBytes = int64_t(1) << 20;
constexpr int64_t kMaxBandRows = 8;

constexpr int64_t kMaxBandBytes = int64_t(16) << 20;

// Columns of a padded band: the input columns the output row reads, padding included.
int64_t padded_width(const ConvParams& p) { return (p.OW - 1) * p.stride_w + (p.S - 1) * p.dil_w + 1; }

// Input rows a band of `band` output rows reads.
int64_t band_input_rows(const ConvParams& p, int64_t band) { return (band - 1) * p.stride_h + (p.R - 1) * p.dil_h + 1; }

// Row stride, in elements, of one padded pixel: Cg, moved off a 2 KB multiple of the pixel-to-pixel step
// (stride_w pixels), which would put the 14 pixels a tile broadcasts from into one or two L1 sets.
int64_t pixel_stride(const ConvParams& p, int64_t elem_size) {
  const int64_t cg = p.C_per_group();
  return broadcast_rows_alias(p.stride_w * cg, elem_size) ? cg + 64 / elem_size : cg;
}

// wp[((g*panels + j)*RS + t)*Cg + c)*NR + jj] = w[g*Kg + j*NR + jj, c, r, s] (t = r*S + s), zero past Kg.
// Per panel: a tiled transpose of its NR weight rows into (c*RS + t, jj) order, then whole 128-byte rows
// moved to (t*Cg + c) order (an element-wise gather read one cache line per element: a sixth of ResNet-50's
// 512-channel stride-2 forward).
template <typename T>
const T* pack_weight(const ConvParams& p, const T* w, int64_t panels) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S, depth = Cg * RS;
  T* wp = thread_scratch<T>(kScratchWeight, size_t(p.groups * panels * depth * NR));
  const int64_t items = p.groups * panels;
  const int nt = threads_for_work(items * depth * NR, p.num_threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    T* tmp = thread_scratch<T>(kScratchPackB, size_t(depth * NR));
#pragma omp for schedule(static)
    for (int64_t gj = 0; gj < items; ++gj) {
      const int64_t g = gj / panels, j = gj % panels, nr = std::min(NR, Kg - j * NR);
      if (nr < NR) std::fill(tmp, tmp + depth * NR, T(0));
      transpose_tiled(nr, depth, w + (g * Kg + j * NR) * depth, depth, 1, tmp, NR, 1);
      T* dst = wp + gj * depth * NR;
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t t = 0; t < RS; ++t)
          std::memcpy(dst + (t * Cg + c) * NR, tmp + (c * RS + t) * NR, sizeof(T) * size_t(NR));
    }
  }
  return wp;
}

// Input rows [ih0, ih0 + rows) of image n, group g, into xp: padded row a, column b holds input pixel
// (ih0 + a, b - pad_l) remapped by the padding mode, or zeros. Only the Cg channels of each pixel are written
// (the rest of the pixel stride is never read).
template <typename T>
void gather_band(const ConvParams& p, const T* x, int64_t n, int64_t g, int64_t ih0, int64_t rows, int64_t Wp,
                 int64_t Cp, T* xp) {
  const int64_t Cg = p.C_per_group();
  for (int64_t a = 0; a < rows; ++a) {
    T* dst = xp + a * Wp * Cp;
    const int64_t ih = remap_index(ih0 + a, p.H, p.mode);
    if (ih < 0) {
      std::fill(dst, dst + Wp * Cp, T(0));
      continue;
    }
    const T* src = x + (n * p.H + ih) * p.W * p.C + g * Cg;
    // The interior columns in one copy when pixels are packed alike in x and in xp.
    const int64_t lo = std::min(p.pad_l, Wp), hi = std::clamp<int64_t>(p.pad_l + p.W, lo, Wp);
    const bool contiguous = Cp == p.C && p.mode == PaddingMode::Zeros;
    for (int64_t b = 0; b < Wp; ++b) {
      if (contiguous && b == lo && hi > lo) {
        std::memcpy(dst + lo * Cp, src + (lo - p.pad_l) * p.C, sizeof(T) * size_t((hi - lo) * Cp));
        b = hi - 1;
        continue;
      }
      const int64_t iw = remap_index(b - p.pad_l, p.W, p.mode);
      if (iw < 0)
        std::fill(dst + b * Cp, dst + b * Cp + Cg, T(0));
      else
        std::memcpy(dst + b * Cp, src + iw * p.C, sizeof(T) * size_t(Cg));
    }
  }
}

// One tile: the micro-kernel with R >= mr rows (odd counts round up: the extra row reads slack and is not
// stored) and one or two vectors of columns.
template <typename T, int NV>
void tile(int64_t mr, int64_t RS, const int64_t* off, int64_t Cg, const T* a, int64_t lda, const T* b, T* c,
          const MicroTileView& v, const T* bcol) {
  using MK = MicroKernel<T>;
#if defined(__AVX512F__)
  switch ((mr + 1) / 2) {
    case 1: return MK::template run_taps<2, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 2: return MK::template run_taps<4, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 3: return MK::template run_taps<6, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 4: return MK::template run_taps<8, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 5: return MK::template run_taps<10, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    case 6: return MK::template run_taps<12, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
    default: return MK::template run_taps<MK::MR, NV>(RS, off, Cg, a, lda, b, c, v, bcol);
  }
#else
  (void)mr;
  MK::run_taps(RS, off, Cg, a, lda, b, c, v, bcol);
#endif
}

}  // namespace

bool implicit_forward_applies(const ConvParams& p, int64_t elem_size) {
  // A panel is RS*Cg rows of NR columns: 128 bytes per row for float (NR 32) and double (NR 16) alike.
  if (p.layout != Layout::NHWC || p.R * p.S <= 1 || p.R * p.S * p.C_per_group() * 128 > kMaxPanelBytes) return false;
  // The padded band must fit a thread's scratch: huge paddings or dilations (a 'same' 1-d convolution with a
  // dilation of 2^31 - 1) leave the im2col path, which never materialises the padding.
  const int64_t Wp = padded_width(p), rows = band_input_rows(p, std::min(p.OH, kMaxBandRows));
  if (Wp > kMaxBandBytes || rows > kMaxBandBytes) return false;  // (keeps the product below in range)
  return rows * Wp * pixel_stride(p, elem_size) * elem_size <= kMaxBandBytes;
}

namespace {

// Output panels of NR channels per group.
template <typename T>
int64_t column_panels(const ConvParams& p) {
  return (p.K_per_group() + MicroKernel<T>::NR - 1) / MicroKernel<T>::NR;
}

// The pass itself, on a weight already packed as pack_weight lays it out.
template <typename T>
void run_direct(const ConvParams& p, const T* x, const T* wp, const T* bias, T* y) {
  constexpr int64_t MR = MicroKernel<T>::MR, NR = MicroKernel<T>::NR, L = NR / 2;
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S, G = p.groups;
  const int64_t panels = column_panels<T>(p), Cp = pixel_stride(p, sizeof(T)), lda = p.stride_w * Cp;
  const int64_t Wp = padded_width(p);
  std::vector<int64_t> off(static_cast<size_t>(RS));
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t s = 0; s < p.S; ++s) off[size_t(r * p.S + s)] = (r * p.dil_h * Wp + s * p.dil_w) * Cp;
  // Bands of up to kMaxBandRows output rows, fewer while that leaves under 4 items per thread; column panels
  // are split between items only when even one-row bands leave a thread idle.
  const int64_t per_band = p.N * G, nt = p.num_threads;
  int64_t band = std::min(p.OH, kMaxBandRows);
  while (band > 1 && per_band * ((p.OH + band - 1) / band) < 4 * nt) band = (band + 1) / 2;
  const int64_t bands = (p.OH + band - 1) / band;
  const int64_t psplit = std::clamp<int64_t>((2 * nt + per_band * bands - 1) / (per_band * bands), 1, panels);
  const int64_t ppi = (panels + psplit - 1) / psplit, pgroups = (panels + ppi - 1) / ppi;
  const int64_t items = per_band * bands * pgroups;
  const int64_t max_rows = band_input_rows(p, band);
  // Slack past the band: a tile rounded up to an even row count reads one pixel past the last output column.
  const int64_t slack = (p.stride_w + 1) * Cp + Cg;
#pragma omp parallel num_threads(static_cast<int>(std::min<int64_t>(nt, items)))
  {
    DenormalGuard guard;
    T* xp = thread_scratch<T>(kScratchCol, size_t(max_rows * Wp * Cp + slack));
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t pg = item % pgroups, b = (item / pgroups) % bands, g = (item / (pgroups * bands)) % G;
      const int64_t n = item / (pgroups * bands * G);
      const int64_t oh0 = b * band, oh1 = std::min(p.OH, oh0 + band);
      const int64_t rows = band_input_rows(p, oh1 - oh0);
      gather_band(p, x, n, g, oh0 * p.stride_h - p.pad_t, rows, Wp, Cp, xp);
      std::fill(xp + rows * Wp * Cp, xp + rows * Wp * Cp + slack, T(0));
      for (int64_t j = pg * ppi; j < std::min(panels, (pg + 1) * ppi); ++j) {
        const T* bj = wp + (g * panels + j) * RS * Cg * NR;
        const int64_t nr = std::min(NR, Kg - j * NR);
        const T* bcol = bias ? bias + g * Kg + j * NR : nullptr;
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const T* arow = xp + (oh - oh0) * p.stride_h * Wp * Cp;
          T* yrow = y + (n * p.OH + oh) * p.OW * p.K + g * Kg + j * NR;
          for (int64_t ow0 = 0; ow0 < p.OW; ow0 += MR) {
            const MicroTileView v{p.K, 1, std::min(MR, p.OW - ow0), nr};
            const T* a = arow + ow0 * lda;
            if (nr <= L)
              tile<T, 1>(v.mr, RS, off.data(), Cg, a, lda, bj, yrow + ow0 * p.K, v, bcol);
            else
              tile<T, 2>(v.mr, RS, off.data(), Cg, a, lda, bj, yrow + ow0 * p.K, v, bcol);
          }
        }
      }
    }
  }
}

// The input gradient's weight for run_direct: the forward's weight of the transposed problem (output
// channels c, input channels k, kernel flipped), packed straight from w:
//   wp[((g*panels + j)*RS + t)*Kg + k)*NR + jj] = w[g*Kg + k, j*NR + jj, RS-1-t] (zero past Cg).
// Each (k, panel) reads one contiguous NR*RS run of w.
template <typename T>
const T* pack_weight_for_input_grad(const ConvParams& p, const T* w, int64_t panels) {
  constexpr int64_t NR = MicroKernel<T>::NR;
  const int64_t Cg = p.C_per_group(), Kg = p.K_per_group(), RS = p.R * p.S;
  T* wp = thread_scratch<T>(kScratchWeight, size_t(p.groups * panels * RS * Kg * NR));
  const int64_t items = p.groups * panels;
  const int nt = threads_for_work(items * RS * Kg * NR, p.num_threads);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t gj = 0; gj < items; ++gj) {
    const int64_t g = gj / panels, j = gj % panels, nr = std::min(NR, Cg - j * NR);
    T* dst = wp + gj * RS * Kg * NR;
    for (int64_t k = 0; k < Kg; ++k) {
      const T* src = w + ((g * Kg + k) * Cg + j * NR) * RS;
      for (int64_t t = 0; t < RS; ++t) {
        T* d = dst + (t * Kg + k) * NR;
        for (int64_t jj = 0; jj < nr; ++jj) d[jj] = src[jj * RS + RS - 1 - t];
        std::fill(d + nr, d + NR, T(0));
      }
    }
  }
  return wp;
}

// The stride-1 input gradient as a forward convolution of grad_output: gx = conv(gy padded by
// (R-1)*dh - pad_t rows on top and (S-1)*dw - pad_l columns on the left, w transposed and flipped), with gx's
// size as the output size (the band gather pads the bottom and right with zeros by itself).
ConvParams input_grad_problem(const ConvParams& p) {
  ConvParams q = p;
  q.C = p.K, q.K = p.C, q.H = p.OH, q.W = p.OW, q.OH = p.H, q.OW = p.W;
  q.pad_t = (p.R - 1) * p.dil_h - p.pad_t, q.pad_l = (p.S - 1) * p.dil_w - p.pad_l;
  q.pad_b = std::max<int64_t>(0, (p.R - 1) * p.dil_h - p.pad_b), q.pad_r = std::max<int64_t>(0, (p.S - 1) * p.dil_w - p.pad_r);
  q.winograd_weight = nullptr;
  return q;
}

}  // namespace

template <typename T>
void conv_forward_implicit_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  run_direct(p, x, pack_weight(p, w, column_panels<T>(p)), bias, y);
}

bool implicit_backward_input_applies(const ConvParams& p, int64_t elem_size) {
  return p.layout == Layout::NHWC && p.R * p.S > 1 && p.stride_h == 1 && p.stride_w == 1 &&
         p.mode == PaddingMode::Zeros && p.pad_t <= (p.R - 1) * p.dil_h && p.pad_l <= (p.S - 1) * p.dil_w &&
         implicit_forward_applies(input_grad_problem(p), elem_size);
}

template <typename T>
void conv_backward_input_implicit_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const ConvParams q = input_grad_problem(p);
  run_direct(q, gy, pack_weight_for_input_grad(p, w, column_panels<T>(q)), static_cast<const T*>(nullptr), gx);
}

template void conv_backward_input_implicit_nhwc<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_input_implicit_nhwc<double>(const ConvParams&, const double*, const double*, double*);
template void conv_forward_implicit_nhwc<float>(const ConvParams&, const float*, const float*, const float*, float*);
template void conv_forward_implicit_nhwc<double>(const ConvParams&, const double*, const double*, const double*,
                                                 double*);

}  // namespace cpu
}  // namespace fastconv
