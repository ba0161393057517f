#include "weight_layout.h"
#include <ATen/Parallel.h>

#include "../cpu/transpose.h"

namespace fastconv {

bool is_rsc_weight(const at::Tensor& weight) {
  return weight.dim() == 4 && !weight.is_contiguous() && weight.is_contiguous(at::MemoryFormat::ChannelsLast) &&
         at::isFloatingType(weight.scalar_type());
}

at::Tensor dense_weight(const at::Tensor& weight) {
  if (weight.is_contiguous()) return weight;
  if (!is_rsc_weight(weight)) return weight.contiguous();
  // channels_last memory is (K, R, S, C): one (R*S x C) -> (C x R*S) transpose per output channel.
  at::Tensor out = at::empty(weight.sizes(), weight.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t K = weight.size(0), C = weight.size(1), RS = weight.size(2) * weight.size(3);
  AT_DISPATCH_FLOATING_TYPES(weight.scalar_type(), "fastconv_dense_weight", [&] {
    cpu::batched_transpose<scalar_t>(K, RS, C, weight.const_data_ptr<scalar_t>(), out.mutable_data_ptr<scalar_t>(),
                                     at::get_num_threads());
  });
  return out;
}

}  // namespace fastconv
