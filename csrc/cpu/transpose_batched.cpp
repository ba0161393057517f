// batched_transpose (transpose.h): out of line, so callers outside the kernel library use this build of it.
#include "transpose.h"

#include <algorithm>
#include <type_traits>

#include "../common/parallel.h"
#include "simd_transpose.h"

namespace fastconv {
namespace cpu {

// Rows of R*S < 32 leave transpose_tiled_batch's tiles mostly partial; the plain loop (contiguous reads) measured 0.75 ms on a 512x512x3x3 float weight
// against 1.3 ms for the tiles and 1.16 ms for Tensor::contiguous(). For float and rows <= 16 (kernels up
// to 4x4), 16 columns at a time go through a masked register transpose (rows of R*S values out).
template <typename T>
void batched_transpose(int64_t batch, int64_t rows, int64_t cols, const T* src, T* dst, int num_threads) {
  const int64_t m = rows * cols;
  const int nt = threads_for_work(batch * m, std::max(num_threads, 1));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t b = 0; b < batch; ++b) {
    const T* s = src + b * m;
    T* d = dst + b * m;
    int64_t j0 = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (rows <= 16) j0 = transpose_short_rows(rows, cols, s, d);
    }
#endif
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = j0; j < cols; ++j) d[j * rows + i] = s[i * cols + j];
  }
}

template void batched_transpose<float>(int64_t, int64_t, int64_t, const float*, float*, int);
template void batched_transpose<double>(int64_t, int64_t, int64_t, const double*, double*, int);

}  // namespace cpu
}  // namespace fastconv
