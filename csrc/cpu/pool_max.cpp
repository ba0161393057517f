// Max pooling forward (values and indices). NCHW: threads over (n, c) planes; per output row the kernel
// taps are the outer loops and the output columns the inner (vectorisable) loop. NHWC: threads over
// (n, oh) rows, the inner loop runs over the contiguous channels.
#include <limits>

#include "../common/denormal_guard.h"
#include "../common/parallel.h"
#include "pool_kernels.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {
namespace {

// Folds tap x[row][o * s + off] into the running max of outputs o in [lo, hi). SW > 0 fixes the stride
// at compile time (strided loads the compiler vectorises); SW == 0 uses s.
template <typename T, int SW>
void fold_max_taps(const T* row, int64_t row_index, int64_t off, int64_t s, int64_t lo, int64_t hi, T* ym,
                   int64_t* im) {
  const int64_t st = SW > 0 ? SW : s;
  for (int64_t o = lo; o < hi; ++o) {
    const int64_t iw = o * st + off;
    const T v = row[iw];
    const T m = ym[o];
    const bool take = (v > m) || (v != v);  // first maximum wins; NaN counts as the maximum
    ym[o] = take ? v : m;
    im[o] = take ? row_index + iw : im[o];
  }
}

template <typename T>
void max_forward_nchw(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  const int64_t planes = p.N * p.C, HW = p.H * p.W, OHW = p.OH * p.OW;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = x + plane * HW;
      for (int64_t oh = 0; oh < p.OH; ++oh) {
        T* yr = y + plane * OHW + oh * p.OW;
        int64_t* ir = ind + plane * OHW + oh * p.OW;
        const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
        for (int64_t ow = 0; ow < p.OW; ++ow) {
          const Span ws = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
          yr[ow] = -std::numeric_limits<T>::infinity();
          ir[ow] = hs.begin * p.W + ws.begin;
        }
        for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh) {
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t off = j * p.dw - p.pw;
            int64_t lo, hi;
            tap_range(off, p.sw, p.W, p.OW, lo, hi);
            const T* row = xp + ih * p.W;
            if (p.sw == 1)
              fold_max_taps<T, 1>(row, ih * p.W, off, 1, lo, hi, yr, ir);
            else if (p.sw == 2)
              fold_max_taps<T, 2>(row, ih * p.W, off, 2, lo, hi, yr, ir);
            else
              fold_max_taps<T, 0>(row, ih * p.W, off, p.sw, lo, hi, yr, ir);
          }
        }
      }
    }
  }
}

template <typename T>
void max_forward_nhwc(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  const int64_t rows = p.N * p.OH, C = p.C;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / p.OH, oh = r % p.OH;
      const Span hs = max_span(oh, p.H, p.kh, p.sh, p.ph, p.dh);
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const Span ws = max_span(ow, p.W, p.kw, p.sw, p.pw, p.dw);
        T* __restrict yc = y + (r * p.OW + ow) * C;
        int64_t* __restrict ic = ind + (r * p.OW + ow) * C;
        const int64_t i0 = hs.begin * p.W + ws.begin;
        for (int64_t c = 0; c < C; ++c) {
          yc[c] = -std::numeric_limits<T>::infinity();
          ic[c] = i0;
        }
        for (int64_t ih = hs.begin; ih < hs.end; ih += p.dh)
          for (int64_t iw = ws.begin; iw < ws.end; iw += p.dw) {
            const T* __restrict xc = x + ((n * p.H + ih) * p.W + iw) * C;
            const int64_t idx = ih * p.W + iw;
            for (int64_t c = 0; c < C; ++c) {
              const T v = xc[c];
              const T m = yc[c];
              const bool take = (v > m) || (v != v);
              yc[c] = take ? v : m;
              ic[c] = take ? idx : ic[c];
            }
          }
      }
    }
  }
}

}  // namespace

template <typename T>
void max_pool_forward(const PoolParams& p, const T* x, T* y, int64_t* ind) {
  if (p.layout == Layout::NHWC)
    max_forward_nhwc(p, x, y, ind);
  else
    max_forward_nchw(p, x, y, ind);
}

template void max_pool_forward<float>(const PoolParams&, const float*, float*, int64_t*);
template void max_pool_forward<double>(const PoolParams&, const double*, double*, int64_t*);

}  // namespace cpu
}  // namespace fastconv
