// The input gradient of the small-group convolution (conv_small_group.h), for stride 1 or 2 along the width and any
// row stride and row dilation:
//   grad_input[h][w] = sum over (r, s) of grad_output[(h + pad_t - r*dil_h) / stride_h][(w + pad_l - s) / stride_w]
//                      * w[r][s]   (the terms whose divisions are exact and land inside grad_output),
// each group's cg x cg weight transposed. With stride 2 along the width the columns split into two phases: those
// with w + pad_l even take taps 0 and 2, the others tap 1. Each phase is a stride-1 pass of the forward's kernels
// (conv_small_group_kernel.h) over grad_output's columns with a kernel 2 or 1 wide, its results written every other
// pixel; stride 1 is one phase with all 3 taps (the forward of grad_output with the kernel flipped). Along the rows
// only the kernel rows whose grad_output row exists are read. So nothing is multiplied by an inserted zero (a
// zero-stuffed grad_output would spend 3 of 4 multiplies of a stride-2 layer on zeros).
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../gemm/gemm_scratch.h"
#include "conv_small_group.h"
#include "conv_small_group_kernel.h"

namespace fastconv {
namespace cpu {
namespace {

using namespace small_group;

#if defined(__AVX512F__)
// The grad_input columns w0, w0 + stride_w, ... below W and the taps they take: pixel q of the phase (column
// w0 + q*stride_w) reads grad_output column j0 + q + t as its tap t, with kernel column tap[t].
struct Phase {
  int64_t w0 = 0, count = 0, j0 = 0;
  int ks = 0;
  int tap[kWidth] = {};
};

Phase make_phase(const ConvParams& p, int64_t w0) {
  Phase ph;
  ph.w0 = w0;
  ph.count = w0 < p.W ? (p.W - w0 + p.stride_w - 1) / p.stride_w : 0;
  for (int s = kWidth - 1; s >= 0; --s)  // descending kernel column = ascending grad_output column
    if (((w0 + p.pad_l - s) % p.stride_w + p.stride_w) % p.stride_w == 0) ph.tap[ph.ks++] = s;
  ph.j0 = (w0 + p.pad_l - ph.tap[0]) / p.stride_w;  // (exact)
  return ph;
}

// grad_output rows [lo, hi] that grad_input rows [h0, h1) read (hi < lo: none).
std::pair<int64_t, int64_t> band_source_rows(const ConvParams& p, int64_t h0, int64_t h1) {
  const int64_t lo = std::max<int64_t>(0, ceil_div(h0 + p.pad_t - (p.R - 1) * p.dil_h, p.stride_h));
  const int64_t last = h1 - 1 + p.pad_t;
  const int64_t hi = last < 0 ? -1 : std::min<int64_t>(p.OH - 1, last / p.stride_h);
  return {lo, hi};
}

// Pixels per pass (add_steps): their accumulators and KS weights per step within the 32 registers.
template <typename T, int CG, int KS>
constexpr int pixels_per_pass() {
  if constexpr (CG == Zmm<T>::L) return 14;
  else if constexpr (CG == 2) return 8;
  else return KS == 3 ? 4 : KS == 2 ? 5 : 6;
}

// One grad_input row's pixels of phase ph: xs is the band buffer at the phase's first column, out the row's pixel
// w0 (pixels `step` apart).
template <typename T, int CG, int KS>
void phase_row(const Phase& ph, const T* xs, int64_t row_stride, const int64_t* br, int64_t R, const T* wp_k0,
               int64_t K, T* out, int64_t step, bool stream) {
  constexpr int L = Zmm<T>::L, NP = pixels_per_pass<T, CG, KS>(), kSteps = CG < 4 ? CG : 4;
  int64_t q = 0;
  for (; q + NP <= ph.count; q += NP)
    row_pixels<T, KS, 1, NP, CG, kSteps, false>(xs + q * L, row_stride, br, R, wp_k0, K, nullptr, NP, out + q * step,
                                                step, stream);
  if (q < ph.count)
    row_pixels<T, KS, 1, NP, CG, kSteps, true>(xs + q * L, row_stride, br, R, wp_k0, K, nullptr, ph.count - q,
                                               out + q * step, step, stream);
}

template <typename T, int CG>
void input_gradient(const ConvParams& p, const T* gy, const T* w, T* gx) {
  using Z = Zmm<T>;
  constexpr int L = Z::L;
  const int64_t C = p.C, vectors = C / L, RS = p.R * p.S;
  // the phases, each with its own prepared weight (at most 3 taps in all)
  std::vector<Phase> phases;
  for (int64_t w0 = 0; w0 < p.stride_w; ++w0)
    if (Phase ph = make_phase(p, w0); ph.count > 0) phases.push_back(ph);
  T* wp = thread_scratch<T>(kScratchWeight, size_t(p.R * kWidth * CG * C));
  std::vector<const T*> wph;
  for (T* dst = wp; const Phase& ph : phases) {
    // lane c of grad_input (group c / cg) from its group's grad_output channel kk: w[g*cg + kk][c % cg]
    prepare_weight(p.R, ph.ks, int64_t(CG), C, CG < L, [&](int64_t c, int64_t kk, int64_t r, int64_t t) {
      return w[((c / CG * CG + kk) * CG + c % CG) * RS + r * p.S + ph.tap[t]];
    }, dst);
    wph.push_back(dst);
    dst += p.R * ph.ks * CG * C;
  }
  // the band buffer's grad_output columns [jmin, jmin + wb), zeros outside grad_output
  int64_t jmin = phases[0].j0, jmax = jmin;
  for (const Phase& ph : phases) jmin = std::min(jmin, ph.j0), jmax = std::max(jmax, ph.j0 + ph.count + ph.ks - 2);
  const int64_t wb = jmax - jmin + 1;
  ConvParams src = p;  // grad_output as copy_band's input: its rows and columns, jmin columns of padding
  src.C = p.K, src.H = p.OH, src.W = p.OW, src.pad_l = -jmin;
  const auto in_rows = [&](int64_t rows) { return (rows - 1 + (p.R - 1) * p.dil_h) / p.stride_h + 1; };
  const int64_t rows = band_rows(p, p.H, wb * L * int64_t(sizeof(T)), vectors, in_rows);
  const int64_t bands = (p.H + rows - 1) / rows, items = p.N * vectors * bands;
  const RowOutput<T> out(p.layout, gx, C, p.H, p.W);
  const int64_t pixel_step = p.stride_w * out.step;  // between a phase's pixels
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> br(p.R);
    T* buf = thread_scratch<T>(kScratchCol, size_t(in_rows(rows) * wb * L));
    T* rowbuf = thread_scratch<T>(kScratchAcc, size_t(p.W * L));  // (NCHW rows)
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t band = item % bands, v = (item / bands) % vectors, n = item / (bands * vectors), k0 = v * L;
      const int64_t h0 = band * rows, h1 = std::min(p.H, h0 + rows);
      const auto [lo, hi] = band_source_rows(p, h0, h1);
      if (hi >= lo) copy_band(src, gy, n, k0, lo, hi - lo + 1, wb, buf);
      for (int64_t h = h0; h < h1; ++h) {
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t t = h + p.pad_t - r * p.dil_h;
          br[r] = t >= 0 && t % p.stride_h == 0 && t / p.stride_h < p.OH ? t / p.stride_h - lo : -1;
        }
        T* row = out.row(n, h, k0, rowbuf);
        for (size_t f = 0; f < phases.size(); ++f) {
          const Phase& ph = phases[f];
          const T* xs = buf + (ph.j0 - jmin) * L;
          T* first = row + ph.w0 * out.step;
          const T* wk = wph[f] + k0;
          if (ph.ks == 1) phase_row<T, CG, 1>(ph, xs, wb * L, br.data(), p.R, wk, C, first, pixel_step, out.stream);
          else if (ph.ks == 2) phase_row<T, CG, 2>(ph, xs, wb * L, br.data(), p.R, wk, C, first, pixel_step, out.stream);
          else phase_row<T, CG, 3>(ph, xs, wb * L, br.data(), p.R, wk, C, first, pixel_step, out.stream);
        }
        out.finish(n, h, k0, rowbuf);
      }
    }
    out.fence();
  }
}
#endif

}  // namespace

bool small_group_backward_input_applies(const ConvParams& p, int64_t elem_size) { return shape_applies(p, elem_size); }

template <typename T>
void small_group_backward_input(const ConvParams& p, const T* gy, const T* w, T* gx) {
#if defined(__AVX512F__)
  switch (p.C_per_group()) {
    case 2: return input_gradient<T, 2>(p, gy, w, gx);
    case 4: return input_gradient<T, 4>(p, gy, w, gx);
    case 8: return input_gradient<T, 8>(p, gy, w, gx);
    default:
      if constexpr (std::is_same_v<T, float>) return input_gradient<T, 16>(p, gy, w, gx);
  }
#else
  (void)p, (void)gy, (void)w, (void)gx;
#endif
}

template void small_group_backward_input<float>(const ConvParams&, const float*, const float*, float*);
template void small_group_backward_input<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
