// The convolution kernels when OpenMP starts a smaller team than they ask for (issue 13). A kernel's
// `num_threads(n)` is only an upper bound: OMP_THREAD_LIMIT, OMP_DYNAMIC or an enclosing parallel region can
// give it fewer threads, down to one, and work split by the requested count instead of the team's size
// crashed (null per-thread buffers), or left parts of the result unwritten.
//
// Every pass (forward, input / weight / bias gradient, NCHW and NHWC, float and double) and the threaded
// GEMM ask for 4 (and 3) threads with the serial threshold at 0, and are compared with the reference:
//   - called normally: the team OpenMP grants here (ctest also runs this executable under OMP_THREAD_LIMIT=1,
//     OMP_THREAD_LIMIT=2 and OMP_DYNAMIC=true, see CMakeLists.txt: those are read at start-up);
//   - called from inside a parallel region with one active level allowed: every kernel team has 1 thread.
// Outputs are pre-filled with NaN, so a part a kernel leaves unwritten fails.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "cpu/conv/conv_kernels.h"
#include "cpu/gemm/gemm.h"
#include "conv_test_params.h"
#include "reference_conv.h"
#include "test_util.h"

using fastconv::ConvParams;
using fastconv::Layout;
using fastconv_test::RefConv;
using fastconv_test::to_params;
using fastconv_test::to_nchw;
using fastconv_test::to_nhwc;

namespace {

// Threads in the team a region asking for n gets (here and now).
int granted_team(int n) {
  int got = 1;
#pragma omp parallel num_threads(n)
  {
#pragma omp single
    got = fastconv::team_size();
  }
  return got;
}

// Runs fn directly, or (nested) from one thread of a 2-thread region with nesting disabled, so that every
// parallel region fn opens gets a team of one whatever it asks for.
void run(bool nested, const std::function<void()>& fn) {
  if (!nested) return fn();
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    fn();
  }
}

RefConv make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S, int64_t stride,
             int64_t pad, int64_t groups) {
  RefConv c{N, C, H, W, K, R, S};
  c.sh = c.sw = stride;
  c.pt = c.pb = c.pl = c.pr = pad;
  c.groups = groups;
  return c;
}


template <typename T>
std::vector<T> nans(size_t n) {
  return std::vector<T>(n, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
void check_conv(const RefConv& c, bool nested, int threads, uint64_t seed) {
  const double tol = sizeof(T) == 4 ? 1e-4 : 1e-10;
  const int64_t OH = c.oh(), OW = c.ow(), Cg = c.C / c.groups;
  const auto x = fastconv_test::random_vector<T>(c.N * c.C * c.H * c.W, seed);
  const auto w = fastconv_test::random_vector<T>(c.K * Cg * c.R * c.S, seed + 1);
  const auto b = fastconv_test::random_vector<T>(c.K, seed + 2);
  const auto gy = fastconv_test::random_vector<T>(c.N * c.K * OH * OW, seed + 3);
  const auto y_ref = fastconv_test::ref_forward(c, x, w, b.data());
  const auto gx_ref = fastconv_test::ref_backward_input(c, gy, w);
  const auto gw_ref = fastconv_test::ref_backward_weight(c, x, gy);
  const auto gb_ref = fastconv_test::ref_backward_bias(c, gy);
  for (Layout layout : {Layout::NCHW, Layout::NHWC}) {
    const bool nhwc = layout == Layout::NHWC;
    const auto xl = nhwc ? to_nhwc(x, c.N, c.C, c.H, c.W) : x;
    const auto gyl = nhwc ? to_nhwc(gy, c.N, c.K, OH, OW) : gy;
    const ConvParams p = to_params(c, layout, threads);
    char what[256];
    std::snprintf(what, sizeof what,
                  "N=%" PRId64 " C=%" PRId64 " %" PRId64 "x%" PRId64 " K=%" PRId64 " %" PRId64 "x%" PRId64
                  " stride=%" PRId64 " groups=%" PRId64 " %s %s threads=%d%s",
                  c.N, c.C, c.H, c.W, c.K, c.R, c.S, c.sh, c.groups, nhwc ? "NHWC" : "NCHW",
                  sizeof(T) == 4 ? "float" : "double", threads, nested ? " nested" : "");
    auto y = nans<T>(y_ref.size());
    auto gx = nans<T>(gx_ref.size());
    auto gw = nans<T>(gw_ref.size());
    auto gb = nans<T>(gb_ref.size());
    run(nested, [&] { fastconv::cpu::conv_forward<T>(p, xl.data(), w.data(), b.data(), y.data()); });
    run(nested, [&] { fastconv::cpu::conv_backward_input<T>(p, gyl.data(), w.data(), gx.data()); });
    run(nested, [&] { fastconv::cpu::conv_backward_weight<T>(p, xl.data(), gyl.data(), gw.data()); });
    run(nested, [&] { fastconv::cpu::conv_backward_bias<T>(p, gyl.data(), gb.data()); });
    double e = fastconv_test::max_rel_error(nhwc ? to_nchw(y, c.N, c.K, OH, OW) : y, y_ref);
    FC_CHECK(e <= tol, "conv_forward rel err %.3g: %s", e, what);
    e = fastconv_test::max_rel_error(nhwc ? to_nchw(gx, c.N, c.C, c.H, c.W) : gx, gx_ref);
    FC_CHECK(e <= tol, "conv_backward_input rel err %.3g: %s", e, what);
    e = fastconv_test::max_rel_error(gw, gw_ref);
    FC_CHECK(e <= tol, "conv_backward_weight rel err %.3g: %s", e, what);
    e = fastconv_test::max_rel_error(gb, gb_ref);
    FC_CHECK(e <= tol, "conv_backward_bias rel err %.3g: %s", e, what);
  }
}

// gemm_parallel splits C by hand among the team: C = A x B for both split directions.
template <typename T>
void check_gemm(int64_t M, int64_t N, int64_t K, bool nested, int threads, uint64_t seed) {
  const auto A = fastconv_test::random_vector<T>(M * K, seed), B = fastconv_test::random_vector<T>(K * N, seed + 1);
  std::vector<T> ref(M * N);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += double(A[i * K + k]) * double(B[k * N + j]);
      ref[i * N + j] = T(s);
    }
  auto C = nans<T>(M * N);
  fastconv::cpu::GemmArgs<T> g;
  g.M = M, g.N = N, g.K = K;
  g.A = A.data(), g.rsA = K, g.csA = 1;
  g.B = B.data(), g.rsB = N, g.csB = 1;
  g.C = C.data(), g.rsC = N, g.csC = 1;
  run(nested, [&] { fastconv::cpu::gemm_parallel(g, threads); });
  const double e = fastconv_test::max_rel_error(C, ref);
  FC_CHECK(e <= (sizeof(T) == 4 ? 1e-5 : 1e-12),
           "gemm_parallel %" PRId64 "x%" PRId64 "x%" PRId64 " rel err %.3g, threads=%d%s", M, N, K, e, threads,
           nested ? " nested" : "");
}

}  // namespace

int main() {
  const int64_t saved_min_work = fastconv::set_min_parallel_work(0);  // thread even these small shapes
  const char* limit = std::getenv("OMP_THREAD_LIMIT");
  const char* dynamic = std::getenv("OMP_DYNAMIC");
  const int granted = granted_team(4);
  std::printf("test_omp_team: OMP_THREAD_LIMIT=%s OMP_DYNAMIC=%s, a region asking for 4 threads gets %d\n",
              limit ? limit : "(unset)", dynamic ? dynamic : "(unset)", granted);
  if (limit && std::atoi(limit) > 0)  // the premise of this run
    FC_CHECK(granted <= std::atoi(limit), "OMP_THREAD_LIMIT=%s but a team of %d started", limit, granted);

  // Each case reaches hand-split work: weight-gradient buffers per thread (many images), the threaded GEMM
  // and input-channel slices (one image), the NHWC bias gradient's channel blocks (K = 40: 3 blocks of 16),
  // the direct small-channel kernels (C = 1), groups and depthwise.
  const std::vector<RefConv> cases = {
      make(8, 8, 9, 10, 12, 3, 3, 1, 1, 1),  make(1, 16, 12, 11, 40, 3, 3, 1, 1, 1),
      make(2, 8, 13, 12, 12, 3, 3, 2, 1, 2), make(3, 1, 12, 20, 8, 3, 3, 1, 1, 1),
      make(3, 16, 11, 10, 16, 3, 3, 1, 1, 16), make(1, 16, 8, 9, 24, 1, 1, 1, 0, 1),
  };
#ifdef _OPENMP
  omp_set_max_active_levels(1);  // the nested mode: an enclosing region leaves every kernel one thread
  FC_CHECK([] {
    int inner = 0;
    run(true, [&] { inner = granted_team(4); });
    return inner == 1;
  }(), "a region nested in an active one got more than one thread");
#endif  // (without OpenMP both modes run on the calling thread)
  uint64_t seed = 1;
  for (bool nested : {false, true}) {
    for (int threads : {4, 3}) {
      for (const RefConv& c : cases) {
        check_conv<float>(c, nested, threads, seed);
        check_conv<double>(c, nested, threads, seed + 5);
        seed += 10;
      }
      check_gemm<float>(37, 300, 20, nested, threads, seed);   // split along N
      check_gemm<double>(300, 37, 20, nested, threads, seed);  // split along M
    }
  }
  fastconv::set_min_parallel_work(saved_min_work);
  return fastconv_test::report("test_omp_team");
}
