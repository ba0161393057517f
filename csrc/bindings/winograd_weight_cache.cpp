// The cache of transformed Winograd weights (see winograd_weight_cache.h).
#include "winograd_weight_cache.h"

#include <c10/core/GradMode.h>

#include <atomic>
#include <list>
#include <mutex>
#include <vector>

#include "../cpu/winograd/winograd.h"

namespace fastconv {
namespace {

thread_local bool t_training = false;

struct Entry {
  c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl> impl;  // which tensor
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;  // held: no other storage can take its address
  const void* data;
  std::vector<int64_t> sizes, strides;
  int64_t version;
  at::Tensor transformed;
  int64_t bytes;
};

std::mutex g_mutex;
std::list<Entry> g_entries;  // most recently used first
int64_t g_bytes = 0, g_hits = 0, g_misses = 0;
std::atomic<int64_t> g_budget{int64_t(512) << 20};

bool same_tensor(const Entry& e, const at::Tensor& w) {
  return !e.impl.expired() && e.impl._unsafe_get_target() == w.unsafeGetTensorImpl() && !e.storage.expired() &&
         e.storage._unsafe_get_target() == w.storage().unsafeGetStorageImpl() && e.data == w.const_data_ptr() &&
         e.sizes == w.sizes().vec() && e.strides == w.strides().vec();
}

// Drops entries of freed tensors and, past `budget` bytes, the least recently used. Holds g_mutex.
void trim(int64_t budget) {
  for (auto it = g_entries.begin(); it != g_entries.end();) {
    if (it->impl.expired() || it->storage.expired()) {
      g_bytes -= it->bytes;
      it = g_entries.erase(it);
    } else {
      ++it;
    }
  }
  while (g_bytes > budget && !g_entries.empty()) {
    g_bytes -= g_entries.back().bytes;
    g_entries.pop_back();
  }
}

}  // namespace

TrainingWeightScope::TrainingWeightScope(bool training) : previous_(t_training) { t_training = training; }
TrainingWeightScope::~TrainingWeightScope() { t_training = previous_; }

at::Tensor cached_winograd_weight(const ConvParams& p, const at::Tensor& weight, const at::Tensor& original) {
  const int64_t budget = g_budget.load(std::memory_order_relaxed);
  if (budget <= 0 || t_training || original.is_inference() || weight.scalar_type() != at::kFloat ||
      p.N <= 0 || p.OH <= 0 || p.OW <= 0 || !cpu::use_winograd_forward(p, sizeof(float)) ||
      cpu::winograd_forward_fuses_weight_transform(p, sizeof(float)))  // faster transformed again
    return {};
  const int64_t elems = cpu::winograd_weight_elems(p, sizeof(float)), bytes = elems * int64_t(sizeof(float));
  if (bytes > budget) return {};
  const int64_t version = original._version();
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (auto it = g_entries.begin(); it != g_entries.end(); ++it) {
      if (!same_tensor(*it, original)) continue;
      if (it->version == version) {
        ++g_hits;
        g_entries.splice(g_entries.begin(), g_entries, it);
        return it->transformed;
      }
      g_bytes -= it->bytes;  // an older version of this weight
      g_entries.erase(it);
      break;
    }
    ++g_misses;
  }
  at::Tensor transformed = at::empty({elems}, weight.options().memory_format(at::MemoryFormat::Contiguous));
  cpu::winograd_transform_weight<float>(p, weight.const_data_ptr<float>(), transformed.mutable_data_ptr<float>());
  Entry e{c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(original.getIntrusivePtr()),
          original.storage().getWeakStorageImpl(),
          original.const_data_ptr(),
          original.sizes().vec(),
          original.strides().vec(),
          version,
          transformed,
          bytes};
  std::lock_guard<std::mutex> lock(g_mutex);
  g_entries.push_front(std::move(e));
  g_bytes += bytes;
  trim(budget);
  return transformed;
}

int64_t winograd_weight_cache_mb() { return g_budget.load() >> 20; }

void set_winograd_weight_cache_mb(int64_t mb) {
  TORCH_CHECK(mb >= 0, "fastconv.backends.cpu.winograd_weight_cache_mb must be >= 0, got ", mb);
  TORCH_CHECK(mb < (int64_t(1) << 40), "fastconv.backends.cpu.winograd_weight_cache_mb is too large: ", mb);
  g_budget.store(mb << 20);
  std::lock_guard<std::mutex> lock(g_mutex);
  trim(mb << 20);
}

void clear_winograd_weight_cache() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_entries.clear();
  g_bytes = 0;
}

WinogradCacheStats winograd_weight_cache_stats() {
  std::lock_guard<std::mutex> lock(g_mutex);
  trim(g_budget.load());
  return {int64_t(g_entries.size()), g_bytes, g_hits, g_misses};
}

}  // namespace fastconv
