// The m x m output tiles of a Winograd problem (m = 7 - R: 4 for 3x3 kernels, 2 for 5x5) and the gather of their
// 6x6 input patches, shared by the forward (and input-gradient) kernel and the weight-gradient kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../../common/conv_params.h"
#include "../gemm/gemm_microkernel.h"
#include "winograd_transforms.h"

namespace fastconv {
namespace cpu {
namespace winograd {

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The output tile edge of an R x R kernel (R = 3 or 5).
inline int64_t tile_out(int64_t R) { return kTileIn - R + 1; }

// Output tiles of edge m along one axis of n outputs.
inline int64_t tiles_along(int64_t n, int64_t m) { return (n + m - 1) / m; }

// Row strides of the transformed matrices: channel counts rounded to the vector lanes, then moved off
// multiples of 512 bytes (stride_off_512: the GEMMs read 14 rows or a column strip of many rows at once).
template <typename T>
int64_t padded_row(int64_t channels) {
  return stride_off_512(round_up(channels, kLanes<T>), sizeof(T));
}

// Tiles of edge m (tile_out of the kernel) are numbered image by image, row by row: tile = (n*TH + th)*TW + tw.
struct TileGrid {
  int64_t TH = 0, TW = 0, tiles = 0;
  explicit TileGrid(const ConvParams& p)
      : TH(tiles_along(p.OH, tile_out(p.R))), TW(tiles_along(p.OW, tile_out(p.R))), tiles(p.N * TH * TW) {}
  int64_t image(int64_t tile) const { return tile / (TH * TW); }
  int64_t row(int64_t tile) const { return tile / TW % TH; }
  int64_t col(int64_t tile) const { return tile % TW; }
};

// The 6x6 input patch of tile (n, th, tw), channels [c0, c0 + L) (zeros past C and in zero padding), as
// d[(i*6 + j)*L + lane]. channels_last: a lane is one contiguous load; NCHW: the lanes are 16 planes.
// Patch rows and columns past the last one an output reads (padded coordinate >= OH + R - 1, the far side of
// an edge tile) are zeros: any value would do in exact arithmetic, but remapping them could leave the
// input (circular padding of a 1-row input read 3 rows past it).
template <typename T>
void gather_patch(const ConvParams& p, const T* x, int64_t n, int64_t th, int64_t tw, int64_t c0, T* d) {
  constexpr int L = kLanes<T>;
  const int64_t m = tile_out(p.R), ih0 = th * m - p.pad_t, iw0 = tw * m - p.pad_l, HW = p.H * p.W;
  const T* xn = x + n * HW * p.C;
  const bool nhwc = p.layout == Layout::NHWC;
  const int64_t cs = nhwc ? 1 : HW, ps = nhwc ? p.C : 1;  // strides of a channel, of a pixel
  const int64_t lanes = std::min<int64_t>(L, p.C - c0);
  if (lanes == L && ih0 >= 0 && iw0 >= 0 && ih0 + kTileIn <= p.H && iw0 + kTileIn <= p.W) {
    if (nhwc) {
      for (int i = 0; i < kTileIn; ++i)
        for (int j = 0; j < kTileIn; ++j)
          std::memcpy(d + (i * kTileIn + j) * L, xn + ((ih0 + i) * p.W + iw0 + j) * p.C + c0, L * sizeof(T));
    } else {
      for (int64_t l = 0; l < L; ++l) {
        const T* plane = xn + (c0 + l) * HW + ih0 * p.W + iw0;
        for (int i = 0; i < kTileIn; ++i)
          for (int j = 0; j < kTileIn; ++j) d[(i * kTileIn + j) * L + l] = plane[i * p.W + j];
      }
    }
    return;
  }
  const int64_t rows = std::min<int64_t>(kTileIn, p.OH + p.R - 1 - th * m);
  const int64_t cols = std::min<int64_t>(kTileIn, p.OW + p.S - 1 - tw * m);
  for (int i = 0; i < kTileIn; ++i) {
    const int64_t ih = i < rows ? remap_index(ih0 + i, p.H, p.mode) : -1;
    for (int j = 0; j < kTileIn; ++j) {
      T* dst = d + (i * kTileIn + j) * L;
      const int64_t iw = j < cols ? remap_index(iw0 + j, p.W, p.mode) : -1;
      int64_t l = 0;
      if (ih >= 0 && iw >= 0) {
        const T* src = xn + (ih * p.W + iw) * ps + c0 * cs;
        for (; l < lanes; ++l) dst[l] = src[l * cs];
      }
      for (; l < L; ++l) dst[l] = T(0);
    }
  }
}

// Tile `tile`'s transformed input: point xi of channel c to V[xi*v_point + c] (channels [0, Cp): zeros past
// C). A tile past the last one (rows that fill a GEMM panel) gets zeros: finite GEMM inputs.
template <typename T>
void transform_input_tile(const ConvParams& p, const TileGrid& g, int64_t Cp, int64_t tile, const T* x, T* V,
                          int64_t v_point) {
  constexpr int L = kLanes<T>;
  if (tile >= g.tiles) {
    for (int xi = 0; xi < kPoints; ++xi) std::memset(V + xi * v_point, 0, size_t(Cp) * sizeof(T));
    return;
  }
  alignas(64) T d[kPoints * L];
  alignas(64) T tmp[kPoints * L];
  for (int64_t c0 = 0; c0 < Cp; c0 += L) {
    gather_patch(p, x, g.image(tile), g.row(tile), g.col(tile), c0, d);
    input_tile_transform<T>(d, tmp, V + c0, v_point);
  }
}

}  // namespace winograd
}  // namespace cpu
}  // namespace fastconv
