// NCHW pooling in blocks of planes: kPlaneLanes<T> planes (one 64-byte vector of T) transposed into an image of
// that many channels, pooled by a channels_last kernel, the outputs (and indices) transposed back. One plane at a
// time, a small plane's rows fill few lanes of a vector, or none (pool_avg.cpp, pool_max.cpp, adaptive_pool_max.cpp).
// A plane's flat index (ih * W + iw) is the same in both layouts, so index outputs need no change either.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "../transpose.h"
#include "pool_window.h"

namespace fastconv {
namespace cpu {

template <typename T>
inline constexpr int kPlaneLanes = 64 / int(sizeof(T));
inline constexpr int64_t kMaxBlockPlane = 256 * 256;  // a block's scratch: 4 MB of input pixels, 1 MB of outputs

// For every block of planes of x (planes of in_plane values) on up to num_threads threads: the block transposed into
// xs (pixel p, plane l at xs[p * L + l]), then kernel(xs, ys, is) writes out_plane pixels of L values (and their
// int64 indices when ind is not null) into ys / is, which go back into y / ind as planes of out_plane values. A
// partial last block's unused lanes hold stale values; their results are not written.
template <typename T, typename Kernel>
void pool_in_plane_blocks(int num_threads, int64_t planes, int64_t in_plane, int64_t out_plane, const T* x, T* y,
                          int64_t* ind, const Kernel& kernel) {
  constexpr int64_t L = kPlaneLanes<T>;
  parallel_items(num_threads, (planes + L - 1) / L, [&](int64_t b) {
    thread_local std::vector<T> scratch;  // one allocation per thread, not per block
    thread_local std::vector<int64_t> index_scratch;
    scratch.resize(size_t((in_plane + out_plane) * L));
    if (ind) index_scratch.resize(size_t(out_plane * L));
    T* xs = scratch.data();
    T* ys = xs + in_plane * L;
    int64_t* is = ind ? index_scratch.data() : nullptr;
    const int64_t lanes = std::min(L, planes - b * L);
    transpose_serial(lanes, in_plane, x + b * L * in_plane, in_plane, int64_t(1), xs, L);
    kernel(xs, ys, is);
    transpose_serial(out_plane, lanes, ys, L, int64_t(1), y + b * L * out_plane, out_plane);
    if (ind) transpose_serial(out_plane, lanes, is, L, int64_t(1), ind + b * L * out_plane, out_plane);
  });
}

}  // namespace cpu
}  // namespace fastconv
