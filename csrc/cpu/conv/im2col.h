// im2col / col2im for one image and one group, over a band of output rows [oh0, oh1) (the GEMM paths
// process the output in bands so the column buffer stays in cache). Padding modes are resolved with
// remap_index while gathering: no padded copy of the input is made.
//   NCHW: col is (Cg*R*S) x npix, row (c, r, s), npix = (oh1 - oh0) * OW; x points at channel g*Cg of
//         one image (plane stride H*W).
//   NHWC: col is npix x (R*S*Cg), column (r, s, c); x points at channel g*Cg of one image (pixel
//         stride C).
// col2im is the adjoint: it ADDS each column entry into the input element it was gathered from (zero-
// padding taps are dropped), so bands and groups can be accumulated into a zeroed gradient. It covers
// `channels` channels starting at gx (the whole group, Cg, or a thread's slice of it); the column matrix
// then has channels*R*S rows (NCHW) or columns (NHWC).
#pragma once

#include <cstdint>

#include "../../common/conv_params.h"

namespace fastconv {
namespace cpu {

// ld: the row stride of col (0: the band's pixel count), so several images' columns can sit side by side.
template <typename T>
void im2col_nchw(const ConvParams& p, const T* x, int64_t oh0, int64_t oh1, T* col, int64_t ld = 0);
template <typename T>
void col2im_nchw(const ConvParams& p, const T* col, int64_t oh0, int64_t oh1, int64_t channels, T* gx,
                 int64_t ld = 0);
template <typename T>
void im2col_nhwc(const ConvParams& p, const T* x, int64_t oh0, int64_t oh1, T* col);
template <typename T>
void col2im_nhwc(const ConvParams& p, const T* col, int64_t oh0, int64_t oh1, int64_t channels, T* gx);

// Output columns ow whose input column ow*stride_w - pad_l + s*dil_w lies inside [0, W): [lo, hi).
struct InteriorRange {
  int64_t lo, hi;
};
InteriorRange interior_cols(const ConvParams& p, int64_t s);

}  // namespace cpu
}  // namespace fastconv
