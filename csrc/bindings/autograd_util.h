// Helpers of the C++ autograd kernels (pool_autograd.cpp, adaptive_pool_autograd.cpp, conv_autograd.cpp).
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <utility>

namespace fastconv {

// A typed handle of one of fastconv's ops, to call it through the dispatcher (so a backward built from ops
// records a graph when create_graph is set). Found once per call site; the dispatcher owns the op.
template <typename Sig>
c10::TypedOperatorHandle<Sig> op_handle(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// The gradients a backward returns when only its first input is differentiable: g, then n - 1 undefined
// (n: the number of arguments the Function's apply took, tensors or not).
inline torch::autograd::variable_list first_only(at::Tensor g, size_t n) {
  torch::autograd::variable_list out(n);
  out[0] = std::move(g);
  return out;
}

// The sizes of t from dimension `from` on, for ctx->saved_data: symbolic under torch.compile's dynamic shapes.
inline c10::IValue saved_sizes(const at::Tensor& t, int64_t from = 0) {
  return c10::IValue(t.sym_sizes().slice(from));
}

}  // namespace fastconv
