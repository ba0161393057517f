// Depthwise convolution, NHWC: the innermost loop runs over channels (contiguous in memory) with the
// weight transposed to (R, S, K). Forward: threads split output rows. Input and weight gradients: threads
// split (image, channel block) / channel blocks, so every thread owns the elements it accumulates into
// (race-free scatter through any padding mode, and deterministic).
// Work is handed out dynamically (every item owns its outputs, so results do not depend on which
// thread runs it): on shared cores a descheduled thread then delays only the item it holds.
#include <algorithm>
#include <cstring>
#include <vector>

#include "../../common/denormal_guard.h"
#include "../../common/parallel.h"
#include "../cpu_tuning.h"
#include "column_feed.h"
#include "conv_depthwise.h"
#include "../gemm/gemm_microkernel.h"  // SimdVec<T>, Zmm<T> vector traits
#include "../gemm/gemm_scratch.h"
#include "im2col.h"  // interior_cols

namespace fastconv {
namespace cpu {
namespace {

// wt[(r*S + s)*K + k] = w[k, 0, r, s]
template <typename T>
const T* transposed_weight(const ConvParams& p, const T* w) {
  const int64_t RS = p.R * p.S;
  T* wt = thread_scratch<T>(kScratchWeight, size_t(RS * p.K));
  for (int64_t k = 0; k < p.K; ++k)
    for (int64_t rs = 0; rs < RS; ++rs) wt[rs * p.K + k] = w[k * RS + rs];
  return wt;
}

// Input channel blocks of whole multiples of 16 channels, enough of them (with the images) to feed the threads.
int64_t channel_block(const ConvParams& p, int64_t work_items_per_block) {
  int64_t cb = p.C;
  while (cb > 16 && work_items_per_block * ((p.C + cb - 1) / cb) < 2 * p.num_threads) cb = (cb / 2 + 15) / 16 * 16;
  return std::max<int64_t>(cb, 1);
}

constexpr int64_t kPixels = 8;  // output pixels computed together: 8 independent FMA chains

// The input rows the next output row reads and this one does not, prefetched into L2 a slice per channel
// vector of this row's work. The kernels walk a row's pixels one channel vector at a time, so their loads
// stride by C: dozens of interleaved streams that the hardware prefetchers do not follow, and every input
// line missed cold (MobileNet's stride-2 layers 0.72-0.78x of torch on fresh inputs, 1.1x on hot ones).
struct RowPrefetch {
  const char* next = nullptr;
  const char* end = nullptr;
  int64_t step = 0;  // bytes per slice
  void slice() {
    const char* stop = std::min(next + step, end);
    for (; next < stop; next += 64) __builtin_prefetch(next, 0, 2);
  }
};

// The prefetch for output row oh of image x_img: input rows [from, to), from the first row past this output row's
// rows to the first past the next one's, in `slices` calls of slice() (the channel vectors of this row's work).
// None for the last output row, or with a padding mode whose rows past the edge are remapped.
template <typename T>
RowPrefetch next_rows_prefetch(const ConvParams& p, const T* x_img, int64_t oh, int64_t slices) {
  const int64_t last = (p.R - 1) * p.dil_h - p.pad_t;
  const int64_t from = std::clamp<int64_t>(oh * p.stride_h + last + 1, 0, p.H);
  const int64_t to = std::clamp<int64_t>((oh + 1) * p.stride_h + last + 1, 0, p.H);
  const int64_t row_bytes = p.W * p.C * int64_t(sizeof(T));
  RowPrefetch pf;
  if (oh + 1 >= p.OH || to <= from || p.mode != PaddingMode::Zeros) return pf;
  pf.next = reinterpret_cast<const char*>(x_img) + from * row_bytes;
  pf.end = reinterpret_cast<const char*>(x_img) + to * row_bytes;
  pf.step = ((pf.end - pf.next) / std::max<int64_t>(slices, 1) + 127) / 64 * 64;
  return pf;
}

// Forward for up to kPixels consecutive output pixels of one row (iw[q*S + s] < 0: tap absent; q >= np:
// no such pixel). Each vector of channels accumulates over all taps in registers.
// kInterior: all kPixels pixels exist and every tap column is inside the input, so pixel q's tap s reads
// column iw[s] + q*stride_w (no per-tap lookups or tests).
template <typename T, bool kInterior, int kNP = kPixels>
void forward_pixels(const ConvParams& p, const T* x_img, const T* wt, const T* bias, const int64_t* ih,
                    const int64_t* iw, int64_t np, int64_t mult, T* __restrict out) {
  int64_t k0 = 0;
  if (mult == 1) {
    const int64_t step = p.stride_w * p.C;
    using Z = SimdVec<T>;
    for (; k0 + Z::L <= p.K; k0 += Z::L) {
      typename Z::V acc[kNP];
      const typename Z::V b = bias ? Z::load(bias + k0) : Z::zero();
#pragma GCC unroll 8
      for (int q = 0; q < kNP; ++q) acc[q] = b;
      for (int64_t r = 0; r < p.R; ++r) {
        if (ih[r] < 0) continue;
        const T* xr = x_img + ih[r] * p.W * p.C + k0;
        const T* wr = wt + r * p.S * p.K + k0;
        for (int64_t s = 0; s < p.S; ++s) {
          const typename Z::V wv = Z::load(wr + s * p.K);
          if (kInterior) {
            const T* xs = xr + iw[s] * p.C;
#pragma GCC unroll 8
            for (int q = 0; q < kNP; ++q) acc[q] = Z::fma(wv, Z::load(xs + q * step), acc[q]);
          } else {
#pragma GCC unroll 8
            for (int q = 0; q < kNP; ++q) {
              const int64_t c = iw[q * p.S + s];
              if (c >= 0) acc[q] = Z::fma(wv, Z::load(xr + c * p.C), acc[q]);
            }
          }
        }
      }
      for (int64_t q = 0; q < np; ++q) Z::store(out + q * p.K + k0, acc[q]);
    }
  }
  for (int64_t q = 0; q < np; ++q)
    for (int64_t k = k0; k < p.K; ++k) {  // remaining channels (and the channel multiplier case)
      T acc = bias ? bias[k] : T(0);
      const int64_t c = k / mult;
      for (int64_t r = 0; r < p.R; ++r) {
        if (ih[r] < 0) continue;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t col = kInterior ? iw[s] + q * p.stride_w : iw[q * p.S + s];
          if (col >= 0) acc += wt[(r * p.S + s) * p.K + k] * x_img[(ih[r] * p.W + col) * p.C + c];
        }
      }
      out[q * p.K + k] = acc;
    }
}

#if defined(__AVX512F__)
// NP output pixels of a KS-wide kernel (3, 5 or 7) with stride_w STRIDE (1 or 2), dilation 1 and one output
// channel per input channel (MobileNet's 3x3 layers, EfficientNet's 5x5), the first reading input column iw0:
// pixel q's tap s reads column iw0 + q*STRIDE + s, so each of the (NP-1)*STRIDE + KS columns is loaded once and
// feeds every pixel that reads it (10 loads for 24 FMAs at stride 1 and 3x3, 12 for 40 at 5x5, instead of a load
// per FMA: 5x5 layers 0.68-0.85x of torch that way). kEdges: columns outside [0, W) are zero padding and are not
// loaded, and only np <= NP pixels exist (a whole short row in one pass: MobileNet's 14-wide rows ran as two
// overlapping 8-pixel groups plus two single-pixel edge passes); otherwise every column is inside.
// stream: the outputs go out as non-temporal stores (out and K keep every vector on a 64-byte boundary).
template <typename T, int KS, int STRIDE, int NP, bool kEdges>
void forward_cols(const ConvParams& p, const T* x_img, const T* wt, const T* bias, const int64_t* ih, int64_t iw0,
                  int64_t np, T* __restrict out, RowPrefetch& pf, bool stream) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int kCols = (NP - 1) * STRIDE + KS;
  const int64_t C = p.C, K = p.K, cols = std::min<int64_t>(kCols, (np - 1) * STRIDE + KS);
  auto inside = [&](int64_t j) { return !kEdges || (j < cols && iw0 + j >= 0 && iw0 + j < p.W); };
  int64_t k0 = 0;
  for (; k0 + Z::L <= K; k0 += Z::L) {
    pf.slice();
    V acc[NP];
    const V b = bias ? Z::load(bias + k0) : Z::zero();
#pragma GCC unroll 16
    for (int q = 0; q < NP; ++q) acc[q] = b;
    for (int64_t r = 0; r < p.R; ++r) {
      if (ih[r] < 0) continue;
      const T* xs = x_img + (ih[r] * p.W + iw0) * C + k0;
      const T* wr = wt + r * KS * K + k0;
      V w[KS];
#pragma GCC unroll 7
      for (int s = 0; s < KS; ++s) w[s] = Z::load(wr + s * K);
#pragma GCC unroll 64
      for (int j = 0; j < kCols; ++j)
        if (inside(j)) feed_column<T, KS, STRIDE, NP>(j, Z::load(xs + j * C), w, acc);
    }
#pragma GCC unroll 16
    for (int q = 0; q < NP; ++q)
      if (q < np) stream ? Z::stream(out + q * K + k0, acc[q]) : Z::store(out + q * K + k0, acc[q]);
  }
  for (int64_t q = 0; q < np; ++q)  // remaining channels
    for (int64_t k = k0; k < K; ++k) {
      T a = bias ? bias[k] : T(0);
      for (int64_t r = 0; r < p.R; ++r) {
        if (ih[r] < 0) continue;
        for (int64_t s = 0; s < KS; ++s)
          if (inside(q * STRIDE + s)) a += wt[(r * KS + s) * K + k] * x_img[(ih[r] * p.W + iw0 + q * STRIDE + s) * C + k];
      }
      out[q * K + k] = a;
    }
}

// forward_cols for the kernel width and stride the caller established (cols_kernel: 3, 5 or 7 wide, stride 1 or 2).
template <typename T, int NP, bool kEdges>
void forward_cols_any(const ConvParams& p, const T* x_img, const T* wt, const T* bias, const int64_t* ih,
                      int64_t iw0, int64_t np, T* __restrict out, RowPrefetch& pf, bool stream) {
  const bool s1 = p.stride_w == 1;
  switch (p.S) {
    case 3:
      return s1 ? forward_cols<T, 3, 1, NP, kEdges>(p, x_img, wt, bias, ih, iw0, np, out, pf, stream)
                : forward_cols<T, 3, 2, NP, kEdges>(p, x_img, wt, bias, ih, iw0, np, out, pf, stream);
    case 5:
      return s1 ? forward_cols<T, 5, 1, NP, kEdges>(p, x_img, wt, bias, ih, iw0, np, out, pf, stream)
                : forward_cols<T, 5, 2, NP, kEdges>(p, x_img, wt, bias, ih, iw0, np, out, pf, stream);
    default:
      return s1 ? forward_cols<T, 7, 1, NP, kEdges>(p, x_img, wt, bias, ih, iw0, np, out, pf, stream)
                : forward_cols<T, 7, 2, NP, kEdges>(p, x_img, wt, bias, ih, iw0, np, out, pf, stream);
  }
}
#endif

// Whether forward_cols takes this forward (or gather pass): one output channel per input channel, a kernel 3, 5 or
// 7 wide, undilated along the width, stride 1 or 2 along it.
bool cols_kernel(const ConvParams& p, int64_t mult) {
  return mult == 1 && (p.S == 3 || p.S == 5 || p.S == 7) && p.dil_w == 1 && (p.stride_w == 1 || p.stride_w == 2);
}

// forward_pixels for np pixels any of whose taps may fall in the padding: one accumulator for a single pixel
// (the padded edge of a row), kPixels otherwise.
template <typename T>
void forward_pixels_edge(const ConvParams& p, const T* x_img, const T* wt, const T* bias, const int64_t* ih,
                         const int64_t* iw, int64_t np, int64_t mult, T* __restrict out) {
  if (np == 1)
    forward_pixels<T, false, 1>(p, x_img, wt, bias, ih, iw, np, mult, out);
  else
    forward_pixels<T, false>(p, x_img, wt, bias, ih, iw, np, mult, out);
}

// Walks a row of `width` pixels in groups of up to kPixels: interior(w0) for kPixels pixels from w0 whose taps
// all lie inside (the pixels [lo, hi); interior_ok: the fast path applies at all), general(w0, np) for the
// rest. The padded edges go group by group, the interior in groups from lo with the last one moved back to end
// at hi: it recomputes a few pixels rather than leaving them to the slow path (with groups from 0, a 56-wide
// row with padding 1 sent 2 of its 7 there).
template <class Interior, class General>
void for_pixel_groups(int64_t width, int64_t lo, int64_t hi, bool interior_ok, Interior interior, General general) {
  if (!interior_ok || hi - lo < kPixels) {
    for (int64_t w0 = 0; w0 < width; w0 += kPixels) general(w0, std::min(kPixels, width - w0));
    return;
  }
  for (int64_t w0 = 0; w0 < lo; w0 += kPixels) general(w0, std::min(kPixels, lo - w0));
  for (int64_t w0 = lo; w0 < hi; w0 += kPixels) interior(std::min(w0, hi - kPixels));
  for (int64_t w0 = hi; w0 < width; w0 += kPixels) general(w0, std::min(kPixels, width - w0));
}

}  // namespace

template <typename T>
void depthwise_forward_nhwc(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const int64_t mult = p.K / p.C, rows = p.N * p.OH;
  const T* wt = transposed_weight(p, w);
  // Output columns whose taps are all inside the input: [lo, hi).
  int64_t lo = 0, hi = p.OW;
  for (int64_t s = 0; s < p.S; ++s) {
    const InteriorRange in = interior_cols(p, s);
    lo = std::max(lo, in.lo), hi = std::min(hi, in.hi);
  }
  // 3, 5 and 7-wide kernels at stride 1 or 2 (dilation 1, no channel multiplier): the column-reuse kernel
  [[maybe_unused]] const bool cols = cols_kernel(p, mult);
  // ... on rows of at most 16 outputs with zero padding and whole channel vectors: a row in one pass
  [[maybe_unused]] bool row_cols = false;  // (the column-reuse kernels are AVX-512 code)
  // ... and, on wider rows of 5- and 7-wide kernels, the pixel groups at the padded edges too (their pixels
  // one at a time read each input column up to 7 times: EfficientNet's 144x56x56 5x5 17% faster, 1 thread; at
  // 3x3, one edge pixel per side, the single-pixel path measured 2-5% faster)
  [[maybe_unused]] bool edge_cols = false;
#if defined(__AVX512F__)
  const bool zero_vectors = cols && p.mode == PaddingMode::Zeros && p.K % Zmm<T>::L == 0;
  row_cols = zero_vectors && p.OW <= 16;
  edge_cols = zero_vectors && p.S >= 5;
#endif
  // The column-reuse kernels stream their outputs past the caches when every vector store is 64-byte aligned.
  // These layers are memory-bound (9-49 products per output), and the output's write-allocate reads were a fifth
  // of the traffic: MobileNet 64x112x112/2 1.05 -> 0.98 ms, EfficientNet 144x56x56 5x5/2 0.75 -> 0.69 ms, and
  // MobileNet-V2 channels_last inference 3-4% faster at batch 8 and 1, although each output feeds a pointwise GEMM.
  [[maybe_unused]] const bool stream =
      cols && p.K % SimdVec<T>::L == 0 && reinterpret_cast<uintptr_t>(y) % 64 == 0 && nontemporal_stores();
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> ih(p.R), iw(kPixels * p.S);
    // Threads take contiguous blocks of output rows, as torch's element-wise ops split a tensor: each streams
    // through its own part of the input and output, and in a network reads the part its own core just wrote.
    // Against rows handed out dynamically 4 at a time: 3-12% faster alone (32x112x112 0.80 -> 0.72 ms,
    // EfficientNet 144x56x56 5x5/2 0.77 -> 0.70, 192x28x28 0.50 -> 0.44), and 4-15% per layer inside MobileNet-V2
    // channels_last (144x56x56 0.81 -> 0.69 ms, 32x112x112 0.75 -> 0.65).
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t n = row / p.OH, oh = row % p.OH;
      for (int64_t r = 0; r < p.R; ++r) ih[r] = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
      const T* xn = x + n * p.H * p.W * p.C;
      T* yrow = y + (n * p.OH + oh) * p.OW * p.K;
#if defined(__AVX512F__)
      const int64_t vectors = p.K / Zmm<T>::L;
      if (row_cols) {  // the whole row (the padding is pad_l columns before column 0)
        RowPrefetch pf = next_rows_prefetch(p, xn, oh, vectors);
        if (p.OW <= 8)
          forward_cols_any<T, 8, true>(p, xn, wt, bias, ih.data(), -p.pad_l, p.OW, yrow, pf, stream);
        else
          forward_cols_any<T, 16, true>(p, xn, wt, bias, ih.data(), -p.pad_l, p.OW, yrow, pf, stream);
        continue;
      }
      RowPrefetch pf = next_rows_prefetch(p, xn, oh, (p.OW + kPixels - 1) / kPixels * vectors);
#endif
      // kPixels output pixels from ow0 whose taps are all inside the input
      auto interior = [&](int64_t ow0) {
        T* out = yrow + ow0 * p.K;
#if defined(__AVX512F__)
        if (cols)
          return forward_cols_any<T, kPixels, false>(p, xn, wt, bias, ih.data(), ow0 * p.stride_w - p.pad_l,
                                                     kPixels, out, pf, stream);
#endif
        for (int64_t s = 0; s < p.S; ++s) iw[s] = ow0 * p.stride_w - p.pad_l + s * p.dil_w;
        forward_pixels<T, true>(p, xn, wt, bias, ih.data(), iw.data(), kPixels, mult, out);
      };
      // np <= kPixels pixels from ow0, any of whose taps may fall in the padding
      auto general = [&](int64_t ow0, int64_t np) {
#if defined(__AVX512F__)
        if (edge_cols)
          return forward_cols_any<T, kPixels, true>(p, xn, wt, bias, ih.data(), ow0 * p.stride_w - p.pad_l, np,
                                                    yrow + ow0 * p.K, pf, stream);
#endif
        for (int64_t q = 0; q < kPixels; ++q)
          for (int64_t s = 0; s < p.S; ++s)
            iw[q * p.S + s] = q < np ? remap_index((ow0 + q) * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode) : -1;
        forward_pixels_edge(p, xn, wt, bias, ih.data(), iw.data(), np, mult, yrow + ow0 * p.K);
      };
      for_pixel_groups(p.OW, lo, hi, true, interior, general);
    }
#if defined(__AVX512F__)
    if (stream) _mm_sfence();  // the non-temporal stores ordered before whatever reads the output next
#endif
  }
}

namespace {

// The output index (oh or ow) whose tap `tap` lands on input index i, or -1 when none does:
// i = o*stride - pad + tap*dil (zero padding).
inline int64_t source_index(int64_t i, int64_t pad, int64_t tap, int64_t dil, int64_t stride, int64_t n) {
  const int64_t t = i + pad - tap * dil;
  if (t < 0 || t % stride != 0) return -1;
  return t / stride < n ? t / stride : -1;
}

#if defined(__AVX512F__)
// Input gradient of a 3-wide kernel at stride_w 2 with pad_l 1 (MobileNet's stride-2 3x3 layers), one row of gx:
// grad_output column ow reaches gx columns 2*ow - 1 + s through tap s, so 16 gx pixels from the even column
// 2*m0 take grad_output columns m0 .. m0 + 8, each loaded once and fed to its three pixels (the general gather
// looked every tap up per pixel: 0.7x of torch). oh[r]: the grad_output row tap row r reaches this gx row
// from, or -1; wt: the weight as (R, S, K).
template <typename T>
void backward_input_row_s2(const ConvParams& p, const T* gy_img, const T* wt, const int64_t* oh, T* __restrict gxrow) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int G = 16;  // gx pixels per group (even)
  const int64_t C = p.C;
  for (int64_t iw0 = 0; iw0 < p.W; iw0 += G) {
    const int64_t m0 = iw0 / 2, np = std::min<int64_t>(G, p.W - iw0);
    for (int64_t k0 = 0; k0 < C; k0 += Z::L) {
      V acc[G];
#pragma GCC unroll 16
      for (int q = 0; q < G; ++q) acc[q] = Z::zero();
      for (int64_t r = 0; r < p.R; ++r) {
        if (oh[r] < 0) continue;
        const T* g = gy_img + oh[r] * p.OW * C + k0;
        const T* wr = wt + r * 3 * C + k0;
        const V w[3] = {Z::load(wr), Z::load(wr + C), Z::load(wr + 2 * C)};
#pragma GCC unroll 9
        for (int j = 0; j <= G / 2; ++j) {
          if (m0 + j >= p.OW) break;
          const V gv = Z::load(g + (m0 + j) * C);
#pragma GCC unroll 3
          for (int s = 0; s < 3; ++s) {
            const int q = 2 * j - 1 + s;  // gx pixel iw0 + q
            if (q >= 0 && q < G) acc[q] = Z::fma(w[s], gv, acc[q]);
          }
        }
      }
#pragma GCC unroll 16
      for (int q = 0; q < G; ++q)
        if (q < np) Z::store(gxrow + (iw0 + q) * C + k0, acc[q]);
    }
  }
}
#endif

// Input gradient for zero padding and one output channel per input channel, as a gather: gx(ih, iw)
// sums w(r, s) * gy(oh, ow) over the taps that read (ih, iw), which is a forward pass over gy with the
// flipped kernel. forward_pixels then keeps the sums in registers and writes every gx element once
// (instead of read-modify-writing it once per tap); threads take gx rows dynamically.
template <typename T>
void backward_input_gather(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const int64_t RS = p.R * p.S;
#if defined(__AVX512F__)
  if (p.S == 3 && p.stride_w == 2 && p.dil_w == 1 && p.pad_l == 1 && p.C % Zmm<T>::L == 0) {
    const T* wt = transposed_weight(p, w);
#pragma omp parallel num_threads(p.num_threads)
    {
      DenormalGuard guard;
      std::vector<int64_t> oh(p.R);
#pragma omp for schedule(dynamic, 4)
      for (int64_t row = 0; row < p.N * p.H; ++row) {
        const int64_t n = row / p.H, h = row % p.H;
        for (int64_t r = 0; r < p.R; ++r) oh[r] = source_index(h, p.pad_t, r, p.dil_h, p.stride_h, p.OH);
        backward_input_row_s2(p, gy + n * p.OH * p.OW * p.C, wt, oh.data(), gx + row * p.W * p.C);
      }
    }
    return;
  }
#endif
  T* wf = thread_scratch<T>(kScratchWeight, size_t(RS * p.C));  // wf[(r'*S + s')*C + c] = w[c, R-1-r', S-1-s']
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t rs = 0; rs < RS; ++rs) wf[(RS - 1 - rs) * p.C + c] = w[c * RS + rs];
  ConvParams q = p;  // the "input" of the gather pass is gy: rows of OW pixels of C channels
  q.K = p.C, q.W = p.OW, q.stride_w = 1;
  const int64_t rows = p.N * p.H;
  // Input columns all of whose taps land on an output (stride 1): [lo, hi).
  const int64_t lo = std::max<int64_t>(0, (p.S - 1) * p.dil_w - p.pad_l), hi = std::min(p.W, p.OW - p.pad_l);
  [[maybe_unused]] const bool cols = cols_kernel(p, 1) && p.stride_w == 1;
  // Streamed as the forward's outputs are (2-7% on MobileNet's stride-1 layers, forward+backward).
  [[maybe_unused]] const bool stream = cols && p.C % SimdVec<T>::L == 0 && reinterpret_cast<uintptr_t>(gx) % 64 == 0;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<int64_t> ih(p.R), iw(kPixels * p.S);
#pragma omp for schedule(dynamic, 4)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t n = row / p.H, h = row % p.H;
      for (int64_t r = 0; r < p.R; ++r) ih[r] = source_index(h, p.pad_t, p.R - 1 - r, p.dil_h, p.stride_h, p.OH);
      const T* gyn = gy + n * p.OH * p.OW * p.C;
      T* gxrow = gx + (n * p.H + h) * p.W * p.C;
      // kPixels input pixels from w0 all of whose taps land on outputs (stride 1)
      auto interior = [&](int64_t w0) {
        T* out = gxrow + w0 * p.C;
        const int64_t first = w0 + p.pad_l - (p.S - 1) * p.dil_w;  // ow of pixel 0's last tap
#if defined(__AVX512F__)
        RowPrefetch none;
        if (cols)
          return forward_cols_any<T, kPixels, false>(q, gyn, wf, static_cast<const T*>(nullptr), ih.data(), first,
                                                     kPixels, out, none, stream);
#endif
        for (int64_t s = 0; s < p.S; ++s) iw[s] = first + s * p.dil_w;
        forward_pixels<T, true>(q, gyn, wf, static_cast<const T*>(nullptr), ih.data(), iw.data(), kPixels, 1, out);
      };
      auto general = [&](int64_t w0, int64_t np) {
        for (int64_t k = 0; k < kPixels; ++k)
          for (int64_t s = 0; s < p.S; ++s)
            iw[k * p.S + s] = k < np ? source_index(w0 + k, p.pad_l, p.S - 1 - s, p.dil_w, p.stride_w, p.OW) : -1;
        forward_pixels_edge(q, gyn, wf, static_cast<const T*>(nullptr), ih.data(), iw.data(), np, 1,
                            gxrow + w0 * p.C);
      };
      for_pixel_groups(p.W, lo, hi, p.stride_w == 1, interior, general);
    }
#if defined(__AVX512F__)
    if (stream) _mm_sfence();  // the non-temporal stores ordered before whatever reads gx next
#endif
  }
}

// One output row's interior columns [lo, hi) (every tap inside the input row) for channels [0, kv): per vector of
// channels, all R*S taps' sums in registers, grad_output loaded once per pixel (tap by tap, the row's grad_output
// and input were swept R*S times: MobileNet's 512-channel 14x14 weight gradient ran at 0.4x of torch).
// xr[r]: input row of tap row r (null: in the zero padding). a: the (R, S, K) accumulator.
template <typename T, int R, int S>
void weight_row_taps(const ConvParams& p, const T* g, const T* const* xr, int64_t lo, int64_t hi, int64_t kv, T* a) {
  using Z = SimdVec<T>;
  const int64_t K = p.K;
  for (int64_t k0 = 0; k0 < kv; k0 += Z::L) {
    typename Z::V acc[R * S];
    for (int t = 0; t < R * S; ++t) acc[t] = Z::zero();
    for (int64_t ow = lo; ow < hi; ++ow) {
      const typename Z::V gv = Z::load(g + ow * K + k0);
      const int64_t x0 = (ow * p.stride_w - p.pad_l) * p.C + k0;
#pragma GCC unroll 5
      for (int r = 0; r < R; ++r) {
        if (!xr[r]) continue;
        const T* xp = xr[r] + x0;
#pragma GCC unroll 5
        for (int s = 0; s < S; ++s) acc[r * S + s] = Z::fma(gv, Z::load(xp + s * p.dil_w * p.C), acc[r * S + s]);
      }
    }
    for (int t = 0; t < R * S; ++t) Z::store(a + t * K + k0, Z::add(Z::load(a + t * K + k0), acc[t]));
  }
}

// Weight gradient, one output channel per input channel: rows (n, oh) are cut into a fixed number of
// chunks (independent of the thread count) taken dynamically; each chunk sums into its own (R, S, K)
// buffer; the chunk buffers are then added in chunk order, so the result does not depend on the threads or
// the schedule. Per row: the columns where every tap is inside the row, by whole channel vectors, with all taps
// in registers (3x3 and 5x5: weight_row_taps); the rest (other kernels, channels past the last vector, border
// columns) tap by tap.
template <typename T>
void backward_weight_rows(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const int64_t RS = p.R * p.S, K = p.K, rows = p.N * p.OH;
  const int64_t chunks = std::min<int64_t>(rows, 32);
  // The calling thread's scratch, shared by the team (a fresh vector of 32 x 9 x 512 floats cost an mmap, its
  // page faults and a serial memset per call: half of MobileNet's 14x14 weight gradient); each chunk zeroes its own.
  T* bufs = thread_scratch<T>(kScratchAcc, size_t(chunks * RS * K));
  // Columns whose every tap lies inside the input row: [lo, hi).
  int64_t lo = 0, hi = p.OW;
  for (int64_t s = 0; s < p.S; ++s) {
    const InteriorRange in = interior_cols(p, s);
    lo = std::max(lo, in.lo), hi = std::min(hi, in.hi);
  }
  hi = std::max(lo, hi);
  int64_t kv = 0;  // channels [0, kv) of the interior columns go through weight_row_taps
  const bool taps_in_registers = (p.R == 3 && p.S == 3) || (p.R == 5 && p.S == 5);
  if (taps_in_registers) kv = K / SimdVec<T>::L * SimdVec<T>::L;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    std::vector<const T*> xrows(size_t(p.R));
#pragma omp for schedule(dynamic)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      T* acc = bufs + ch * RS * K;
      std::fill(acc, acc + RS * K, T(0));
      const int64_t r0 = rows * ch / chunks, r1 = rows * (ch + 1) / chunks;
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t n = row / p.OH, oh = row % p.OH;
        const T* g = gy + row * p.OW * K;
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
          xrows[size_t(r)] = ih < 0 ? nullptr : x + (n * p.H + ih) * p.W * p.C;
        }
        if (kv > 0 && p.R == 3)
          weight_row_taps<T, 3, 3>(p, g, xrows.data(), lo, hi, kv, acc);
        else if (kv > 0)
          weight_row_taps<T, 5, 5>(p, g, xrows.data(), lo, hi, kv, acc);
        for (int64_t r = 0; r < p.R; ++r) {
          const T* xr = xrows[size_t(r)];
          if (!xr) continue;
          for (int64_t s = 0; s < p.S; ++s) {
            const int64_t off = s * p.dil_w - p.pad_l;
            T* a = acc + (r * p.S + s) * K;
            // interior columns, the channels weight_row_taps left
            for (int64_t ow = lo; ow < hi; ++ow) {
              const T* gp = g + ow * K;
              const T* xp = xr + (ow * p.stride_w + off) * p.C;
#pragma omp simd
              for (int64_t k = kv; k < K; ++k) a[k] += gp[k] * xp[k];
            }
            // border columns, every channel: taps in the padding (remapped for reflect / replicate / circular)
            for (int64_t ow = 0; ow < p.OW; ++ow) {
              if (ow == lo) ow = hi;
              if (ow >= p.OW) break;
              const int64_t iw = remap_index(ow * p.stride_w + off, p.W, p.mode);
              if (iw < 0) continue;
#pragma omp simd
              for (int64_t k = 0; k < K; ++k) a[k] += g[ow * K + k] * xr[iw * p.C + k];
            }
          }
        }
      }
    }
    // Chunk buffers summed into the first in chunk order, element ranges split over the threads (contiguous,
    // vectorised: summing per weight element across the chunks read one cache line per term and took longer
    // than the whole gradient on MobileNet's 14x14 layers), then transposed to (K, R, S).
    int64_t e0, e1;
    split_range(RS * K, team_size(), thread_id(), e0, e1);
    for (int64_t ch = 1; ch < chunks; ++ch) {
      const T* src = bufs + ch * RS * K;
#pragma omp simd
      for (int64_t e = e0; e < e1; ++e) bufs[e] += src[e];
    }
#pragma omp barrier
#pragma omp for schedule(static)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t rs = 0; rs < RS; ++rs) gw[k * RS + rs] = bufs[rs * K + k];
  }
}

}  // namespace

template <typename T>
void depthwise_backward_input_nhwc(const ConvParams& p, const T* gy, const T* w, T* gx) {
  const int64_t mult = p.K / p.C;
  if (mult == 1 && p.mode == PaddingMode::Zeros) return backward_input_gather(p, gy, w, gx);
  // Scatter (other padding modes fold several taps onto one input element; channel multipliers).
  const T* wt = transposed_weight(p, w);
  const int64_t cb = channel_block(p, p.N), nblk = (p.C + cb - 1) / cb, items = p.N * nblk;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < items; ++item) {
      const int64_t n = item / nblk, c0 = (item % nblk) * cb, c1 = std::min(p.C, c0 + cb);
      T* gxn = gx + n * p.H * p.W * p.C;
      for (int64_t i = 0; i < p.H * p.W; ++i) std::fill(gxn + i * p.C + c0, gxn + i * p.C + c1, T(0));
      for (int64_t oh = 0; oh < p.OH; ++oh)
        for (int64_t r = 0; r < p.R; ++r) {
          const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
          if (ih < 0) continue;
          for (int64_t ow = 0; ow < p.OW; ++ow) {
            const T* __restrict g = gy + ((n * p.OH + oh) * p.OW + ow) * p.K;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
              if (iw < 0) continue;
              T* __restrict dst = gxn + (ih * p.W + iw) * p.C;
              const T* __restrict wp = wt + (r * p.S + s) * p.K;
              if (mult == 1) {
#pragma omp simd
                for (int64_t c = c0; c < c1; ++c) dst[c] += wp[c] * g[c];
              } else {
                for (int64_t c = c0; c < c1; ++c) {
                  T a = T(0);
                  for (int64_t m = 0; m < mult; ++m) a += wp[c * mult + m] * g[c * mult + m];
                  dst[c] += a;
                }
              }
            }
          }
        }
    }
  }
}

template <typename T>
void depthwise_backward_weight_nhwc(const ConvParams& p, const T* x, const T* gy, T* gw) {
  const int64_t mult = p.K / p.C, RS = p.R * p.S;
  if (mult == 1) return backward_weight_rows(p, x, gy, gw);
  // Channel multiplier: threads own channel blocks.
  const int64_t cb = channel_block(p, 1), nblk = (p.C + cb - 1) / cb;
#pragma omp parallel num_threads(p.num_threads)
  {
    DenormalGuard guard;
    T* acc = thread_scratch<T>(kScratchAcc, size_t(RS * cb * mult));  // (r, s, k - c0*mult)
#pragma omp for schedule(dynamic)
    for (int64_t blk = 0; blk < nblk; ++blk) {
      const int64_t c0 = blk * cb, c1 = std::min(p.C, c0 + cb), kb = (c1 - c0) * mult, k0 = c0 * mult;
      std::fill(acc, acc + RS * kb, T(0));
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t oh = 0; oh < p.OH; ++oh)
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = remap_index(oh * p.stride_h - p.pad_t + r * p.dil_h, p.H, p.mode);
            if (ih < 0) continue;
            for (int64_t ow = 0; ow < p.OW; ++ow) {
              const T* __restrict g = gy + ((n * p.OH + oh) * p.OW + ow) * p.K + k0;
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t iw = remap_index(ow * p.stride_w - p.pad_l + s * p.dil_w, p.W, p.mode);
                if (iw < 0) continue;
                const T* __restrict xp = x + ((n * p.H + ih) * p.W + iw) * p.C + c0;
                T* __restrict a = acc + (r * p.S + s) * kb;
                if (mult == 1) {
#pragma omp simd
                  for (int64_t j = 0; j < kb; ++j) a[j] += g[j] * xp[j];
                } else {
                  for (int64_t j = 0; j < kb; ++j) a[j] += g[j] * xp[j / mult];
                }
              }
            }
          }
      for (int64_t j = 0; j < kb; ++j)
        for (int64_t rs = 0; rs < RS; ++rs) gw[(k0 + j) * RS + rs] = acc[rs * kb + j];
    }
  }
}

#define FASTCONV_INSTANTIATE_DW_NHWC(T)                                                              \
  template void depthwise_forward_nhwc<T>(const ConvParams&, const T*, const T*, const T*, T*);     \
  template void depthwise_backward_input_nhwc<T>(const ConvParams&, const T*, const T*, T*);        \
  template void depthwise_backward_weight_nhwc<T>(const ConvParams&, const T*, const T*, T*);
FASTCONV_INSTANTIATE_DW_NHWC(float)
FASTCONV_INSTANTIATE_DW_NHWC(double)

}  // namespace cpu
}  // namespace fastconv
