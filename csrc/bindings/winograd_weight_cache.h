// Transformed weights of the CPU Winograd forward kept between calls, for inference: a model run again and
// again with unchanged weights skips the weight transform (4x the weight's size written per call; a quarter
// to a half of a 14x14 layer's time at batch 1-8).
//
// An entry is found again only for the same weight tensor, storage, data pointer, sizes, strides and
// version counter (any in-place change, optimizer step, .data swap or .set_() misses). It is not used while
// a weight is being trained (grad mode on and the weight requires grad: set by the autograd kernel through
// TrainingWeightScope), since the optimizer changes the weight every step, nor for inference tensors (they have
// no version counter). Least recently used entries are dropped past the byte budget
// (fastconv.backends.cpu.winograd_weight_cache_mb); entries of freed weights when the cache is next used.
// Not for forwards that transform their weight inside the GEMM loop (winograd_forward_fuses_weight_transform:
// few tiles), where reading the 4x larger transformed weight back costs more than transforming it again.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "../common/conv_params.h"

namespace fastconv {

// While alive on this thread: the convolutions run train their weight (the autograd kernel of conv2d).
class TrainingWeightScope {
 public:
  explicit TrainingWeightScope(bool training);
  ~TrainingWeightScope();
  TrainingWeightScope(const TrainingWeightScope&) = delete;
  TrainingWeightScope& operator=(const TrainingWeightScope&) = delete;

 private:
  bool previous_;
};

// The transformed weight of the float32 forward p with weight `weight` (dense: (K, C, 3, 3) contiguous,
// `original` the tensor the user passed) from the cache, made and cached on a miss; an undefined tensor when
// the cache does not apply (not a Winograd forward, training, budget 0, ...).
at::Tensor cached_winograd_weight(const ConvParams& p, const at::Tensor& weight, const at::Tensor& original);

// Python: the budget in MiB (0: off), and {"entries", "bytes", "hits", "misses"}; clear drops every entry.
int64_t winograd_weight_cache_mb();
void set_winograd_weight_cache_mb(int64_t mb);
void clear_winograd_weight_cache();
struct WinogradCacheStats {
  int64_t entries, bytes, hits, misses;
};
WinogradCacheStats winograd_weight_cache_stats();

}  // namespace fastconv
