// Typed Python entry points that call fastconv's ops through the dispatcher (autograd, fake tensors, the
// Python dispatch modes all apply as for torch.ops.fastconv) with a few hundred nanoseconds of argument
// conversion where torch.ops' generic schema matching spends about 3 us (a 1x4x4x4 avg_pool2d took 5.6 us
// through torch.ops, the kernel under 1): fastconv/nn/_direct_calls.py decides when they apply.
#pragma once

#include <torch/extension.h>

namespace fastconv {

// The functions, as attributes of `m` (fastconv._C.direct).
void register_direct_calls(pybind11::module& m);

}  // namespace fastconv
