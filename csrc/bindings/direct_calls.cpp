// See direct_calls.h. Each function is the op's schema as a typed dispatcher call: the dispatcher runs the
// same kernels (autograd, CPU or CUDA, fake) as for torch.ops.fastconv, and the op's checks raise the same
// exceptions. The GIL is released around the call, as torch's own bindings do.
#include "direct_calls.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <tuple>
#include <vector>

namespace fastconv {
namespace {

using at::IntArrayRef;
using at::Tensor;
using IntList = std::vector<int64_t>;  // a Python list or tuple of ints

template <typename Signature>
c10::TypedOperatorHandle<Signature> typed_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

Tensor conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, const IntList& stride,
              const IntList& padding, const IntList& dilation, int64_t groups, const std::string& mode) {
  static const auto op = typed_op<Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&, IntArrayRef,
                                         IntArrayRef, IntArrayRef, int64_t, c10::string_view)>("fastconv::conv2d");
  pybind11::gil_scoped_release no_gil;
  return op.call(x, w, bias, stride, padding, dilation, groups, mode);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, const IntList& stride,
                        const IntList& padding, const IntList& output_padding, int64_t groups,
                        const IntList& dilation) {
  static const auto op = typed_op<Tensor(const Tensor&, const Tensor&, const std::optional<Tensor>&, IntArrayRef,
                                         IntArrayRef, IntArrayRef, int64_t, IntArrayRef)>("fastconv::conv_transpose2d");
  pybind11::gil_scoped_release no_gil;
  return op.call(x, w, bias, stride, padding, output_padding, groups, dilation);
}

Tensor avg_pool2d(const Tensor& x, const IntList& kernel, const IntList& stride, const IntList& padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  static const auto op = typed_op<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, bool, bool,
                                         std::optional<int64_t>)>("fastconv::avg_pool2d");
  pybind11::gil_scoped_release no_gil;
  return op.call(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override);
}

Tensor max_pool2d(const Tensor& x, const IntList& kernel, const IntList& stride, const IntList& padding,
                  const IntList& dilation, bool ceil_mode) {
  static const auto op =
      typed_op<Tensor(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef, IntArrayRef, bool)>("fastconv::max_pool2d");
  pybind11::gil_scoped_release no_gil;
  return op.call(x, kernel, stride, padding, dilation, ceil_mode);
}

std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const IntList& kernel, const IntList& stride,
                                                   const IntList& padding, const IntList& dilation, bool ceil_mode) {
  static const auto op = typed_op<std::tuple<Tensor, Tensor>(const Tensor&, IntArrayRef, IntArrayRef, IntArrayRef,
                                                             IntArrayRef, bool)>("fastconv::max_pool2d_with_indices");
  pybind11::gil_scoped_release no_gil;
  return op.call(x, kernel, stride, padding, dilation, ceil_mode);
}

Tensor adaptive_avg_pool2d(const Tensor& x, const IntList& output_size) {
  static const auto op = typed_op<Tensor(const Tensor&, c10::SymIntArrayRef)>("fastconv::adaptive_avg_pool2d");
  pybind11::gil_scoped_release no_gil;
  return op.call(x, c10::fromIntArrayRefSlow(output_size));
}

}  // namespace

void register_direct_calls(pybind11::module& m) {
  m.def("conv2d", &conv2d);
  m.def("conv_transpose2d", &conv_transpose2d);
  m.def("avg_pool2d", &avg_pool2d);
  m.def("max_pool2d", &max_pool2d);
  m.def("max_pool2d_with_indices", &max_pool2d_with_indices);
  m.def("adaptive_avg_pool2d", &adaptive_avg_pool2d);
}

}  // namespace fastconv
