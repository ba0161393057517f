// Average pooling forward and backward. Same threading and loop order as pool_max.cpp; sums run in the
// scalar type in torch's order (rows, then columns) and are divided, not multiplied by a reciprocal, so
// results match torch's to the last bit for non-overlapping windows.
#include <algorithm>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "pool_kernels.h"
#include "pool_plane_blocks.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {
namespace {

template <typename T, int SW>
void add_taps(const T* row, int64_t off, int64_t s, int64_t lo, int64_t hi, T* acc) {
  const int64_t st = SW > 0 ? SW : s;
  for (int64_t o = lo; o < hi; ++o) acc[o] += row[o * st + off];
}

// Adjoint of add_taps: row[o * s + off] += g[o].
template <typename T, int SW>
void spread_taps(const T* g, int64_t off, int64_t s, int64_t lo, int64_t hi, T* row) {
  const int64_t st = SW > 0 ? SW : s;
  for (int64_t o = lo; o < hi; ++o) row[o * st + off] += g[o];
}

// Rows narrower than this take the per-window loops: the per-tap loops below vectorise along the output
// row, but on a global pool (GoogLeNet's 7x7 -> 1x1 over 8x1024 planes) every tap is a one-element call and
// fastconv ran 8x slower than torch.
constexpr int64_t kNarrowRow = 8;

// Every output's row and column windows and its divisor (as T), computed once per call for all planes: per
// output they cost more than the few adds of a small window (LeNet-5's S4, 64x16 planes of 10x10, ran at 0.5x of
// torch recomputing them for each).
template <typename T>
struct AvgWindows {
  std::vector<AvgSpan> rows, cols;
  std::vector<T> div;  // output (oh, ow) at div[oh * OW + ow]
  explicit AvgWindows(const PoolParams& p) {
    for (int64_t oh = 0; oh < p.OH; ++oh) rows.push_back(avg_span(oh, p.H, p.kh, p.sh, p.ph));
    for (int64_t ow = 0; ow < p.OW; ++ow) cols.push_back(avg_span(ow, p.W, p.kw, p.sw, p.pw));
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) div.push_back(T(avg_divisor(p, rows[oh], cols[ow])));
  }
  // no tap of the window lies inside the input
  bool empty(int64_t oh, int64_t ow) const {
    return rows[oh].begin >= rows[oh].end || cols[ow].begin >= cols[ow].end;
  }
};

// One output row of a narrow plane, window by window; the sum runs in the same order (rows, then columns)
// as the per-tap loops, so the results are identical.
template <typename T>
void avg_row_by_window(const PoolParams& p, const AvgWindows<T>& win, const T* xp, int64_t oh, T* yr) {
  const AvgSpan& hs = win.rows[oh];
  for (int64_t ow = 0; ow < p.OW; ++ow) {
    if (win.empty(oh, ow)) {
      yr[ow] = T(0);
      continue;
    }
    const AvgSpan& ws = win.cols[ow];
    T acc = T(0);
    for (int64_t ih = hs.begin; ih < hs.end; ++ih)
      for (int64_t iw = ws.begin; iw < ws.end; ++iw) acc += xp[ih * p.W + iw];
    yr[ow] = acc / win.div[oh * p.OW + ow];
  }
}

// NCHW planes of at most kMaxBlockPlane elements run in blocks (pool_plane_blocks.h): every window summed for the
// block's kPlaneLanes planes at once, a lane per plane in the same order (so to the same bits) as the one-plane
// loops. One plane at a time, a narrow row's windows were chains of dependent scalar adds (LeNet-5's S4, 64x16
// planes of 10x10, 2x2 windows, and GoogLeNet's 7x7 average over 8x1024 planes of 7x7 ran at 0.65-0.8x of torch),
// and a wide row's taps strided passes over the output row: A/B in one process, 2 threads, forward / backward,
// 16x64x28x28 2x2/2 516 -> 110 / 388 -> 153 us, 4x128x56x56 431 -> 176 / 662 -> 289, 8x16x40x40 5x5/1 527 -> 118 /
// 579 -> 170, 1x32x224x224 2x2/2 457 -> 344 / 754 -> 480 (its scratch, 3.2 MB, in L3).
template <typename T>
void avg_block_windows(const PoolParams& p, const AvgWindows<T>& win, const T* xs, T* ys) {
  constexpr int L = kPlaneLanes<T>;
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    const AvgSpan& hs = win.rows[oh];
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      T* out = ys + (oh * p.OW + ow) * L;
      if (win.empty(oh, ow)) {
        std::fill(out, out + L, T(0));
        continue;
      }
      const AvgSpan& ws = win.cols[ow];
      T acc[L] = {};
      for (int64_t ih = hs.begin; ih < hs.end; ++ih)
        for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
          const T* px = xs + (ih * p.W + iw) * L;
#pragma GCC unroll 16
          for (int l = 0; l < L; ++l) acc[l] += px[l];
        }
      const T div = win.div[oh * p.OW + ow];
#pragma GCC unroll 16
      for (int l = 0; l < L; ++l) out[l] = acc[l] / div;
    }
  }
}

template <typename T>
void avg_forward_nchw(const PoolParams& p, const T* x, T* y) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, OHW = p.OH * p.OW;
  const AvgWindows<T> win(p);
  if (HW <= kMaxBlockPlane)  // every plane in a block (the last one partial), so any plane gets the same bits
    return pool_in_plane_blocks(p.num_threads, planes, HW, OHW, x, y, nullptr,
                                [&](const T* xs, T* ys, int64_t*) { avg_block_windows(p, win, xs, ys); });
  int64_t j0, j1;  // kernel columns that reach the input for some output column
  kernel_tap_range(-p.pw, (p.OW - 1) * p.sw + 1, p.W, p.kw, 1, j0, j1);
  parallel_items(p.num_threads, planes, [&](int64_t plane) {
      const T* xp = x + plane * HW;
      if (p.OW < kNarrowRow) {
        for (int64_t oh = 0; oh < p.OH; ++oh) avg_row_by_window(p, win, xp, oh, y + plane * OHW + oh * p.OW);
        return;
      }
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        T* yr = y + plane * OHW + oh * p.OW;
        const AvgSpan& hs = win.rows[oh];
        std::fill(yr, yr + p.OW, T(0));
        for (int64_t ih = hs.begin; ih < hs.end; ++ih)
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t off = j - p.pw;
            int64_t lo, hi;
            tap_range(off, p.sw, p.W, p.OW, lo, hi);
            const T* row = xp + ih * p.W;
            if (p.sw == 1)
              add_taps<T, 1>(row, off, 1, lo, hi, yr);
            else if (p.sw == 2)
              add_taps<T, 2>(row, off, 2, lo, hi, yr);
            else
              add_taps<T, 0>(row, off, p.sw, lo, hi, yr);
          }
        for (int64_t ow = 0; ow < p.OW; ++ow) yr[ow] = win.empty(oh, ow) ? T(0) : yr[ow] / win.div[oh * p.OW + ow];
      }
  });
}

#if defined(__AVX512F__)
// NHWC float: NB blocks of 16 channels [c, c + 16 NB) of one output pixel, summed in registers across the
// window's taps. The NB independent add chains are interleaved (one chain alone waits on the add latency
// at every tap); each channel still sums in torch's order, so results are unchanged. `last` masks the
// channels of the final block (a partial block at the end of C).
template <int NB, bool kTail, bool kStream>
inline void avg_block_f32(const float* xn, int64_t W, int64_t C, const AvgSpan& hs, const AvgSpan& ws, __m512 div,
                          int64_t c, __mmask16 last, float* yc) {
  __m512 acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = _mm512_setzero_ps();
  for (int64_t ih = hs.begin; ih < hs.end; ++ih)
    for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
      const float* src = xn + (ih * W + iw) * C + c;
      for (int b = 0; b < NB; ++b) {
        const __m512 v = (kTail && b == NB - 1) ? _mm512_maskz_loadu_ps(last, src + 16 * b)
                                                : _mm512_loadu_ps(src + 16 * b);
        acc[b] = _mm512_add_ps(acc[b], v);
      }
    }
  for (int b = 0; b < NB; ++b) {
    const __m512 mean = _mm512_div_ps(acc[b], div);
    if (kTail && b == NB - 1)
      _mm512_mask_storeu_ps(yc + c + 16 * b, last, mean);
    else if constexpr (kStream)
      _mm512_stream_ps(yc + c + 16 * b, mean);
    else
      _mm512_storeu_ps(yc + c + 16 * b, mean);
  }
}

// All C channels of one (non-empty) output pixel: 64 at a time, then one call for the remaining 1..63.
// kStream (use_stream_stores: C % 16 == 0, so no partial block) streams the stores.
template <bool kStream>
inline void avg_pixel_f32(const float* xn, int64_t W, int64_t C, const AvgSpan& hs, const AvgSpan& ws, float div,
                          float* yc) {
  const __m512 d = _mm512_set1_ps(div);
  int64_t c = 0;
  for (; c + 64 <= C; c += 64) avg_block_f32<4, false, kStream>(xn, W, C, hs, ws, d, c, 0xFFFF, yc);
  const int64_t rem = C - c;
  if (rem == 0) return;
  const int64_t tail = rem % 16;
  const __mmask16 last = tail == 0 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << tail) - 1u);
  switch ((rem + 15) / 16) {
    case 1: avg_block_f32<1, !kStream, kStream>(xn, W, C, hs, ws, d, c, last, yc); break;
    case 2: avg_block_f32<2, !kStream, kStream>(xn, W, C, hs, ws, d, c, last, yc); break;
    case 3: avg_block_f32<3, !kStream, kStream>(xn, W, C, hs, ws, d, c, last, yc); break;
    default: avg_block_f32<4, !kStream, kStream>(xn, W, C, hs, ws, d, c, last, yc); break;
  }
}
#endif

template <typename T>
void avg_forward_nhwc(const PoolParams& p, const T* x, T* y) {
  const int64_t rows = p.N * p.OH, C = p.C;
  const bool stream =
      std::is_same_v<T, float> && use_stream_stores(C, y, nullptr, rows * p.OW * C * int64_t(sizeof(T)));
  // Windows that tile the input (kernel == stride) read each of their kh rows as one sequential stream, which
  // the hardware prefetcher follows; the software prefetch only cost time there (torch-free A/B, k2s2 on
  // N=8 C=64 112x112, cold input: 0.70 -> 0.67 ms, median of 5 runs of 61). Max pooling keeps it (neutral
  // to helpful on the same case: its index stores make a third stream).
  const bool prefetch = !(p.kh == p.sh && p.kw == p.sw);
  parallel_items(p.num_threads, rows, [&](int64_t r) {
      const int64_t n = r / p.OH, oh = r % p.OH;
      const AvgSpan hs = avg_span(oh, p.H, p.kh, p.sh, p.ph);
      const T* xn = x + n * p.H * p.W * C;
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const AvgSpan ws = avg_span(ow, p.W, p.kw, p.sw, p.pw);
        T* __restrict yc = y + (r * p.OW + ow) * C;
        if (hs.begin >= hs.end || ws.begin >= ws.end) {
          std::fill(yc, yc + C, T(0));
          continue;
        }
        const T div = T(avg_divisor(p, hs, ws));
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
          if (prefetch && ow + kNhwcPrefetchPixels < p.OW)
            prefetch_window_nhwc(xn, p.W, C, 4, hs.begin, hs.end, 1, (ow + kNhwcPrefetchPixels) * p.sw - p.pw,
                                 p.kw * C * 4);
          if (stream)
            avg_pixel_f32<true>(xn, p.W, C, hs, ws, div, yc);
          else
            avg_pixel_f32<false>(xn, p.W, C, hs, ws, div, yc);
          continue;
        }
#endif
        std::fill(yc, yc + C, T(0));
        for (int64_t ih = hs.begin; ih < hs.end; ++ih)
          for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
            const T* __restrict xc = xn + (ih * p.W + iw) * C;
            for (int64_t c = 0; c < C; ++c) yc[c] += xc[c];
          }
        for (int64_t c = 0; c < C; ++c) yc[c] /= div;
      }
      if (stream) stream_fence();
  });
}

// The backward of avg_block_windows: each window's gradient spread over its taps for the block's planes at once
// (windows in row-major order, as the narrow one-plane loops).
template <typename T>
void avg_backward_block_windows(const PoolParams& p, const AvgWindows<T>& win, const T* gys, T* gxs) {
  constexpr int L = kPlaneLanes<T>;
  std::fill(gxs, gxs + p.H * p.W * L, T(0));
  for (int64_t oh = 0; oh < p.OH; ++oh) {
    const AvgSpan& hs = win.rows[oh];
    for (int64_t ow = 0; ow < p.OW; ++ow) {
      if (win.empty(oh, ow)) continue;
      const AvgSpan& ws = win.cols[ow];
      const T* g = gys + (oh * p.OW + ow) * L;
      const T div = win.div[oh * p.OW + ow];
      T gv[L];
#pragma GCC unroll 16
      for (int l = 0; l < L; ++l) gv[l] = g[l] / div;
      for (int64_t ih = hs.begin; ih < hs.end; ++ih)
        for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
          T* px = gxs + (ih * p.W + iw) * L;
#pragma GCC unroll 16
          for (int l = 0; l < L; ++l) px[l] += gv[l];
        }
    }
  }
}

template <typename T>
void avg_backward_nchw(const PoolParams& p, const T* gy, T* gx) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, OHW = p.OH * p.OW;
  const AvgWindows<T> win(p);
  if (HW <= kMaxBlockPlane)  // grad_output's planes in, the input gradient's out
    return pool_in_plane_blocks(p.num_threads, planes, OHW, HW, gy, gx, nullptr,
                                [&](const T* gys, T* gxs, int64_t*) { avg_backward_block_windows(p, win, gys, gxs); });
  int64_t j0, j1;  // kernel columns that reach the input for some output column
  kernel_tap_range(-p.pw, (p.OW - 1) * p.sw + 1, p.W, p.kw, 1, j0, j1);
  parallel_items(p.num_threads, planes, [&](int64_t plane) {
      thread_local std::vector<T> g;  // one allocation per thread, not per plane
      g.resize(p.OW);
      T* gp = gx + plane * HW;
      std::fill(gp, gp + HW, T(0));
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        const T* gr = gy + plane * OHW + oh * p.OW;
        const AvgSpan& hs = win.rows[oh];
        if (hs.begin >= hs.end) continue;
        if (p.OW < kNarrowRow) {  // narrow rows: window by window (see avg_row_by_window)
          for (int64_t ow = 0; ow < p.OW; ++ow) {
            if (win.empty(oh, ow)) continue;
            const AvgSpan& ws = win.cols[ow];
            const T gv = gr[ow] / win.div[oh * p.OW + ow];
            for (int64_t ih = hs.begin; ih < hs.end; ++ih)
              for (int64_t iw = ws.begin; iw < ws.end; ++iw) gp[ih * p.W + iw] += gv;
          }
          continue;
        }
        for (int64_t ow = 0; ow < p.OW; ++ow) g[ow] = win.empty(oh, ow) ? T(0) : gr[ow] / win.div[oh * p.OW + ow];
        for (int64_t ih = hs.begin; ih < hs.end; ++ih)
          for (int64_t j = j0; j < j1; ++j) {
            const int64_t off = j - p.pw;
            int64_t lo, hi;
            tap_range(off, p.sw, p.W, p.OW, lo, hi);
            T* row = gp + ih * p.W;
            if (p.sw == 1)
              spread_taps<T, 1>(g.data(), off, 1, lo, hi, row);
            else if (p.sw == 2)
              spread_taps<T, 2>(g.data(), off, 2, lo, hi, row);
            else
              spread_taps<T, 0>(g.data(), off, p.sw, lo, hi, row);
          }
      }
  });
}

template <typename T>
void avg_backward_nhwc(const PoolParams& p, const T* gy, T* gx) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW, C = p.C;
  const int64_t chunk = channel_chunk(p.N, C, p.num_threads), chunks = (C + chunk - 1) / chunk;
  parallel_items(p.num_threads, p.N * chunks, [&](int64_t item) {
      std::vector<T> g(chunk);
      const int64_t n = item / chunks, c0 = (item % chunks) * chunk, c1 = std::min(C, c0 + chunk);
      const int64_t len = c1 - c0;
      T* gn = gx + n * HW * C;
      if (len == C)
        std::fill(gn, gn + HW * C, T(0));
      else
        for (int64_t s = 0; s < HW; ++s) std::fill(gn + s * C + c0, gn + s * C + c1, T(0));
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        const AvgSpan hs = avg_span(oh, p.H, p.kh, p.sh, p.ph);
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const AvgSpan ws = avg_span(ow, p.W, p.kw, p.sw, p.pw);
          if (hs.begin >= hs.end || ws.begin >= ws.end) continue;
          const T div = T(avg_divisor(p, hs, ws));
          const T* __restrict gc = gy + (n * OHW + oh * p.OW + ow) * C + c0;
          T* __restrict gl = g.data();
          for (int64_t c = 0; c < len; ++c) gl[c] = gc[c] / div;
          for (int64_t ih = hs.begin; ih < hs.end; ++ih)
            for (int64_t iw = ws.begin; iw < ws.end; ++iw) {
              T* __restrict dst = gn + (ih * p.W + iw) * C + c0;
              for (int64_t c = 0; c < len; ++c) dst[c] += gl[c];
            }
        }
      }
  });
}

}  // namespace

template <typename T>
void avg_pool_forward(const PoolParams& p, const T* x, T* y) {
  if (p.layout == Layout::NHWC)
    avg_forward_nhwc(p, x, y);
  else
    avg_forward_nchw(p, x, y);
}

template <typename T>
void avg_pool_backward(const PoolParams& p, const T* gy, T* gx) {
  if (p.layout == Layout::NHWC)
    avg_backward_nhwc(p, gy, gx);
  else
    avg_backward_nchw(p, gy, gx);
}

template void avg_pool_forward<float>(const PoolParams&, const float*, float*);
template void avg_pool_forward<double>(const PoolParams&, const double*, double*);
template void avg_pool_backward<float>(const PoolParams&, const float*, float*);
template void avg_pool_backward<double>(const PoolParams&, const double*, double*);

}  // namespace cpu
}  // namespace fastconv
