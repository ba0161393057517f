// CPU pooling kernels (torch-free). Activations are dense in p.layout (NCHW or NHWC); indices are int64
// with the activations' shape and layout, each the flat position ih * W + iw inside its (n, c) plane of
// the un-pooled (H, W) side. Every entry point writes (never accumulates into) its output.
#pragma once

#include <cstdint>

#include "../../common/pool_params.h"

namespace fastconv {
namespace cpu {

// First index found outside [0, H*W) by an index-consuming kernel (ok == false): nothing was read or
// written through it, and the caller raises.
struct IndexCheck {
  bool ok = true;
  int64_t value = 0;
};

// y, ind: (N, C, OH, OW). Max over each (dilated) window, torch's tie rule: the first maximum in scan
// order (rows, then columns) wins, and any NaN counts as the maximum (the last NaN wins). A window with
// no tap inside the input gives -inf and index kEmptyWindowIndex (pool_params.h). ind == nullptr: the values only.
template <typename T>
void max_pool_forward(const PoolParams& p, const T* x, T* y, int64_t* ind);

// gx (N, C, H, W) = scatter-add of gy (N, C, OH, OW) at ind: max pooling's backward (the adjoint of
// pool_gather); entries with index kEmptyWindowIndex add nothing. With accumulate == false the scatter
// assigns instead (max_unpool's forward), and kEmptyWindowIndex is invalid like any index outside the plane.
template <typename T>
IndexCheck pool_scatter(const PoolParams& p, const T* gy, const int64_t* ind, T* gx, bool accumulate);

// The same gradient as pool_scatter(accumulate = true) for indices of a max pooling with p's window, NHWC
// only, computed from the window side (each gx element written once; pool_max_backward.cpp). Returns
// false, and leaves gx incomplete, when the windows overlap or some index is not a tap of its own window:
// run pool_scatter instead, which accepts or reports any index.
template <typename T>
bool max_pool_backward_nhwc(const PoolParams& p, const T* gy, const int64_t* ind, T* gx);

// Whether max_pool_backward_nhwc takes p's window at all: windows that do not overlap (each input pixel a
// tap of at most one window), which needs only the window fields of p.
bool max_pool_backward_nhwc_applies(const PoolParams& p);

// y (N, C, OH, OW) = x (N, C, H, W) gathered at ind: max unpool's backward, max pool's double backward.
// Index kEmptyWindowIndex gathers 0.
template <typename T>
IndexCheck pool_gather(const PoolParams& p, const T* x, const int64_t* ind, T* y);

// Average over each window; divisor as torch: divisor_override, else the window clipped to the padded
// input (count_include_pad) or to the input.
template <typename T>
void avg_pool_forward(const PoolParams& p, const T* x, T* y);

// gx (N, C, H, W): the adjoint of avg_pool_forward applied to gy (N, C, OH, OW).
template <typename T>
void avg_pool_backward(const PoolParams& p, const T* gy, T* gx);

}  // namespace cpu
}  // namespace fastconv
