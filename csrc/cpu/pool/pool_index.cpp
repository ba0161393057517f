// Index-driven kernels: scatter (max pool backward = scatter-add, max unpool = scatter-assign) and gather
// (their adjoint). Every index is range-checked; an out-of-range one is skipped and reported, except
// kEmptyWindowIndex where the adjoint of a max pool allows it (scatter-add skips it, gather reads 0).
#include <algorithm>

#include "pool_kernels.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {
namespace {

inline bool in_range(int64_t i, int64_t n) { return static_cast<uint64_t>(i) < static_cast<uint64_t>(n); }

// Records the first bad index a work item saw into the shared result.
inline void merge(IndexCheck& shared, const IndexCheck& local) {
  if (local.ok) return;
#pragma omp critical(fastconv_pool_index_check)
  if (shared.ok) shared = local;
}

template <typename T, bool accumulate>
IndexCheck scatter_impl(const PoolParams& p, const T* gy, const int64_t* ind, T* gx) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW, C = p.C;
  IndexCheck result;
  if (p.layout == Layout::NCHW) {
    const int64_t planes = p.N * p.C;
    parallel_items(p.num_threads, planes, [&](int64_t plane) {
        IndexCheck local;
        T* gp = gx + plane * HW;
        const T* g = gy + plane * OHW;
        const int64_t* ip = ind + plane * OHW;
        std::fill(gp, gp + HW, T(0));
        for (int64_t o = 0; o < OHW; ++o) {
          const int64_t i = ip[o];
          if (!in_range(i, HW)) {
            if (!(accumulate && i == kEmptyWindowIndex) && local.ok) local = {false, i};
            continue;
          }
          if constexpr (accumulate)
            gp[i] += g[o];
          else
            gp[i] = g[o];
        }
        merge(result, local);
    });
    return result;
  }
  // NHWC: work items (n, channel chunk) own disjoint parts of gx. Rows of gx are zeroed lazily, just
  // before the first index that reaches them (any index order stays correct: a pixel is zeroed before its
  // first write, and only pixels never written yet are zeroed), so a row is still in cache when the
  // scatter adds into it; zeroing the whole image first (12.8 MB for VGG-16's first pool) sent every
  // row through DRAM twice. Measured on 1x64x224x224, k2s2, 2 threads: see the commit.
  const int64_t chunk = channel_chunk(p.N, C, p.num_threads), chunks = (C + chunk - 1) / chunk;
  parallel_items(p.num_threads, p.N * chunks, [&](int64_t item) {
      IndexCheck local;
      const int64_t n = item / chunks, c0 = (item % chunks) * chunk, c1 = std::min(C, c0 + chunk);
      T* gn = gx + n * HW * C;
      int64_t zeroed = 0;  // pixels [0, zeroed) of this item's channels are zero or written
      const auto zero_through = [&](int64_t pixel) {  // zero whole rows up to and including pixel's row
        const int64_t end = std::min(HW, (pixel / p.W + 1) * p.W);
        if (c1 - c0 == C)
          std::fill(gn + zeroed * C, gn + end * C, T(0));
        else
          for (int64_t s = zeroed; s < end; ++s) std::fill(gn + s * C + c0, gn + s * C + c1, T(0));
        zeroed = end;
      };
      for (int64_t o = 0; o < OHW; ++o) {
        const T* g = gy + (n * OHW + o) * C;
        const int64_t* ip = ind + (n * OHW + o) * C;
        for (int64_t c = c0; c < c1; ++c) {
          const int64_t i = ip[c];
          if (!in_range(i, HW)) {
            if (!(accumulate && i == kEmptyWindowIndex) && local.ok) local = {false, i};
            continue;
          }
          if (i >= zeroed) zero_through(i);
          if constexpr (accumulate)
            gn[i * C + c] += g[c];
          else
            gn[i * C + c] = g[c];
        }
      }
      if (zeroed < HW) zero_through(HW - 1);
      merge(result, local);
  });
  return result;
}

}  // namespace

template <typename T>
IndexCheck pool_scatter(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, bool accumulate) {
  return accumulate ? scatter_impl<T, true>(p, gy, ind, gx) : scatter_impl<T, false>(p, gy, ind, gx);
}

template <typename T>
IndexCheck pool_gather(const PoolParams& p, const T* x, const int64_t* ind, T* y) {
  const int64_t HW = p.H * p.W, OHW = p.OH * p.OW, C = p.C;
  IndexCheck result;
  const bool nchw = p.layout == Layout::NCHW;
  const int64_t items = nchw ? p.N * p.C : p.N * p.OH;
  parallel_items(p.num_threads, items, [&](int64_t item) {
      IndexCheck local;
      if (nchw) {
        const T* xp = x + item * HW;
        for (int64_t o = item * OHW; o < (item + 1) * OHW; ++o) {
          const int64_t i = ind[o];
          const bool ok = in_range(i, HW);
          if (!ok && i != kEmptyWindowIndex && local.ok) local = {false, i};
          y[o] = ok ? xp[i] : T(0);
        }
      } else {
        const int64_t n = item / p.OH;
        const T* xn = x + n * HW * C;
        for (int64_t e = item * p.OW * C; e < (item + 1) * p.OW * C; ++e) {
          const int64_t i = ind[e], c = e % C;
          const bool ok = in_range(i, HW);
          if (!ok && i != kEmptyWindowIndex && local.ok) local = {false, i};
          y[e] = ok ? xn[i * C + c] : T(0);
        }
      }
      merge(result, local);
  });
  return result;
}

template IndexCheck pool_scatter<float>(const PoolParams&, const float*, const int64_t*, float*, bool);
template IndexCheck pool_scatter<double>(const PoolParams&, const double*, const int64_t*, double*, bool);
template IndexCheck pool_gather<float>(const PoolParams&, const float*, const int64_t*, float*);
template IndexCheck pool_gather<double>(const PoolParams&, const double*, const int64_t*, double*);

}  // namespace cpu
}  // namespace fastconv
