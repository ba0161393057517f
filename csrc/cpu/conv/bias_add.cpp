#include "bias_add.h"

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"

namespace fastconv {
namespace cpu {

template <typename T>
void bias_add(int64_t N, int64_t C, int64_t hw, Layout layout, const T* bias, T* y, int requested_threads) {
  const int num_threads = threads_for_work(N * C * hw, requested_threads);
  if (layout == Layout::NCHW) {
    // One (n, c) plane per iteration: a contiguous run of hw elements sharing one bias value.
    const int64_t planes = N * C;
#pragma omp parallel num_threads(num_threads)
    {
      DenormalGuard guard;
#pragma omp for schedule(static)
      for (int64_t plane = 0; plane < planes; ++plane) {
        const T b = bias[plane % C];
        T* row = y + plane * hw;
#pragma omp simd
        for (int64_t i = 0; i < hw; ++i) row[i] += b;
      }
    }
  } else {
    // NHWC: every pixel is a contiguous run of C channels; add the whole bias vector to it.
    const int64_t pixels = N * hw;
#pragma omp parallel num_threads(num_threads)
    {
      DenormalGuard guard;
#pragma omp for schedule(static)
      for (int64_t px = 0; px < pixels; ++px) {
        T* row = y + px * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) row[c] += bias[c];
      }
    }
  }
}

template void bias_add<float>(int64_t, int64_t, int64_t, Layout, const float*, float*, int);
template void bias_add<double>(int64_t, int64_t, int64_t, Layout, const double*, double*, int);

}  // namespace cpu
}  // namespace fastconv
