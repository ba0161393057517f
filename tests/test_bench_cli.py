"""Smoke test of the benchmark command line (`python -m fastconv.bench`): one tiny conv2d case end to end,
JSON structure and the correctness check. Timings themselves are not asserted (the CI machine is shared)."""
import json
import os
import platform
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "fastconv.bench", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_quick_conv2d_case_writes_json_and_passes(tmp_path):
    out = tmp_path / "bench.json"
    proc = _run(["--suite", "quick", "--ops", "conv2d", "--case", "mnist.conv1", "--max-cases", "1",
                 "--budget", "0.3", "--min-repeats", "3", "--threads", "1", "--json", str(out)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mnist.conv1" in proc.stdout and "geometric mean" in proc.stdout
    assert "fastconv.bench: 100%" in proc.stderr and "1/1" in proc.stderr  # tqdm's bar, on stderr
    doc = json.loads(out.read_text())
    assert doc["schema"] == 1
    assert doc["config"]["suite"] == "quick" and doc["config"]["ops"] == ["conv2d"]
    assert doc["config"]["remeasure"] == 2 and doc["config"]["noise_limits"]["implausible"] > 1
    machine = doc["machine"]
    for key in ("cpu_model", "logical_cpus", "isa_flags", "torch", "fastconv", "threads"):
        assert key in machine
    probes = doc["probes"]
    assert probes["fma_gflops"]["float32"] > 0 and probes["fma_gflops"]["float64"] > 0
    assert probes["stream_gbs"] > 0
    [rec] = doc["results"]
    assert rec["name"] == "mnist.conv1" and rec["op"] == "conv2d" and rec["status"] == "ok"
    check = rec["check"]
    assert check["passed"] and set(check["errors"]) == {"output", "grad_input", "grad_weight", "grad_bias"}
    assert max(check["errors"].values()) <= check["tolerance"]
    for mode in ("fwd", "fwdbwd"):
        m = rec["modes"][mode]
        for impl in ("torch", "fastconv"):
            stats = m[impl]
            assert stats["repeats"] == len(stats["times_ms"]) >= 3
            assert stats["min_ms"] <= stats["median_ms"] <= stats["max_ms"]
        assert m["speedup"] > 0 and m["unit"] == "GFLOP/s" and m["fastconv_rate"] > 0
        assert isinstance(m["noisy"], bool) and 1 <= m["stability"]["attempts"] <= 3  # timings not asserted
    assert rec["work"]["fwdbwd"]["flops"] == 3 * rec["work"]["fwd"]["flops"]
    assert doc["config"]["heap"]["steady_heap"] == (platform.libc_ver()[0] == "glibc")
    # The case is in the geometric mean or, when its timings stay unstable (a loaded CI machine), marked noisy and
    # left out of it: one or the other, never both.
    summary = doc["summary"]["geomean_speedup"]
    for mode in ("fwd", "fwdbwd"):
        assert summary[f"{mode}_cases"] + summary[f"{mode}_noisy"] == 1
        assert summary[f"{mode}_noisy"] == int(rec["modes"][mode]["noisy"])


def test_bad_arguments_exit_2_with_a_message():
    proc = _run(["--ops", "conv9d", "--list"])
    assert proc.returncode == 2 and "unknown op" in proc.stderr
    proc = _run(["--device", "cpu", "--dtype", "float16", "--list"])
    assert proc.returncode == 2 and "float16" in proc.stderr
    import torch

    if not torch.cuda.is_available():
        proc = _run(["--device", "cuda", "--dtype", "float16"])
        assert proc.returncode == 2 and "no CUDA device" in proc.stderr


def test_zoo_is_valid_and_covers_every_op():
    from fastconv.bench import zoo

    cases = zoo.load()  # validates ops, suites, ranks, unique names
    assert {c.op for c in cases} == set(zoo.ALL_OPS)
    assert 12 <= len(zoo.select(cases, "quick")) <= 18
    assert len(zoo.select(cases, "full")) == len(cases)


def test_models_runs_whole_networks_after_a_check(tmp_path):
    """`--models`: two small networks (32x32 inputs, batch 2), both layouts, both modes, JSON and table."""
    out = tmp_path / "models.json"
    proc = _run(["--models", "resnet18,unet", "--batch", "2", "--size", "32", "--reps", "1", "--layout", "both",
                 "--threads", "1", "--json", str(out)], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "geometric mean speed-up, training_step" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["kind"] == "models" and doc["config"]["models"] == ["resnet18", "unet"]
    runs = {(r["model"], r["layout"], r["mode"]) for r in doc["results"]}
    assert runs == {(m, lay, mode) for m in ("resnet18", "unet") for lay in ("nchw", "nhwc")
                    for mode in ("inference", "training_step")}
    for r in doc["results"]:
        assert r["status"] == "ok" and r["check"]["passed"] and r["check"]["reference"] == "torch float64"
        assert r["check"]["fastconv"]["output"] < 1e-4 and r["check"]["fastconv"]["first_weight_grad"] < 1e-3
        assert r["torch_ms"] > 0 and r["fastconv_ms"] > 0 and len(r["torch_times_ms"]) == 1
    assert doc["summary"]["inference"]["runs"] == 4
    assert doc["config"]["heap"]["steady_heap"] == (platform.libc_ver()[0] == "glibc")


def test_models_system_malloc_and_fold_bn_are_recorded(tmp_path):
    """--system-malloc is recorded; --fold-bn adds inference with ResNet-18's 20 BatchNorms folded, checked first."""
    out = tmp_path / "models.json"
    proc = _run(["--models", "resnet18", "--batch", "2", "--size", "32", "--reps", "1", "--threads", "1",
                 "--system-malloc", "--fold-bn", "--json", str(out)], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["config"]["heap"] == {"steady_heap": False, "reason": "--system-malloc"} and doc["config"]["fold_bn"]
    assert "heap: as the system set it (--system-malloc)" in proc.stdout
    assert "geometric mean speed-up, inference_bn_folded" in proc.stdout
    (folded,) = [r for r in doc["results"] if r["mode"] == "inference_bn_folded"]
    assert folded["status"] == "ok" and folded["folded_batchnorms"] == 20 and folded["check"]["passed"]
    assert folded["check"]["fastconv"]["output"] < 1e-4 and folded["fastconv_ms"] > 0
    assert doc["summary"]["inference_bn_folded"]["runs"] == 1


def test_steady_heap_keeps_freed_blocks():
    """After steady_heap(), a 64 MB tensor is carved from the heap rather than mmap()ed, and freeing it keeps its
    pages in the heap for the next one; with the system's thresholds it is an mmap() that free() unmaps. Checked
    on glibc's own books (mallinfo2), which are deterministic; page-fault counts are not (heap fragmentation by
    interleaved small blocks decides whether a reused block needs a few new pages)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's mallopt")
    code = ("import ctypes, sys, torch\n"
            "from fastconv.bench.allocator import steady_heap\n"
            "class Info(ctypes.Structure):\n"
            "    _fields_ = [(n, ctypes.c_size_t) for n in ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd',\n"
            "                'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost')]\n"
            "libc = ctypes.CDLL('libc.so.6')\n"
            "if not hasattr(libc, 'mallinfo2'): print('skip'); sys.exit()\n"
            "libc.mallinfo2.restype = Info\n"
            "if sys.argv[1] == 'steady': assert steady_heap()['steady_heap']\n"
            "before = libc.mallinfo2()\n"
            "t = torch.ones(16 << 20)\n"
            "live = libc.mallinfo2()\n"
            "del t\n"
            "after = libc.mallinfo2()\n"
            "print(live.hblkhd - before.hblkhd, live.uordblks - before.uordblks, after.hblkhd - before.hblkhd,\n"
            "      after.arena - live.arena, after.fordblks)\n")
    block = 64 << 20
    results = {}
    for mode in ("steady", "system"):
        proc = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        assert proc.returncode == 0, proc.stderr
        if proc.stdout.split() == ["skip"]:
            pytest.skip("glibc without mallinfo2")
        results[mode] = [int(v) for v in proc.stdout.split()]
    mmapped_live, heap_used, mmapped_after, heap_trimmed, free_after = results["steady"]
    assert mmapped_live == 0 and heap_used >= block, results        # carved from the heap, not mmap()ed
    assert heap_trimmed == 0 and free_after >= block, results       # kept, free, in the heap after del
    mmapped_live, _, mmapped_after, _, _ = results["system"]
    assert mmapped_live >= block and mmapped_after == 0, results    # the system's way: mmap(), then munmap()
