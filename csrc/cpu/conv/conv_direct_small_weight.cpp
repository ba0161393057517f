// Weight gradient for few input channels (see conv_direct_small.h), the transpose of the forward kernel:
//   gw[k, c, r, s] = sum over n, oh, ow of gy[n, k, oh, ow] * xpad[n, c, oh*sh + r*dh, ow*sw + s*dw].
// Each work item (image, group, band of output rows) buffers its input rows exactly as the forward does
// (padding resolved, column phases for stride) and its grad_output rows as (Kg, rows, OWv) with zeroed
// tail columns, so junk output columns add nothing. For every (K block, c, r) the kernel holds KB x S
// vector accumulators (one per output channel and tap column) and, per output row and column vector,
// loads KB grad_output vectors and S input vectors for KB*S FMAs. Accumulators are per-thread vector
// partials, summed (threads in a fixed order, then lanes) at the end: deterministic for a thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "conv_direct_small.h"
#include "conv_direct_small_band.h"
#include "../gemm/gemm_scratch.h"

namespace fastconv {
namespace cpu {
namespace {

using namespace small_direct;

// Largest output-channel block for S tap columns in registers (KB * S accumulators).
int max_kb(int64_t S) { return int(std::min<int64_t>(8, kMaxAcc / S)); }

bool supported_taps(int64_t S) { return (S == 3 || S == 5 || S == 7) && max_kb(S) >= 1; }

Geometry weight_geometry(const ConvParams& p, int64_t elem_size) {
  Geometry g{};
  g.Cg = p.C_per_group(), g.Kg = p.K_per_group(), g.lanes = 64 / elem_size;
  g.NV = 1, g.row_pairs = false;
  const int64_t kb_max = max_kb(p.S), blocks = (g.Kg + kb_max - 1) / kb_max;
  g.KB = (g.Kg + blocks - 1) / blocks;
  if (g.KB == 5) g.KB = 6;  // instantiated sizes: 1, 2, 3, 4, 6, 8
  if (g.KB == 7) g.KB = 8;
  g.kblocks = (g.Kg + g.KB - 1) / g.KB;
  g.OWv = round_up(p.OW, g.lanes);
  g.PW = g.OWv + ((p.S - 1) * p.dil_w) / p.stride_w;
  g.row_len = p.stride_w * g.PW;
  const int64_t per_row = std::max<int64_t>(1, (g.Cg * p.stride_h * g.row_len + g.kblocks * g.KB * g.OWv) * elem_size);
  g.band_rows = std::clamp<int64_t>((64 << 10) / per_row, 1, p.OH);
  g.bands = (p.OH + g.band_rows - 1) / g.band_rows;
  g.buf_rows = band_input_rows(p, g.band_rows);
  return g;
}

// Accumulates one (K block, c, r) over `rows` output rows into part: (KB, S) vectors.
//   x: buffered row of channel c, tap r, first output row; gy: (KB, band_rows, OWv) block of the band.
template <typename T, int KB, int S>
void weight_rows(const T* x, int64_t x_step, const T* gy, int64_t gy_k_stride, int64_t rows, int64_t OWv,
                 const int64_t* tap_off, T* part) {
  using V = typename Simd<T>::Vec;
  constexpr int L = Simd<T>::kLanes;
  V acc[KB][S];
  for (int k = 0; k < KB; ++k)
    for (int s = 0; s < S; ++s) std::memcpy(&acc[k][s], part + (k * S + s) * L, sizeof(V));
  for (int64_t i = 0; i < rows; ++i) {
    const T* xr = x + i * x_step;
    const T* gr = gy + i * OWv;
    for (int64_t ow0 = 0; ow0 < OWv; ow0 += L) {
      V gv[KB];
      for (int k = 0; k < KB; ++k) std::memcpy(&gv[k], gr + k * gy_k_stride + ow0, sizeof(V));
      for (int s = 0; s < S; ++s) {
        V xv;
        std::memcpy(&xv, xr + tap_off[s] + ow0, sizeof(V));
        for (int k = 0; k < KB; ++k) acc[k][s] += gv[k] * xv;
      }
    }
  }
  for (int k = 0; k < KB; ++k)
    for (int s = 0; s < S; ++s) std::memcpy(part + (k * S + s) * L, &acc[k][s], sizeof(V));
}

template <typename T>
using RowsFn = void (*)(const T*, int64_t, const T*, int64_t, int64_t, int64_t, const int64_t*, T*);

template <typename T, int S>
RowsFn<T> pick_kb(int64_t kb) {
  switch (kb) {
    case 1: return weight_rows<T, 1, S>;
    case 2: return weight_rows<T, 2, S>;
    case 3: return weight_rows<T, 3, S>;
  }
#if defined(__AVX512F__)
  if constexpr (S <= 5) {
    if (kb == 4) return weight_rows<T, 4, S>;
  }
  if constexpr (S <= 3) {
    if (kb == 6) return weight_rows<T, 6, S>;
    if (kb == 8) return weight_rows<T, 8, S>;
  }
#endif
  return nullptr;
}

template <typename T>
RowsFn<T> pick_rows(int64_t S, int64_t kb) {
  switch (S) {
    case 3: return pick_kb<T, 3>(kb);
    case 5: return pick_kb<T, 5>(kb);
    case 7: return pick_kb<T, 7>(kb);
  }
  return nullptr;
}

// grad_output rows [oh0, oh1) of group gr of image n as (kblocks*KB, band_rows, OWv), zero past Kg and OW.
template <typename T>
void fill_grad_band(const ConvParams& p, const Geometry& g, const T* gy, int64_t n, int64_t gr, int64_t oh0,
                    int64_t oh1, T* gyb) {
  const int64_t kpad = g.kblocks * g.KB;
  for (int64_t k = 0; k < kpad; ++k)
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      T* dst = gyb + (k * g.band_rows + (oh - oh0)) * g.OWv;
      if (k >= g.Kg) {
        std::memset(dst, 0, sizeof(T) * g.OWv);
        continue;
      }
      const int64_t kk = gr * g.Kg + k;
      if (p.layout == Layout::NCHW) {
        std::memcpy(dst, gy + ((n * p.K + kk) * p.OH + oh) * p.OW, sizeof(T) * p.OW);
      } else {
        const T* src = gy + (n * p.OH + oh) * p.OW * p.K + kk;
        for (int64_t ow = 0; ow < p.OW; ++ow) dst[ow] = src[ow * p.K];
      }
      std::fill(dst + p.OW, dst + g.OWv, T(0));
    }
}

}  // namespace

bool use_direct_small_weight(const ConvParams& p) {
  if (!small_direct::kDirectSmallKernels) return false;
  if (!supported_taps(p.S)) return false;
  const int64_t lanes = 16, OWv = round_up(p.OW, lanes);
  const int64_t crs = p.C_per_group() * p.R * p.S;
  // Measured (benchmarks/small_conv_check.py, Zen5, 1 thread, fwd+bwd vs the GEMM weight gradient):
  // faster for one input channel (LeNet C1 0.68 -> 0.34 ms, MNIST 1->16 0.78 -> 0.62 ms at batch 32),
  // slower for LeNet C3 (C*R*S = 150) and the ResNet stem (147, K = 64: many K blocks of 3).
  return 3 * OWv <= 4 * p.OW + lanes && crs <= 64 && p.K_per_group() <= 32;
}

template <typename T>
void conv_backward_weight_direct_small(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const Geometry g = weight_geometry(p, sizeof(T));
  const ColumnMap m = make_column_map(p, g);
  const RowsFn<T> rows_fn = pick_rows<T>(p.S, g.KB);
  const int64_t L = g.lanes;
  std::vector<int64_t> tap_off(p.S);
  for (int64_t s = 0; s < p.S; ++s)
    tap_off[s] = ((s * p.dil_w) % p.stride_w) * g.PW + (s * p.dil_w) / p.stride_w;
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t items = p.N * p.groups * g.bands;
  const int nt = int(std::clamp<int64_t>(p.num_threads, 1, std::max<int64_t>(items, 1)));
  // Per-thread partials: (groups, kblocks, Cg, R) blocks of (KB, S) vectors.
  const int64_t block = g.KB * p.S * L, part_size = p.groups * g.kblocks * g.Cg * p.R * block;
  std::vector<T> parts(size_t(nt * part_size), T(0));
  const int64_t taps = p.K * g.Cg * p.R * p.S;
#pragma omp parallel num_threads(nt)
  {
    DenormalGuard guard;
    T* buf = thread_scratch<T>(kScratchCol, size_t(g.Cg * g.buf_rows * g.row_len));
    T* gyb = thread_scratch<T>(kScratchAcc, size_t(g.kblocks * g.KB * g.band_rows * g.OWv));
    T* part = parts.data() + thread_id() * part_size;
    const int team = team_size();  // may be under nt: only the team's partials hold sums
#pragma omp for schedule(static)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t band = item % g.bands, gr = (item / g.bands) % p.groups, n = item / (g.bands * p.groups);
      const int64_t oh0 = band * g.band_rows, oh1 = std::min(p.OH, oh0 + g.band_rows);
      const T* xg = nhwc ? x + n * p.H * p.W * p.C + gr * g.Cg : x + (n * p.C + gr * g.Cg) * p.H * p.W;
      fill_band(p, g, m, xg, oh0, oh1, buf);
      fill_grad_band(p, g, gy, n, gr, oh0, oh1, gyb);
      for (int64_t b = 0; b < g.kblocks; ++b)
        for (int64_t c = 0; c < g.Cg; ++c)
          for (int64_t r = 0; r < p.R; ++r)
            rows_fn(buf + (c * g.buf_rows + r * p.dil_h) * g.row_len, p.stride_h * g.row_len,
                    gyb + b * g.KB * g.band_rows * g.OWv, g.band_rows * g.OWv, oh1 - oh0, g.OWv, tap_off.data(),
                    part + (((gr * g.kblocks + b) * g.Cg + c) * p.R + r) * block);
    }
    // (the implicit barrier of the loop above: every partial is complete)
#pragma omp for schedule(static)
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t s = t % p.S, r = (t / p.S) % p.R, c = (t / (p.S * p.R)) % g.Cg, k = t / (p.S * p.R * g.Cg);
      const int64_t gr = k / g.Kg, kg = k % g.Kg, b = kg / g.KB, kk = kg % g.KB;
      const int64_t off = (((gr * g.kblocks + b) * g.Cg + c) * p.R + r) * block + (kk * p.S + s) * L;
      T acc = T(0);
      for (int th = 0; th < team; ++th) {
        const T* v = parts.data() + th * part_size + off;
        for (int64_t l = 0; l < L; ++l) acc += v[l];
      }
      gw[t] = acc;
    }
  }
}

template void conv_backward_weight_direct_small<float>(const ConvParams&, const float*, const float*, float*);
template void conv_backward_weight_direct_small<double>(const ConvParams&, const double*, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
