// Naive reference pooling for the kernel tests (test_pool_kernels.cpp), written independently of csrc/cpu and
// of csrc/common's window helpers: plain loops over every tap of every window, following torch's CPU kernels'
// rules. All tensors are dense NCHW (the test converts to and from NHWC); indices are flat positions h * W + w
// inside each (n, c) plane of the un-pooled side. Sums (avg pooling, scatter-add) accumulate in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace fastconv_test {

struct RefPool {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t kh = 1, kw = 1;
  int64_t sh = 1, sw = 1;
  int64_t ph = 0, pw = 0;
  int64_t dh = 1, dw = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;
  int64_t divisor_override = 0;  // 0: none
  int64_t OH = 0, OW = 0;        // set by ref_set_out_size

  int64_t in_size() const { return N * C * H * W; }
  int64_t out_size() const { return N * C * OH * OW; }
};

inline int64_t ref_floor_div(int64_t a, int64_t b) {  // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// torch's pooling_output_shape: (in + 2 pad - dil (k - 1) - 1) / stride + 1, rounded down (or up in ceil
// mode), and in ceil mode the last window has to start inside the input or the left padding.
inline int64_t ref_pool_out(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  int64_t out = (ceil_mode ? -ref_floor_div(-span, stride) : ref_floor_div(span, stride)) + 1;
  if (ceil_mode && (out - 1) * stride - pad >= in) --out;
  return out;
}

inline void ref_set_out_size(RefPool& p) {
  p.OH = ref_pool_out(p.H, p.kh, p.ph, p.sh, p.dh, p.ceil_mode);
  p.OW = ref_pool_out(p.W, p.kw, p.pw, p.sw, p.dw, p.ceil_mode);
}

// Max pooling: taps (oh sh - ph + i dh, ow sw - pw + j dw), scanned rows first. torch's rule: a tap is taken
// when it is greater than the running max or is NaN (so the first maximum and the last NaN win); the running
// max starts at -inf with the index of the first in-bounds tap. No tap in bounds: -inf and index -1.
template <typename T>
void ref_max_pool(const RefPool& p, const std::vector<T>& x, std::vector<T>& y, std::vector<int64_t>& ind) {
  y.assign(p.out_size(), T(0));
  ind.assign(p.out_size(), 0);
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        T m = -std::numeric_limits<T>::infinity();
        int64_t mi = -1;
        for (int64_t i = 0; i < p.kh; ++i) {
          const int64_t h = oh * p.sh - p.ph + i * p.dh;
          if (h < 0 || h >= p.H) continue;
          for (int64_t j = 0; j < p.kw; ++j) {
            const int64_t w = ow * p.sw - p.pw + j * p.dw;
            if (w < 0 || w >= p.W) continue;
            const T v = x[pl * p.H * p.W + h * p.W + w];
            if (mi < 0) mi = h * p.W + w;
            if (v > m || std::isnan(v)) {
              m = v;
              mi = h * p.W + w;
            }
          }
        }
        y[(pl * p.OH + oh) * p.OW + ow] = m;
        ind[(pl * p.OH + oh) * p.OW + ow] = mi;
      }
}

// Avg pooling window of output o along one axis: inputs [begin, end) and the divisor factor of
// count_include_pad (the window clipped to the padded input, before clipping to the input).
struct RefAvgWindow {
  int64_t begin, end, padded;
};
inline RefAvgWindow ref_avg_window(int64_t o, int64_t in, int64_t k, int64_t s, int64_t pad) {
  const int64_t b = o * s - pad;
  const int64_t e = std::min(b + k, in + pad);
  return {std::max<int64_t>(b, 0), std::min(e, in), e - b};
}

inline int64_t ref_avg_divisor(const RefPool& p, const RefAvgWindow& h, const RefAvgWindow& w) {
  if (p.divisor_override != 0) return p.divisor_override;
  if (p.count_include_pad) return h.padded * w.padded;
  return (h.end - h.begin) * (w.end - w.begin);
}

template <typename T>
std::vector<T> ref_avg_pool(const RefPool& p, const std::vector<T>& x) {
  std::vector<T> y(p.out_size());
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const RefAvgWindow hw = ref_avg_window(oh, p.H, p.kh, p.sh, p.ph), ww = ref_avg_window(ow, p.W, p.kw, p.sw, p.pw);
        double s = 0.0;
        for (int64_t h = hw.begin; h < hw.end; ++h)
          for (int64_t w = ww.begin; w < ww.end; ++w) s += x[pl * p.H * p.W + h * p.W + w];
        const bool empty = hw.begin >= hw.end || ww.begin >= ww.end;
        y[(pl * p.OH + oh) * p.OW + ow] = empty ? T(0) : static_cast<T>(s / double(ref_avg_divisor(p, hw, ww)));
      }
  return y;
}

template <typename T>
std::vector<T> ref_avg_pool_backward(const RefPool& p, const std::vector<T>& gy) {
  std::vector<double> gx(p.in_size(), 0.0);
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const RefAvgWindow hw = ref_avg_window(oh, p.H, p.kh, p.sh, p.ph), ww = ref_avg_window(ow, p.W, p.kw, p.sw, p.pw);
        if (hw.begin >= hw.end || ww.begin >= ww.end) continue;
        const double g = double(gy[(pl * p.OH + oh) * p.OW + ow]) / double(ref_avg_divisor(p, hw, ww));
        for (int64_t h = hw.begin; h < hw.end; ++h)
          for (int64_t w = ww.begin; w < ww.end; ++w) gx[pl * p.H * p.W + h * p.W + w] += g;
      }
  return std::vector<T>(gx.begin(), gx.end());
}

// Scatter of `planes` planes of `out_plane` values into planes of `in_plane` elements at `ind`. accumulate:
// sum (index -1 skipped); otherwise assign, where `writers` counts the entries aimed at each element (with
// duplicates any one of them may win; the test checks membership). Entries outside [0, in_plane) are skipped.
template <typename T>
std::vector<T> ref_scatter(int64_t planes, int64_t in_plane, int64_t out_plane, const std::vector<T>& g,
                           const std::vector<int64_t>& ind, bool accumulate, std::vector<int>* writers = nullptr) {
  std::vector<double> out(planes * in_plane, 0.0);
  if (writers) writers->assign(planes * in_plane, 0);
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t o = 0; o < out_plane; ++o) {
      const int64_t i = ind[pl * out_plane + o];
      if (i < 0 || i >= in_plane) continue;
      double& dst = out[pl * in_plane + i];
      dst = accumulate ? dst + double(g[pl * out_plane + o]) : double(g[pl * out_plane + o]);
      if (writers) ++(*writers)[pl * in_plane + i];
    }
  return std::vector<T>(out.begin(), out.end());
}

// y = x gathered at ind; an index outside the plane gathers 0.
template <typename T>
std::vector<T> ref_gather(int64_t planes, int64_t in_plane, int64_t out_plane, const std::vector<T>& x,
                          const std::vector<int64_t>& ind) {
  std::vector<T> y(planes * out_plane);
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t o = 0; o < out_plane; ++o) {
      const int64_t i = ind[pl * out_plane + o];
      y[pl * out_plane + o] = (i < 0 || i >= in_plane) ? T(0) : x[pl * in_plane + i];
    }
  return y;
}

// ---- adaptive pooling: output o of an axis pools inputs [floor(o in / out), ceil((o + 1) in / out)) ----
struct RefAdaptive {
  int64_t N = 1, C = 1, H = 1, W = 1, OH = 1, OW = 1;
  int64_t in_size() const { return N * C * H * W; }
  int64_t out_size() const { return N * C * OH * OW; }
};

inline int64_t ref_adaptive_begin(int64_t o, int64_t in, int64_t out) {
  return static_cast<int64_t>(std::floor(double(o) * double(in) / double(out)));
}
inline int64_t ref_adaptive_end(int64_t o, int64_t in, int64_t out) {
  const int64_t num = (o + 1) * in;
  return num / out + (num % out != 0 ? 1 : 0);
}

template <typename T>
void ref_adaptive_max(const RefAdaptive& p, const std::vector<T>& x, std::vector<T>& y, std::vector<int64_t>& ind) {
  y.assign(p.out_size(), T(0));
  ind.assign(p.out_size(), 0);
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t h0 = ref_adaptive_begin(oh, p.H, p.OH), h1 = ref_adaptive_end(oh, p.H, p.OH);
        const int64_t w0 = ref_adaptive_begin(ow, p.W, p.OW), w1 = ref_adaptive_end(ow, p.W, p.OW);
        T m = -std::numeric_limits<T>::infinity();
        int64_t mi = h0 * p.W + w0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            const T v = x[pl * p.H * p.W + h * p.W + w];
            if (v > m || std::isnan(v)) {
              m = v;
              mi = h * p.W + w;
            }
          }
        y[(pl * p.OH + oh) * p.OW + ow] = m;
        ind[(pl * p.OH + oh) * p.OW + ow] = mi;
      }
}

template <typename T>
std::vector<T> ref_adaptive_avg(const RefAdaptive& p, const std::vector<T>& x) {
  std::vector<T> y(p.out_size());
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t h0 = ref_adaptive_begin(oh, p.H, p.OH), h1 = ref_adaptive_end(oh, p.H, p.OH);
        const int64_t w0 = ref_adaptive_begin(ow, p.W, p.OW), w1 = ref_adaptive_end(ow, p.W, p.OW);
        double s = 0.0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) s += x[pl * p.H * p.W + h * p.W + w];
        y[(pl * p.OH + oh) * p.OW + ow] = static_cast<T>(s / double((h1 - h0) * (w1 - w0)));
      }
  return y;
}

template <typename T>
std::vector<T> ref_adaptive_avg_backward(const RefAdaptive& p, const std::vector<T>& gy) {
  std::vector<double> gx(p.in_size(), 0.0);
  for (int64_t pl = 0; pl < p.N * p.C; ++pl)
    for (int64_t oh = 0; oh < p.OH; ++oh)
      for (int64_t ow = 0; ow < p.OW; ++ow) {
        const int64_t h0 = ref_adaptive_begin(oh, p.H, p.OH), h1 = ref_adaptive_end(oh, p.H, p.OH);
        const int64_t w0 = ref_adaptive_begin(ow, p.W, p.OW), w1 = ref_adaptive_end(ow, p.W, p.OW);
        const double g = double(gy[(pl * p.OH + oh) * p.OW + ow]) / double((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) gx[pl * p.H * p.W + h * p.W + w] += g;
      }
  return std::vector<T>(gx.begin(), gx.end());
}

}  // namespace fastconv_test
