// Naive reference convolution for the kernel tests, deliberately written independently of csrc/cpu and of
// csrc/common's index helpers: it materialises the padded input (zeros / reflect / replicate / circular) and
// then runs plain loops, accumulating in double. All tensors are dense NCHW; the weight is (K, C/groups, R, S).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace fastconv_test {

enum class RefPad { Zeros, Reflect, Replicate, Circular };

struct RefConv {
  int64_t N, C, H, W, K, R, S;
  int64_t sh = 1, sw = 1;
  int64_t pt = 0, pb = 0, pl = 0, pr = 0;
  int64_t dh = 1, dw = 1;
  int64_t groups = 1;
  RefPad pad = RefPad::Zeros;
  int64_t OH = -1, OW = -1;  // < 0: the formula's size; smaller values keep the leading rows/columns

  int64_t Hp() const { return H + pt + pb; }
  int64_t Wp() const { return W + pl + pr; }
  int64_t formula_oh() const { return (Hp() - dh * (R - 1) - 1) / sh + 1; }
  int64_t formula_ow() const { return (Wp() - dw * (S - 1) - 1) / sw + 1; }
  int64_t oh() const { return OH >= 0 ? OH : formula_oh(); }
  int64_t ow() const { return OW >= 0 ? OW : formula_ow(); }
};

// Source coordinate in [0, n) of padded coordinate q (q in [-lo, n + hi)), or -1 for a zero.
// Reflect bounces off the edges without repeating them (torch's 'reflect'); circular wraps around.
inline int64_t ref_source(int64_t q, int64_t n, RefPad pad) {
  if (q >= 0 && q < n) return q;
  switch (pad) {
    case RefPad::Zeros:
      return -1;
    case RefPad::Replicate:
      return q < 0 ? 0 : n - 1;
    case RefPad::Circular:
      return ((q % n) + n) % n;
    case RefPad::Reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      int64_t m = ((q % period) + period) % period;
      return m < n ? m : period - m;
    }
  }
  std::abort();
}

// For every padded position (i, j), the flat source offset h * W + w in the unpadded plane, or -1.
inline std::vector<int64_t> ref_pad_map(const RefConv& p) {
  std::vector<int64_t> map(p.Hp() * p.Wp());
  for (int64_t i = 0; i < p.Hp(); ++i)
    for (int64_t j = 0; j < p.Wp(); ++j) {
      const int64_t h = ref_source(i - p.pt, p.H, p.pad), w = ref_source(j - p.pl, p.W, p.pad);
      map[i * p.Wp() + j] = (h < 0 || w < 0) ? -1 : h * p.W + w;
    }
  return map;
}

// The padded copy of x: (N, C, Hp, Wp).
template <typename T>
std::vector<double> ref_pad_input(const RefConv& p, const std::vector<T>& x) {
  const auto map = ref_pad_map(p);
  const int64_t plane = p.Hp() * p.Wp();
  std::vector<double> xp(p.N * p.C * plane, 0.0);
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t q = 0; q < plane; ++q)
      if (map[q] >= 0) xp[nc * plane + q] = x[nc * p.H * p.W + map[q]];
  return xp;
}

template <typename T>
std::vector<T> ref_forward(const RefConv& p, const std::vector<T>& x, const std::vector<T>& w, const T* bias) {
  const auto xp = ref_pad_input(p, x);
  const int64_t OH = p.oh(), OW = p.ow(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  std::vector<T> y(p.N * p.K * OH * OW);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bias ? bias[k] : 0.0;
          const int64_t g = k / Kg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t i = oh * p.sh + r * p.dh, j = ow * p.sw + s * p.dw;
                acc += double(w[((k * Cg + c) * p.R + r) * p.S + s]) *
                       xp[((n * p.C + g * Cg + c) * p.Hp() + i) * p.Wp() + j];
              }
          y[((n * p.K + k) * OH + oh) * OW + ow] = T(acc);
        }
  return y;
}

// Gradient w.r.t. x: scatter into the padded plane, then fold every padded position onto its source.
template <typename T>
std::vector<T> ref_backward_input(const RefConv& p, const std::vector<T>& gy, const std::vector<T>& w) {
  const int64_t OH = p.oh(), OW = p.ow(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t plane = p.Hp() * p.Wp();
  std::vector<double> gxp(p.N * p.C * plane, 0.0);
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const double g_out = gy[((n * p.K + k) * OH + oh) * OW + ow];
          const int64_t g = k / Kg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t i = oh * p.sh + r * p.dh, j = ow * p.sw + s * p.dw;
                gxp[((n * p.C + g * Cg + c) * p.Hp() + i) * p.Wp() + j] +=
                    g_out * double(w[((k * Cg + c) * p.R + r) * p.S + s]);
              }
        }
  const auto map = ref_pad_map(p);
  std::vector<double> gx(p.N * p.C * p.H * p.W, 0.0);
  for (int64_t nc = 0; nc < p.N * p.C; ++nc)
    for (int64_t q = 0; q < plane; ++q)
      if (map[q] >= 0) gx[nc * p.H * p.W + map[q]] += gxp[nc * plane + q];
  return std::vector<T>(gx.begin(), gx.end());
}

template <typename T>
std::vector<T> ref_backward_weight(const RefConv& p, const std::vector<T>& x, const std::vector<T>& gy) {
  const auto xp = ref_pad_input(p, x);
  const int64_t OH = p.oh(), OW = p.ow(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  std::vector<T> gw(p.K * Cg * p.R * p.S);
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t r = 0; r < p.R; ++r)
        for (int64_t s = 0; s < p.S; ++s) {
          double acc = 0.0;
          const int64_t g = k / Kg;
          for (int64_t n = 0; n < p.N; ++n)
            for (int64_t oh = 0; oh < OH; ++oh)
              for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t i = oh * p.sh + r * p.dh, j = ow * p.sw + s * p.dw;
                acc += double(gy[((n * p.K + k) * OH + oh) * OW + ow]) *
                       xp[((n * p.C + g * Cg + c) * p.Hp() + i) * p.Wp() + j];
              }
          gw[((k * Cg + c) * p.R + r) * p.S + s] = T(acc);
        }
  return gw;
}

template <typename T>
std::vector<T> ref_backward_bias(const RefConv& p, const std::vector<T>& gy) {
  const int64_t OH = p.oh(), OW = p.ow();
  std::vector<T> gb(p.K);
  for (int64_t k = 0; k < p.K; ++k) {
    double acc = 0.0;
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t q = 0; q < OH * OW; ++q) acc += gy[(n * p.K + k) * OH * OW + q];
    gb[k] = T(acc);
  }
  return gb;
}

}  // namespace fastconv_test
