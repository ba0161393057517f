// The Python extension module fastconv._C. Importing it registers every op with the dispatcher
// (the TORCH_LIBRARY_FRAGMENT blocks of the *_ops.cpp files); it also reports how it was built.
#include <torch/extension.h>

#include "../common/parallel.h"
#include "../cpu/kernel_library.h"
#include "../cpu/peak_probe.h"
#include "../cpu/winograd/winograd.h"
#include "direct_calls.h"
#include "winograd_weight_cache.h"

namespace {

pybind11::dict build_info() {
  pybind11::dict d;
  // The kernel library fastconv/_kernels.py loaded (this module itself is compiled for baseline x86-64).
  d["cpu_capability"] = fastconv::cpu::kernel_capability();
  d["simd"] = fastconv::cpu::kernel_simd_level();
  d["fma_broadcast"] = fastconv::cpu::kernel_fma_broadcast();
  d["nontemporal_stores"] = fastconv::cpu::kernel_nontemporal_stores();
#ifdef _OPENMP
  d["openmp"] = true;
#else
  d["openmp"] = false;
#endif
#ifdef FASTCONV_WITH_CUDA
  d["cuda"] = true;
#else
  d["cuda"] = false;
#endif
#ifdef FASTCONV_CUDA_ARCHS
  d["cuda_archs"] = FASTCONV_CUDA_ARCHS;
#else
  d["cuda_archs"] = "";
#endif
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "fastconv compiled kernels";
  pybind11::module direct = m.def_submodule("direct", "Typed calls of the ops (fastconv/nn/_direct_calls.py).");
  fastconv::register_direct_calls(direct);
  m.def("build_info", &build_info, "How the extension was compiled (the CPU kernels' capability and SIMD level, OpenMP, CUDA).");
  m.def("peak_fma_gflops", &fastconv::peak_fma_gflops, "Measured FMA peak, GFLOP/s (benchmark probe).",
        pybind11::arg("threads"), pybind11::arg("seconds"), pybind11::arg("double_precision"));
  m.def("stream_bandwidth_gbs", &fastconv::stream_bandwidth_gbs, "Measured read+write bandwidth, GB/s (probe).",
        pybind11::arg("threads"), pybind11::arg("bytes_per_buffer"), pybind11::arg("repeats"));
  m.def("set_min_parallel_work", &fastconv::set_min_parallel_work,
        "Work (multiply-adds or elements) below which kernels run on one thread; returns the previous value.",
        pybind11::arg("work"));
  m.def("winograd_allowed", &fastconv::cpu::winograd_allowed,
        "Whether the CPU Winograd paths may run (fastconv.backends.cpu.allow_winograd).");
  m.def("set_winograd_allowed", &fastconv::cpu::set_winograd_allowed, "Allows or forbids the CPU Winograd paths.",
        pybind11::arg("allowed"));
  m.def("set_winograd_size_rule", &fastconv::cpu::set_winograd_size_rule,
        "Tests: off, every eligible float32 3x3 convolution runs Winograd whatever its size; returns the previous "
        "setting.", pybind11::arg("on"));
  m.def("winograd_weight_cache_mb", &fastconv::winograd_weight_cache_mb,
        "Budget of the cache of transformed Winograd weights, MiB (fastconv.backends.cpu.winograd_weight_cache_mb).");
  m.def("set_winograd_weight_cache_mb", &fastconv::set_winograd_weight_cache_mb,
        "Sets the budget of the transformed-weight cache, MiB (0: off; entries past it are dropped).",
        pybind11::arg("mb"));
  m.def("clear_winograd_weight_cache", &fastconv::clear_winograd_weight_cache,
        "Drops every cached transformed weight.");
  m.def("winograd_weight_cache_stats", [] {
    const auto s = fastconv::winograd_weight_cache_stats();
    pybind11::dict d;
    d["entries"] = s.entries, d["bytes"] = s.bytes, d["hits"] = s.hits, d["misses"] = s.misses;
    return d;
  }, "The transformed-weight cache: entries, bytes, hits and misses since import.");
}
