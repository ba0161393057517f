"""pytest-benchmark view of the layer zoo (not part of CI: `pip install pytest-benchmark`, then
    PYTHONPATH=$PWD python -m pytest benchmarks/test_bench_zoo.py -k "quick and conv2d" --benchmark-columns=min,median,max
). Each zoo case x implementation (torch, fastconv) x mode (fwd, fwdbwd) is one benchmark, on the same
rotating random data the CLI uses. The CLI (`python -m fastconv.bench`) is the reference tool: it interleaves
the two implementations and checks correctness first; this file gives pytest-benchmark's statistics and its
comparison/history features (--benchmark-save, --benchmark-compare)."""
import itertools
import zlib

import pytest
import torch
import torch.nn.functional as TF

pytest.importorskip("pytest_benchmark")

import fastconv  # noqa: E402,F401
import fastconv.nn.functional as FF  # noqa: E402
from fastconv.bench import checks, zoo  # noqa: E402
from fastconv.bench.workloads import Workload  # noqa: E402

CASES = zoo.load()
IMPLS = {"torch": TF, "fastconv": FF}
N_SETS = 3


def _params():
    for case, impl, mode in itertools.product(CASES, IMPLS, ("fwd", "fwdbwd")):
        marks = [getattr(pytest.mark, s) for s in case.suites]
        yield pytest.param(case, impl, mode, id=f"{case.name}-{impl}-{mode}-{case.op}-{'-'.join(case.suites)}",
                           marks=marks)


@pytest.mark.parametrize("case,impl,mode", list(_params()))
def test_zoo_case(benchmark, case, impl, mode):
    if not hasattr(IMPLS[impl], case.op):
        pytest.skip(f"fastconv.nn.functional has no {case.op} yet")
    wl = Workload(case, "cpu", torch.float32, "nchw")
    gen = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))
    sets = [wl.make_data(gen) for _ in range(N_SETS)]
    if impl == "fastconv":
        result = checks.check(wl, FF, TF, sets[0])
        assert result["passed"], result["message"]
    call = wl.forward if mode == "fwd" else wl.forward_backward
    counter = itertools.count()
    benchmark.extra_info.update(case=case.name, network=case.network, op=case.op, mode=mode, impl=impl,
                                flops_fwd=wl.flops())
    benchmark.pedantic(lambda: call(IMPLS[impl], sets[next(counter) % N_SETS]), rounds=5, iterations=1,
                       warmup_rounds=1)
