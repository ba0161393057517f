// Compares fastconv's CPU pooling kernels with the naive reference (reference_pool.h) on random data, for float
// and double, NCHW and NHWC, and 1 and 2 OpenMP threads (the parallel threshold is lowered so the threaded
// paths run on these small shapes), over hand-picked edge cases plus a seeded random sample of the grid:
//   pool_kernels.h:          max_pool_forward, pool_scatter (accumulate and assign), pool_gather,
//                            avg_pool_forward, avg_pool_backward;
//   adaptive_pool_kernels.h: adaptive_{avg,max}_pool_{forward,backward}, adaptive_max_pool_gather.
// Max pooling must match exactly (values and indices: torch's tie / NaN / empty-window rules); sums within a
// tolerance. Index kernels get indices in random order with duplicates, index -1, and out-of-range indices
// (which must be reported, not followed). Outputs are pre-filled with NaN (indices with a sentinel), so a
// kernel that accumulates into or skips part of its output fails, and every buffer is exactly sized, so the
// AddressSanitizer build catches an out-of-bounds access. Exit code is non-zero on any mismatch.
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "common/pool_params.h"
#include "common/adaptive_pool_params.h"
#include "cpu/pool/adaptive_pool_kernels.h"
#include "cpu/pool/pool_kernels.h"
#include "reference_pool.h"
#include "test_util.h"

using fastconv::AdaptivePoolParams;
using fastconv::Layout;
using fastconv::PoolParams;
using fastconv::cpu::IndexCheck;
using fastconv_test::RefAdaptive;
using fastconv_test::RefPool;

using fastconv_test::to_nchw;
using fastconv_test::to_nhwc;

namespace {

// ---- exactly sized buffers, optionally 64-byte aligned (the NHWC streaming-store paths need that) ----
template <typename T>
struct MaybeAligned {
  using value_type = T;
  bool aligned = false;
  MaybeAligned() = default;
  explicit MaybeAligned(bool a) : aligned(a) {}
  template <typename U>
  MaybeAligned(const MaybeAligned<U>& o) : aligned(o.aligned) {}
  T* allocate(size_t n) {
    return static_cast<T*>(aligned ? ::operator new(n * sizeof(T), std::align_val_t(64)) : ::operator new(n * sizeof(T)));
  }
  void deallocate(T* q, size_t) {
    if (aligned)
      ::operator delete(q, std::align_val_t(64));
    else
      ::operator delete(q);
  }
  template <typename U>
  bool operator==(const MaybeAligned<U>& o) const { return aligned == o.aligned; }
};
template <typename T>
using Buf = std::vector<T, MaybeAligned<T>>;

template <typename T>
Buf<T> filled(size_t n, T value, bool aligned) {
  return Buf<T>(n, value, MaybeAligned<T>(aligned));
}

constexpr int64_t kIndexSentinel = std::numeric_limits<int64_t>::min() + 12345;

// The layout's copy of an NCHW tensor, in an exactly sized buffer.
template <typename T>
Buf<T> in_layout(const std::vector<T>& a, bool nhwc, int64_t N, int64_t C, int64_t H, int64_t W, bool aligned) {
  const std::vector<T> b = nhwc ? to_nhwc(a, N, C, H, W) : a;
  Buf<T> out(b.begin(), b.end(), MaybeAligned<T>(aligned));
  return out;
}
// A kernel's output in the layout, back in NCHW.
template <typename T>
std::vector<T> from_layout(const Buf<T>& a, bool nhwc, int64_t N, int64_t C, int64_t H, int64_t W) {
  return nhwc ? to_nchw(a, N, C, H, W) : std::vector<T>(a.begin(), a.end());
}

// Random input of one of several kinds (never all zero): 0 uniform in [-1, 1); 1 four levels (ties everywhere);
// 2 four levels plus NaN, -inf and +inf; 3 mostly -inf with some NaN (windows full of -inf).
template <typename T>
std::vector<T> make_input(size_t n, uint64_t seed, int kind) {
  std::vector<T> v = fastconv_test::random_vector<T>(n, seed);
  if (kind == 0) return v;
  std::mt19937_64 gen(seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_int_distribution<int> pct(0, 99);
  const T levels[4] = {T(-1), T(-0.5), T(0.25), T(0.75)};
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  for (auto& x : v) {
    const int r = pct(gen);
    if (kind == 1) {
      x = levels[r % 4];
    } else if (kind == 2) {
      x = r < 8 ? nan : r < 12 ? -inf : r < 14 ? inf : levels[r % 4];
    } else {
      x = r < 70 ? -inf : r < 76 ? nan : levels[r % 4];
    }
  }
  return v;
}

const char* kind_name(int kind) {
  static const char* names[] = {"uniform", "ties", "ties+nan+inf", "mostly-inf+nan"};
  return names[kind];
}

std::string describe(const RefPool& r) {
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "N=%" PRId64 " C=%" PRId64 " H=%" PRId64 " W=%" PRId64 " k=(%" PRId64 ",%" PRId64 ") s=(%" PRId64
                ",%" PRId64 ") p=(%" PRId64 ",%" PRId64 ") d=(%" PRId64 ",%" PRId64
                ") ceil=%d count_include_pad=%d divisor_override=%" PRId64 " out=(%" PRId64 ",%" PRId64 ")",
                r.N, r.C, r.H, r.W, r.kh, r.kw, r.sh, r.sw, r.ph, r.pw, r.dh, r.dw, int(r.ceil_mode),
                int(r.count_include_pad), r.divisor_override, r.OH, r.OW);
  return buf;
}

std::string describe(const RefAdaptive& r) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "adaptive N=%" PRId64 " C=%" PRId64 " H=%" PRId64 " W=%" PRId64 " out=(%" PRId64 ",%" PRId64 ")",
                r.N, r.C, r.H, r.W, r.OH, r.OW);
  return buf;
}

std::string coords(int64_t e, int64_t C, int64_t H, int64_t W) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "(n=%" PRId64 ",c=%" PRId64 ",h=%" PRId64 ",w=%" PRId64 ")", e / (C * H * W),
                (e / (H * W)) % C, (e / W) % H, e % W);
  return buf;
}

// Shape of a compared (NCHW) tensor, for messages.
struct Dims {
  int64_t C, H, W;
};

template <typename T>
bool same_value(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

// Exact comparison (NaN equals NaN); reports the first mismatch and the count.
template <typename T>
void check_exact(const std::vector<T>& got, const std::vector<T>& ref, Dims d, const char* kernel, const std::string& what) {
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < ref.size(); ++i)
    if (!same_value(got[i], ref[i]) && bad++ == 0) first = static_cast<int64_t>(i);
  FC_CHECK(bad == 0, "%s: %" PRId64 " mismatches, first at %s: expected %.9g got %.9g; %s", kernel, bad,
           coords(first, d.C, d.H, d.W).c_str(), bad ? double(ref[first]) : 0.0, bad ? double(got[first]) : 0.0,
           what.c_str());
}

void check_indices(const std::vector<int64_t>& got, const std::vector<int64_t>& ref, Dims d, const char* kernel,
                   const std::string& what) {
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < ref.size(); ++i)
    if (got[i] != ref[i] && bad++ == 0) first = static_cast<int64_t>(i);
  FC_CHECK(bad == 0, "%s: %" PRId64 " index mismatches, first at %s: expected %" PRId64 " got %" PRId64 "; %s", kernel,
           bad, coords(first, d.C, d.H, d.W).c_str(), bad ? ref[first] : 0, bad ? got[first] : 0, what.c_str());
}

// Relative error (to the reference's largest magnitude) within tol; tracks the worst error per kernel.
template <typename T>
void check_close(const std::vector<T>& got, const std::vector<T>& ref, Dims d, double tol, double& worst,
                 const char* kernel, const std::string& what) {
  double scale = 1e-30, err = 0.0;
  int64_t at = -1;
  for (size_t i = 0; i < ref.size(); ++i) scale = std::max(scale, std::abs(double(ref[i])));
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::abs(double(got[i]) - double(ref[i]));
    if (!(e <= err)) {  // also catches NaN
      err = std::isnan(e) ? INFINITY : e;
      at = static_cast<int64_t>(i);
    }
  }
  const double rel = err / scale;
  worst = std::max(worst, rel);
  FC_CHECK(rel <= tol, "%s: rel err %.3g at %s: expected %.9g got %.9g; %s", kernel, rel,
           coords(at, d.C, d.H, d.W).c_str(), at >= 0 ? double(ref[at]) : 0.0, at >= 0 ? double(got[at]) : 0.0,
           what.c_str());
}

// Scatter-assign with duplicate indices: an element nobody aims at is 0, one aimed at once gets that value,
// one aimed at several times gets one of their values (which one is unspecified, as in torch's max_unpool).
template <typename T>
void check_assign(const std::vector<T>& got, const std::vector<T>& ref, const std::vector<int>& writers,
                  const std::vector<T>& g, const std::vector<int64_t>& ind, int64_t in_plane, int64_t out_plane,
                  Dims d, const char* kernel, const std::string& what) {
  int64_t bad = 0, first = -1;
  for (size_t e = 0; e < ref.size(); ++e) {
    bool ok = same_value(got[e], ref[e]);
    if (!ok && writers[e] > 1) {
      const int64_t pl = static_cast<int64_t>(e) / in_plane, i = static_cast<int64_t>(e) % in_plane;
      for (int64_t o = 0; o < out_plane && !ok; ++o)
        ok = ind[pl * out_plane + o] == i && same_value(got[e], g[pl * out_plane + o]);
    }
    if (!ok && bad++ == 0) first = static_cast<int64_t>(e);
  }
  FC_CHECK(bad == 0, "%s: %" PRId64 " mismatches, first at %s: expected %.9g (%d writers) got %.9g; %s", kernel, bad,
           coords(first, d.C, d.H, d.W).c_str(), bad ? double(ref[first]) : 0.0, bad ? writers[first] : 0,
           bad ? double(got[first]) : 0.0, what.c_str());
}

void check_index_result(const IndexCheck& r, bool want_ok, int64_t want_value, const char* kernel,
                        const std::string& what) {
  if (want_ok)
    FC_CHECK(r.ok, "%s: reported bad index %" PRId64 " where all are valid; %s", kernel, r.value, what.c_str());
  else
    FC_CHECK(!r.ok && r.value == want_value,
             "%s: expected ok=false value=%" PRId64 ", got ok=%d value=%" PRId64 "; %s", kernel, want_value, int(r.ok),
             r.value, what.c_str());
}

// Random plane positions for n entries: uniform in [0, in_plane) (duplicates and any order), and with
// minus_one, about 1 in 8 entries (and at least one) set to -1.
std::vector<int64_t> random_indices(size_t n, int64_t in_plane, bool minus_one, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int64_t> pos(0, in_plane - 1);
  std::uniform_int_distribution<int> eighth(0, 7);
  std::vector<int64_t> v(n);
  for (auto& i : v) i = (minus_one && eighth(gen) == 0) ? -1 : pos(gen);
  if (minus_one && n > 0) v[std::uniform_int_distribution<size_t>(0, n - 1)(gen)] = -1;
  return v;
}

// Out-of-range values that an index kernel must report (and not follow).
int64_t bad_index_value(int which, int64_t in_plane) {
  switch (which % 6) {
    case 0: return in_plane;
    case 1: return in_plane + 3;
    case 2: return -2;
    case 3: return std::numeric_limits<int64_t>::min();
    case 4: return std::numeric_limits<int64_t>::max();
    default: return int64_t(1) << 40;
  }
}

enum Kernel {
  kMaxFwd, kMaxBwd, kMaxGather, kScatterAdd, kScatterSet, kGather, kAvgFwd, kAvgBwd,
  kAdAvgFwd, kAdAvgBwd, kAdMaxFwd, kAdMaxBwd, kAdGather, kMaxBwdWindow, kNumKernels
};
const char* const kKernelNames[kNumKernels] = {
    "max_pool_forward", "pool_scatter(add, fwd indices)", "pool_gather(fwd indices)", "pool_scatter(add, random)",
    "pool_scatter(assign, random)", "pool_gather(random)", "avg_pool_forward", "avg_pool_backward",
    "adaptive_avg_pool_forward", "adaptive_avg_pool_backward", "adaptive_max_pool_forward",
    "adaptive_max_pool_backward", "adaptive_max_pool_gather", "max_pool_backward_nhwc"};

struct Summary {
  int64_t runs[kNumKernels] = {0};
  double worst[2][kNumKernels] = {{0}};
  int64_t empty_windows = 0, nan_outputs = 0, bad_index_runs = 0;
};

struct PoolCase {
  RefPool r;
  int kind = 0;          // input kind for max pooling (make_input)
  bool aligned = false;  // 64-byte aligned buffers (streaming-store paths for large NHWC float outputs)
  bool float_only = false;
  int threads_mask = 3;  // bit 0: run with 1 thread, bit 1: with 2
};

PoolParams to_params(const RefPool& r, Layout layout, int threads) {
  PoolParams p;
  p.N = r.N; p.C = r.C; p.H = r.H; p.W = r.W;
  p.kh = r.kh; p.kw = r.kw; p.sh = r.sh; p.sw = r.sw; p.ph = r.ph; p.pw = r.pw; p.dh = r.dh; p.dw = r.dw;
  p.ceil_mode = r.ceil_mode;
  p.count_include_pad = r.count_include_pad;
  p.divisor_override = r.divisor_override;
  p.layout = layout;
  p.num_threads = threads;
  fastconv::set_pool_output_size(p);
  return p;
}

bool max_valid(const RefPool& r) { return fastconv::validate_pool(to_params(r, Layout::NCHW, 1), "max_pool2d", true).empty(); }
bool avg_valid(const RefPool& r) {
  return r.dh == 1 && r.dw == 1 && fastconv::validate_pool(to_params(r, Layout::NCHW, 1), "avg_pool2d", false).empty();
}

template <typename T>
void run_pool_case(const PoolCase& cs, uint64_t seed, Summary& sum) {
  constexpr int ti = sizeof(T) == 4 ? 0 : 1;
  const double tol = fastconv_test::default_tolerance<T>();
  RefPool r = cs.r;
  fastconv_test::ref_set_out_size(r);
  const PoolParams p0 = to_params(r, Layout::NCHW, 1);
  FC_CHECK(p0.OH == r.OH && p0.OW == r.OW, "set_pool_output_size gives (%" PRId64 ",%" PRId64 "), reference (%" PRId64
           ",%" PRId64 "): %s", p0.OH, p0.OW, r.OH, r.OW, describe(r).c_str());
  const bool do_max = max_valid(r), do_avg = avg_valid(r);
  const int64_t N = r.N, C = r.C, H = r.H, W = r.W, OH = r.OH, OW = r.OW;
  const int64_t planes = N * C, HW = H * W, OHW = OH * OW;
  const size_t nin = static_cast<size_t>(r.in_size()), nout = static_cast<size_t>(r.out_size());
  const Dims din{C, H, W}, dout{C, OH, OW};
  const bool al = cs.aligned;

  const auto x_max = make_input<T>(nin, seed, cs.kind);
  const auto x = fastconv_test::random_vector<T>(nin, seed + 1);
  const auto gy = fastconv_test::random_vector<T>(nout, seed + 2);
  const auto ind_rand = random_indices(nout, HW, true, seed + 3);    // with -1
  const auto ind_valid = random_indices(nout, HW, false, seed + 4);  // all in range
  std::vector<int64_t> ind_bad = ind_valid;
  const int64_t bad_value = bad_index_value(static_cast<int>(seed % 6), HW);
  if (nout > 0) ind_bad[static_cast<size_t>(seed * 7919 % nout)] = bad_value;

  std::vector<T> y_ref;
  std::vector<int64_t> ind_ref;
  std::vector<T> gx_max_ref, gather_max_ref;
  if (do_max) {
    fastconv_test::ref_max_pool(r, x_max, y_ref, ind_ref);
    gx_max_ref = fastconv_test::ref_scatter(planes, HW, OHW, gy, ind_ref, true);
    gather_max_ref = fastconv_test::ref_gather(planes, HW, OHW, x, ind_ref);
    for (size_t i = 0; i < nout; ++i) {
      sum.empty_windows += ind_ref[i] == fastconv::kEmptyWindowIndex;
      sum.nan_outputs += std::isnan(y_ref[i]);
    }
  }
  const auto scatter_add_ref = fastconv_test::ref_scatter(planes, HW, OHW, gy, ind_rand, true);
  std::vector<int> writers;
  const auto scatter_set_ref = fastconv_test::ref_scatter(planes, HW, OHW, gy, ind_valid, false, &writers);
  const auto gather_ref = fastconv_test::ref_gather(planes, HW, OHW, x, ind_rand);
  const auto avg_ref = do_avg ? fastconv_test::ref_avg_pool(r, x) : std::vector<T>();
  const auto avg_bwd_ref = do_avg ? fastconv_test::ref_avg_pool_backward(r, gy) : std::vector<T>();
  const T nan = std::numeric_limits<T>::quiet_NaN();

  for (Layout layout : {Layout::NCHW, Layout::NHWC}) {
    const bool nhwc = layout == Layout::NHWC;
    const auto xl_max = in_layout(x_max, nhwc, N, C, H, W, al);
    const auto xl = in_layout(x, nhwc, N, C, H, W, al);
    const auto gyl = in_layout(gy, nhwc, N, C, OH, OW, al);
    const auto il_rand = in_layout(ind_rand, nhwc, N, C, OH, OW, al);
    const auto il_valid = in_layout(ind_valid, nhwc, N, C, OH, OW, al);
    const auto il_bad = in_layout(ind_bad, nhwc, N, C, OH, OW, al);
    const auto il_ref = do_max ? in_layout(ind_ref, nhwc, N, C, OH, OW, al) : Buf<int64_t>();
    for (int threads : {1, 2}) {
      if (!(cs.threads_mask & threads)) continue;
      const PoolParams p = to_params(r, layout, threads);
      const std::string what = describe(r) + (nhwc ? " NHWC" : " NCHW") + " threads=" + std::to_string(threads) +
                               (sizeof(T) == 4 ? " float" : " double") + " input=" + kind_name(cs.kind);
      if (do_max) {
        auto y = filled<T>(nout, nan, al);
        auto ind = filled<int64_t>(nout, kIndexSentinel, al);
        fastconv::cpu::max_pool_forward<T>(p, xl_max.data(), y.data(), ind.data());
        check_exact(from_layout(y, nhwc, N, C, OH, OW), y_ref, dout, kKernelNames[kMaxFwd], what);
        check_indices(from_layout(ind, nhwc, N, C, OH, OW), ind_ref, dout, kKernelNames[kMaxFwd], what);
        auto yv = filled<T>(nout, nan, al);  // values only (no index tensor): the same values
        fastconv::cpu::max_pool_forward<T>(p, xl_max.data(), yv.data(), nullptr);
        check_exact(from_layout(yv, nhwc, N, C, OH, OW), y_ref, dout, kKernelNames[kMaxFwd], what + " values-only");
        ++sum.runs[kMaxFwd];

        auto gx = filled<T>(nin, nan, al);  // max pool backward: scatter-add at the forward's indices
        IndexCheck ic = fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_ref.data(), gx.data(), true);
        check_index_result(ic, true, 0, kKernelNames[kMaxBwd], what);
        check_close(from_layout(gx, nhwc, N, C, H, W), gx_max_ref, din, tol, sum.worst[ti][kMaxBwd],
                    kKernelNames[kMaxBwd], what);
        ++sum.runs[kMaxBwd];

        if (nhwc) {  // the window-side backward: when it takes the case, bit-identical to the scatter
          auto gw = filled<T>(nin, nan, al);
          const bool took = fastconv::cpu::max_pool_backward_nhwc<T>(p, gyl.data(), il_ref.data(), gw.data());
          const bool empty_window = std::find(ind_ref.begin(), ind_ref.end(), fastconv::kEmptyWindowIndex) != ind_ref.end();
          FC_CHECK(took == (fastconv::cpu::max_pool_backward_nhwc_applies(p) && !empty_window),
                   "%s: returned %d; %s", kKernelNames[kMaxBwdWindow], int(took), what.c_str());
          if (took)
            check_exact(from_layout(gw, nhwc, N, C, H, W), from_layout(gx, nhwc, N, C, H, W), din,
                        kKernelNames[kMaxBwdWindow], what);
          auto gr = filled<T>(nin, nan, al);  // indices from elsewhere: declined, or (by chance) exact
          if (fastconv::cpu::max_pool_backward_nhwc<T>(p, gyl.data(), il_rand.data(), gr.data())) {
            auto gs = filled<T>(nin, nan, al);
            fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_rand.data(), gs.data(), true);
            check_exact(from_layout(gr, nhwc, N, C, H, W), from_layout(gs, nhwc, N, C, H, W), din,
                        kKernelNames[kMaxBwdWindow], what + " random indices");
          }
          sum.runs[kMaxBwdWindow] += took;
        }

        auto yg = filled<T>(nout, nan, al);  // double backward: gather at the forward's indices
        ic = fastconv::cpu::pool_gather<T>(p, xl.data(), il_ref.data(), yg.data());
        check_index_result(ic, true, 0, kKernelNames[kMaxGather], what);
        check_exact(from_layout(yg, nhwc, N, C, OH, OW), gather_max_ref, dout, kKernelNames[kMaxGather], what);
        ++sum.runs[kMaxGather];
      }
      {  // scatter-add, random indices with duplicates and -1 (skipped)
        auto gx = filled<T>(nin, nan, al);
        const IndexCheck ic = fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_rand.data(), gx.data(), true);
        check_index_result(ic, true, 0, kKernelNames[kScatterAdd], what);
        check_close(from_layout(gx, nhwc, N, C, H, W), scatter_add_ref, din, tol, sum.worst[ti][kScatterAdd],
                    kKernelNames[kScatterAdd], what);
        ++sum.runs[kScatterAdd];
      }
      {  // scatter-assign (max_unpool), random valid indices with duplicates
        auto gx = filled<T>(nin, nan, al);
        const IndexCheck ic = fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_valid.data(), gx.data(), false);
        check_index_result(ic, true, 0, kKernelNames[kScatterSet], what);
        check_assign(from_layout(gx, nhwc, N, C, H, W), scatter_set_ref, writers, gy, ind_valid, HW, OHW, din,
                     kKernelNames[kScatterSet], what);
        ++sum.runs[kScatterSet];
      }
      {  // gather, random indices with duplicates and -1 (gathers 0)
        auto yg = filled<T>(nout, nan, al);
        const IndexCheck ic = fastconv::cpu::pool_gather<T>(p, xl.data(), il_rand.data(), yg.data());
        check_index_result(ic, true, 0, kKernelNames[kGather], what);
        check_exact(from_layout(yg, nhwc, N, C, OH, OW), gather_ref, dout, kKernelNames[kGather], what);
        ++sum.runs[kGather];
      }
      if (nout > 0) {  // invalid indices: reported, never followed (the buffers are exact: ASan sees any stray access)
        ++sum.bad_index_runs;
        auto gx = filled<T>(nin, nan, al);
        IndexCheck ic = fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_rand.data(), gx.data(), false);
        check_index_result(ic, false, fastconv::kEmptyWindowIndex, "pool_scatter(assign) with index -1", what);
        std::fill(gx.begin(), gx.end(), nan);
        ic = fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_bad.data(), gx.data(), false);
        check_index_result(ic, false, bad_value, "pool_scatter(assign) with an out-of-range index", what);
        std::fill(gx.begin(), gx.end(), nan);
        ic = fastconv::cpu::pool_scatter<T>(p, gyl.data(), il_bad.data(), gx.data(), true);
        check_index_result(ic, false, bad_value, "pool_scatter(add) with an out-of-range index", what);
        auto yg = filled<T>(nout, nan, al);
        ic = fastconv::cpu::pool_gather<T>(p, xl.data(), il_bad.data(), yg.data());
        check_index_result(ic, false, bad_value, "pool_gather with an out-of-range index", what);
      }
      if (do_avg) {
        auto y = filled<T>(nout, nan, al);
        fastconv::cpu::avg_pool_forward<T>(p, xl.data(), y.data());
        check_close(from_layout(y, nhwc, N, C, OH, OW), avg_ref, dout, tol, sum.worst[ti][kAvgFwd],
                    kKernelNames[kAvgFwd], what);
        ++sum.runs[kAvgFwd];
        auto gx = filled<T>(nin, nan, al);
        fastconv::cpu::avg_pool_backward<T>(p, gyl.data(), gx.data());
        check_close(from_layout(gx, nhwc, N, C, H, W), avg_bwd_ref, din, tol, sum.worst[ti][kAvgBwd],
                    kKernelNames[kAvgBwd], what);
        ++sum.runs[kAvgBwd];
      }
    }
  }
}

struct AdaptiveCase {
  RefAdaptive r;
  int kind = 0;
  int threads_mask = 3;  // as PoolCase
};

template <typename T>
void run_adaptive_case(const AdaptiveCase& cs, uint64_t seed, Summary& sum) {
  constexpr int ti = sizeof(T) == 4 ? 0 : 1;
  const double tol = fastconv_test::default_tolerance<T>();
  const RefAdaptive& r = cs.r;
  const int64_t N = r.N, C = r.C, H = r.H, W = r.W, OH = r.OH, OW = r.OW;
  const int64_t planes = N * C, HW = H * W, OHW = OH * OW;
  const size_t nin = static_cast<size_t>(r.in_size()), nout = static_cast<size_t>(r.out_size());
  const Dims din{C, H, W}, dout{C, OH, OW};

  const auto x_max = make_input<T>(nin, seed, cs.kind);
  const auto x = fastconv_test::random_vector<T>(nin, seed + 1);
  const auto gy = fastconv_test::random_vector<T>(nout, seed + 2);
  const auto ind_valid = random_indices(nout, HW, false, seed + 4);
  std::vector<int64_t> ind_bad = ind_valid, ind_minus_one = ind_valid;
  if (nout > 0) {
    ind_bad[static_cast<size_t>(seed * 7919 % nout)] = bad_index_value(static_cast<int>(seed % 6), HW);
    ind_minus_one[static_cast<size_t>(seed * 104729 % nout)] = -1;
  }
  std::vector<T> y_ref;
  std::vector<int64_t> ind_ref;
  fastconv_test::ref_adaptive_max(r, x_max, y_ref, ind_ref);
  for (size_t i = 0; i < nout; ++i) sum.nan_outputs += std::isnan(y_ref[i]);
  const auto gx_max_ref = fastconv_test::ref_scatter(planes, HW, OHW, gy, ind_ref, true);
  const auto gather_max_ref = fastconv_test::ref_gather(planes, HW, OHW, x, ind_ref);
  const auto scatter_rand_ref = fastconv_test::ref_scatter(planes, HW, OHW, gy, ind_valid, true);
  const auto gather_rand_ref = fastconv_test::ref_gather(planes, HW, OHW, x, ind_valid);
  const auto avg_ref = fastconv_test::ref_adaptive_avg(r, x);
  const auto avg_bwd_ref = fastconv_test::ref_adaptive_avg_backward(r, gy);
  const T nan = std::numeric_limits<T>::quiet_NaN();

  for (Layout layout : {Layout::NCHW, Layout::NHWC}) {
    const bool nhwc = layout == Layout::NHWC;
    const auto xl_max = in_layout(x_max, nhwc, N, C, H, W, false);
    const auto xl = in_layout(x, nhwc, N, C, H, W, false);
    const auto gyl = in_layout(gy, nhwc, N, C, OH, OW, false);
    const auto il_ref = in_layout(ind_ref, nhwc, N, C, OH, OW, false);
    const auto il_valid = in_layout(ind_valid, nhwc, N, C, OH, OW, false);
    const auto il_bad = in_layout(ind_bad, nhwc, N, C, OH, OW, false);
    const auto il_m1 = in_layout(ind_minus_one, nhwc, N, C, OH, OW, false);
    for (int threads : {1, 2}) {
      if (!(cs.threads_mask & threads)) continue;
      AdaptivePoolParams p;
      p.N = N; p.C = C; p.H = H; p.W = W; p.OH = OH; p.OW = OW;
      p.layout = layout;
      p.num_threads = threads;
      const std::string what = describe(r) + (nhwc ? " NHWC" : " NCHW") + " threads=" + std::to_string(threads) +
                               (sizeof(T) == 4 ? " float" : " double") + " input=" + kind_name(cs.kind);
      FC_CHECK(fastconv::validate_adaptive_pool(p, "adaptive_pool2d").empty(), "invalid adaptive case: %s", what.c_str());
      {
        auto y = filled<T>(nout, nan, false);
        fastconv::cpu::adaptive_avg_pool_forward<T>(p, xl.data(), y.data());
        check_close(from_layout(y, nhwc, N, C, OH, OW), avg_ref, dout, tol, sum.worst[ti][kAdAvgFwd],
                    kKernelNames[kAdAvgFwd], what);
        ++sum.runs[kAdAvgFwd];
        auto gx = filled<T>(nin, nan, false);
        fastconv::cpu::adaptive_avg_pool_backward<T>(p, gyl.data(), gx.data());
        check_close(from_layout(gx, nhwc, N, C, H, W), avg_bwd_ref, din, tol, sum.worst[ti][kAdAvgBwd],
                    kKernelNames[kAdAvgBwd], what);
        ++sum.runs[kAdAvgBwd];
      }
      {
        auto y = filled<T>(nout, nan, false);
        auto ind = filled<int64_t>(nout, kIndexSentinel, false);
        fastconv::cpu::adaptive_max_pool_forward<T>(p, xl_max.data(), y.data(), ind.data());
        check_exact(from_layout(y, nhwc, N, C, OH, OW), y_ref, dout, kKernelNames[kAdMaxFwd], what);
        check_indices(from_layout(ind, nhwc, N, C, OH, OW), ind_ref, dout, kKernelNames[kAdMaxFwd], what);
        ++sum.runs[kAdMaxFwd];
      }
      for (int which = 0; which < 2; ++which) {  // the forward's indices, then random ones with duplicates
        const auto& il = which == 0 ? il_ref : il_valid;
        auto gx = filled<T>(nin, nan, false);
        bool ok = fastconv::cpu::adaptive_max_pool_backward<T>(p, gyl.data(), il.data(), gx.data());
        FC_CHECK(ok, "adaptive_max_pool_backward: reported a bad index where all are valid; %s", what.c_str());
        check_close(from_layout(gx, nhwc, N, C, H, W), which == 0 ? gx_max_ref : scatter_rand_ref, din, tol,
                    sum.worst[ti][kAdMaxBwd], kKernelNames[kAdMaxBwd], what);
        ++sum.runs[kAdMaxBwd];
        auto yg = filled<T>(nout, nan, false);
        ok = fastconv::cpu::adaptive_max_pool_gather<T>(p, xl.data(), il.data(), yg.data());
        FC_CHECK(ok, "adaptive_max_pool_gather: reported a bad index where all are valid; %s", what.c_str());
        check_exact(from_layout(yg, nhwc, N, C, OH, OW), which == 0 ? gather_max_ref : gather_rand_ref, dout,
                    kKernelNames[kAdGather], what);
        ++sum.runs[kAdGather];
      }
      if (nout > 0) {  // out-of-range indices (and -1, invalid here): reported, never followed
        ++sum.bad_index_runs;
        for (const auto* il : {&il_bad, &il_m1}) {
          auto gx = filled<T>(nin, nan, false);
          FC_CHECK(!fastconv::cpu::adaptive_max_pool_backward<T>(p, gyl.data(), il->data(), gx.data()),
                   "adaptive_max_pool_backward: bad index %s not reported; %s", il == &il_bad ? "(out of range)" : "-1",
                   what.c_str());
          auto yg = filled<T>(nout, nan, false);
          FC_CHECK(!fastconv::cpu::adaptive_max_pool_gather<T>(p, xl.data(), il->data(), yg.data()),
                   "adaptive_max_pool_gather: bad index %s not reported; %s", il == &il_bad ? "(out of range)" : "-1",
                   what.c_str());
        }
      }
    }
  }
}

RefPool make(int64_t N, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph,
             int64_t pw, int64_t dh = 1, int64_t dw = 1, bool ceil_mode = false, bool count_include_pad = true,
             int64_t divisor_override = 0) {
  RefPool r;
  r.N = N; r.C = C; r.H = H; r.W = W;
  r.kh = kh; r.kw = kw; r.sh = sh; r.sw = sw; r.ph = ph; r.pw = pw; r.dh = dh; r.dw = dw;
  r.ceil_mode = ceil_mode;
  r.count_include_pad = count_include_pad;
  r.divisor_override = divisor_override;
  fastconv_test::ref_set_out_size(r);
  return r;
}

std::vector<PoolCase> hand_picked_pool_cases() {
  std::vector<PoolCase> v;
  auto add = [&](const RefPool& r, int kind = 2, bool aligned = false) { v.push_back({r, kind, aligned, aligned}); };
  add(make(2, 3, 8, 8, 2, 2, 2, 2, 0, 0));                          // the classic 2x2/2
  add(make(2, 3, 7, 9, 3, 3, 2, 2, 1, 1), 1);                       // 3x3/2 pad 1 (ResNet stem pool), ties
  add(make(1, 17, 6, 7, 3, 3, 1, 1, 1, 1), 0);                      // stride 1 'same', C % 16 != 0
  add(make(2, 70, 5, 6, 3, 2, 2, 1, 1, 1), 2);                      // non-square, NHWC 64 + 6 channels
  add(make(1, 64, 4, 5, 2, 3, 1, 2, 1, 1), 3);                      // C = 64 exactly, mostly -inf
  add(make(1, 130, 3, 4, 2, 2, 1, 1, 1, 0), 2);                     // 2 full 64-channel blocks + 2
  add(make(3, 1, 9, 11, 1, 3, 1, 3, 0, 1), 2);                      // 1x3 kernel, stride (1, 3)
  add(make(1, 3, 13, 5, 3, 1, 3, 1, 1, 0), 2);                      // 3x1 kernel, stride (3, 1)
  add(make(2, 3, 1, 13, 1, 3, 1, 2, 0, 1), 2);                      // 1-d (H == 1)
  add(make(1, 2, 1, 1, 1, 1, 1, 1, 0, 0), 0);                       // 1x1 identity
  add(make(0, 3, 5, 5, 2, 2, 2, 2, 0, 0), 0);                       // empty batch
  // dilation, and windows with no tap inside the input (only with dilation and a size-1 axis)
  add(make(2, 3, 9, 10, 3, 3, 1, 1, 1, 1, 2, 2), 2);
  add(make(1, 17, 8, 11, 3, 2, 2, 3, 1, 1, 2, 2, true), 1);
  add(make(2, 3, 1, 9, 2, 3, 1, 1, 1, 1, 2, 1), 2);                 // every row empty: -inf, index -1
  add(make(2, 5, 7, 1, 3, 2, 2, 1, 1, 1, 1, 2), 2);                 // every column empty
  add(make(1, 70, 1, 6, 2, 2, 2, 2, 1, 1, 2, 2, true), 2);          // both, ceil, NHWC tail channels
  add(make(1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2, 2), 0);                 // 1x1 input, the single window empty
  // ceil_mode: partial last windows, and the rule dropping a window that would start in the right padding
  add(make(1, 3, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, true), 2);
  add(make(2, 3, 9, 8, 2, 2, 2, 2, 0, 0, 1, 1, true), 2);
  add(make(1, 3, 5, 5, 2, 2, 2, 2, 1, 1, 1, 1, true), 2);           // ceil would give 4, the rule 3
  add(make(1, 17, 10, 11, 3, 3, 3, 3, 1, 0, 1, 1, true, false), 2);
  // avg: count_include_pad off / divisor_override with padding and ceil
  add(make(2, 3, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, true, false), 0);
  add(make(2, 3, 6, 7, 3, 2, 2, 2, 1, 1, 1, 1, true, true), 0);
  add(make(1, 17, 5, 7, 3, 3, 1, 2, 1, 1, 1, 1, false, true, 5), 0);
  add(make(1, 64, 4, 4, 2, 2, 2, 2, 1, 1, 1, 1, true, false, 3), 0);
  add(make(1, 70, 6, 5, 3, 3, 3, 3, 1, 1, 1, 1, true, false, 2), 0);
  // NCHW rows wide enough for the 16-output float blocks (edge and inside paths, stride 1 and 2), and for the
  // avg kernels' per-tap loops (output rows of at least 8)
  add(make(1, 3, 9, 70, 3, 3, 1, 1, 1, 1), 2);
  add(make(2, 2, 6, 75, 3, 3, 2, 2, 1, 1), 1);
  add(make(1, 2, 5, 69, 2, 2, 2, 2, 0, 0, 1, 1, true), 2);
  add(make(1, 2, 7, 80, 3, 3, 1, 2, 1, 1, 2, 2), 2);
  add(make(1, 2, 5, 48, 2, 3, 1, 1, 0, 1, 1, 2), 3);
  add(make(1, 3, 5, 40, 3, 3, 3, 3, 1, 1, 1, 1, true, false), 0);
  add(make(1, 3, 4, 40, 2, 3, 2, 3, 1, 1, 1, 1, false, true), 0);
  // stride 4 along W (M5's audio pooling, k4 s4; the float blocks read 64 columns): inside and edge blocks,
  // padding, a 5-wide kernel, dilation, ceil mode
  add(make(2, 3, 1, 150, 1, 4, 1, 4, 0, 0), 2);
  add(make(1, 2, 4, 133, 2, 5, 2, 4, 1, 2, 1, 1, true), 2);
  add(make(1, 2, 3, 141, 1, 3, 1, 4, 0, 1, 1, 2), 1);
  // a large NHWC float output in 64-byte aligned buffers: the streaming-store paths (outputs >= 4 MB; float only)
  add(make(1, 64, 130, 130, 3, 3, 1, 1, 1, 1), 2, true);
  return v;
}

// A seeded random sample of the grid (valid combinations, small enough to keep the test quick).
std::vector<PoolCase> random_pool_cases(int count, uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto pick = [&](std::initializer_list<int64_t> values) {
    return *(values.begin() + std::uniform_int_distribution<size_t>(0, values.size() - 1)(gen));
  };
  auto upto = [&](int64_t hi) { return std::uniform_int_distribution<int64_t>(0, hi)(gen); };
  std::vector<PoolCase> v;
  while (static_cast<int>(v.size()) < count) {
    RefPool r;
    r.N = pick({1, 1, 2, 3});
    r.C = pick({1, 3, 17, 64, 70});
    r.H = pick({1, 2, 3, 5, 8, 13});
    r.W = pick({1, 2, 3, 5, 8, 13, 24, 40});
    r.kh = pick({1, 2, 3});
    r.kw = pick({1, 2, 3});
    r.sh = pick({1, 2, 3});
    r.sw = pick({1, 2, 3});
    r.ph = upto(r.kh / 2);
    r.pw = upto(r.kw / 2);
    r.dh = pick({1, 1, 2});
    r.dw = pick({1, 1, 2});
    r.ceil_mode = pick({0, 1}) == 1;
    r.count_include_pad = pick({0, 1}) == 1;
    r.divisor_override = pick({0, 0, 0, 1, 3, 7});
    if (r.in_size() > 12000) continue;
    fastconv_test::ref_set_out_size(r);
    if (!max_valid(r)) continue;
    // One thread count per sampled case (alternating), to bound the number of small OpenMP regions: on a
    // loaded machine each can cost a scheduler time slice. The hand-picked cases run both.
    v.push_back({r, static_cast<int>(pick({0, 1, 2, 3})), false, false, v.size() % 2 ? 2 : 1});
  }
  return v;
}

AdaptiveCase ad(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, int kind = 2) {
  AdaptiveCase a;
  a.r.N = N; a.r.C = C; a.r.H = H; a.r.W = W; a.r.OH = OH; a.r.OW = OW;
  a.kind = kind;
  return a;
}

std::vector<AdaptiveCase> adaptive_cases(int random_count, uint64_t seed) {
  std::vector<AdaptiveCase> v = {
      ad(2, 3, 7, 7, 1, 1, 2),    // global, 49 values (3 float vectors + 1)
      ad(2, 17, 7, 7, 1, 1, 1),   // global, ties across the interleaved lanes
      ad(1, 3, 4, 4, 1, 1, 2),    // global, exactly 16 values
      ad(1, 5, 3, 3, 1, 1, 3),    // global, fewer values than lanes, mostly -inf
      ad(2, 70, 5, 9, 1, 1, 2),   // global NHWC tail channels
      ad(1, 3, 1, 1, 1, 1, 0),    // 1x1 -> 1x1
      ad(2, 3, 10, 9, 3, 4, 2),   // windows overlap (out does not divide in)
      ad(1, 17, 5, 6, 8, 9, 2),   // out > in: 1-wide windows, repeated
      ad(1, 3, 6, 6, 6, 6, 2),    // identity
      ad(2, 3, 1, 13, 1, 5, 2),   // 1-d
      ad(1, 300, 4, 3, 2, 2, 2),  // NHWC channel blocks of 256 + 44
      ad(1, 64, 9, 7, 2, 3, 3),
      ad(0, 3, 5, 5, 2, 2, 0),    // empty batch
  };
  std::mt19937_64 gen(seed);
  auto pick = [&](std::initializer_list<int64_t> values) {
    return *(values.begin() + std::uniform_int_distribution<size_t>(0, values.size() - 1)(gen));
  };
  for (int i = 0; i < random_count; ++i) {
    AdaptiveCase a = ad(pick({1, 2, 3}), pick({1, 3, 17, 64, 70}), pick({1, 2, 3, 5, 7, 10, 14}),
                        pick({1, 2, 4, 6, 9, 13}), 1, 1, static_cast<int>(pick({0, 1, 2, 3})));
    a.r.OH = std::uniform_int_distribution<int64_t>(1, a.r.H + 3)(gen);
    a.r.OW = std::uniform_int_distribution<int64_t>(1, a.r.W + 3)(gen);
    if (pick({0, 0, 0, 1}) == 1) a.r.OH = a.r.OW = 1;  // global now and then
    a.threads_mask = i % 2 ? 2 : 1;                    // one thread count per sampled case, as for pooling
    if (a.r.in_size() > 12000) {
      --i;
      continue;
    }
    v.push_back(a);
  }
  return v;
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  // Threaded paths on small shapes too; restored before exit.
  const int64_t saved_min_work = fastconv::set_min_parallel_work(1);
  Summary sum;

  auto cases = hand_picked_pool_cases();
  const auto sampled = random_pool_cases(160, 20261123);
  cases.insert(cases.end(), sampled.begin(), sampled.end());
  int invalid = 0;
  uint64_t seed = 1;
  for (const PoolCase& cs : cases) {
    if (!max_valid(cs.r) && !avg_valid(cs.r)) {  // a hand-picked case that breaks the rules is a bug in this test
      std::fprintf(stderr, "invalid test case: %s\n", describe(cs.r).c_str());
      ++invalid;
      continue;
    }
    run_pool_case<float>(cs, seed, sum);
    if (!cs.float_only) run_pool_case<double>(cs, seed + 5, sum);
    seed += 10;
  }
  FC_CHECK(invalid == 0, "%d invalid hand-picked cases", invalid);

  const auto acases = adaptive_cases(80, 20261124);
  for (const AdaptiveCase& cs : acases) {
    run_adaptive_case<float>(cs, seed, sum);
    run_adaptive_case<double>(cs, seed + 5, sum);
    seed += 10;
  }

  fastconv::set_min_parallel_work(saved_min_work);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("test_pool_kernels: %zu pooling shapes, %zu adaptive shapes, %.2f s\n", cases.size(), acases.size(), secs);
  std::printf("  reference outputs: %" PRId64 " empty max windows, %" PRId64 " NaN maxima; %" PRId64
              " bad-index passes\n", sum.empty_windows, sum.nan_outputs, sum.bad_index_runs);
  for (int k = 0; k < kNumKernels; ++k)
    std::printf("  %-32s %6" PRId64 " runs  max rel error float %.3g double %.3g\n", kKernelNames[k], sum.runs[k],
                sum.worst[0][k], sum.worst[1][k]);
  return fastconv_test::report("test_pool_kernels");
}
