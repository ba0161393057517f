// Tiny header-only helpers for the torch-free kernel tests (csrc/tests/test_*.cpp):
// seeded random fill, relative error, and a CHECK macro that counts failures instead of aborting.
// A test's main() ends with `return fastconv_test::report("name");` (non-zero exit on any failure).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace fastconv_test {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}

// Counts a check; prints the failing expression and a message, keeps going (so one run shows every mismatch).
#define FC_CHECK(cond, ...)                                                     \
  do {                                                                          \
    ++::fastconv_test::checks();                                                \
    if (!(cond)) {                                                              \
      ++::fastconv_test::failures();                                            \
      std::fprintf(stderr, "CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                        \
      std::fprintf(stderr, "\n");                                               \
    }                                                                           \
  } while (0)

// Whether to run case number `index`: every one, or with FASTCONV_TEST_SAMPLE=n every n-th (CI's valgrind run,
// 20-50x slower than native, takes a sample of the long case lists).
inline bool sampled(size_t index) {
  static const size_t every = [] {
    const char* s = std::getenv("FASTCONV_TEST_SAMPLE");
    const long n = s ? std::strtol(s, nullptr, 10) : 1;
    return size_t(n > 1 ? n : 1);
  }();
  return index % every == 0;
}

// Uniform values in [-1, 1), never all zero, deterministic for a given seed.
template <typename T>
void fill_random(std::vector<T>& v, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (auto& x : v) x = static_cast<T>(dist(gen));
}

template <typename T>
std::vector<T> random_vector(size_t n, uint64_t seed) {
  std::vector<T> v(n);
  fill_random(v, seed);
  return v;
}

// max |a - b| / max(max |b|, tiny): error relative to the reference's magnitude (robust to values near 0).
template <typename T>
double max_rel_error(const std::vector<T>& got, const std::vector<T>& ref) {
  if (got.size() != ref.size()) return INFINITY;
  double scale = 0.0, err = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(ref[i])));
    const double d = std::abs(static_cast<double>(got[i]) - static_cast<double>(ref[i]));
    if (!(d <= err)) err = d;  // also catches NaN
  }
  return err / std::max(scale, 1e-30);
}

// Default tolerance per type for results accumulated over a few hundred terms.
template <typename T>
constexpr double default_tolerance() {
  return sizeof(T) == 4 ? 2e-5 : 1e-12;
}

inline int report(const char* name) {
  std::printf("%s: %d checks, %d failures\n", name, checks(), failures());
  return failures() == 0 ? 0 : 1;
}

// NCHW <-> NHWC copies of a dense (N, C, H, W) tensor held in any vector-like container (values or indices).
template <typename V>
std::vector<typename V::value_type> to_nhwc(const V& a, int64_t N, int64_t C, int64_t H, int64_t W) {
  std::vector<typename V::value_type> b(a.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) b[((n * H + h) * W + w) * C + c] = a[((n * C + c) * H + h) * W + w];
  return b;
}
template <typename V>
std::vector<typename V::value_type> to_nchw(const V& a, int64_t N, int64_t C, int64_t H, int64_t W) {
  std::vector<typename V::value_type> b(a.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) b[((n * C + c) * H + h) * W + w] = a[((n * H + h) * W + w) * C + c];
  return b;
}

}  // namespace fastconv_test
