"""scripts/gpu_check.sh, the one-call GPU check, exercised without a GPU: it must bring back its two files (a JSON
summary and a tarball of every log) whatever happens, list each stage's status, and skip, not start, a stage the
deadline leaves no time for. (On a GPU machine it builds, tests and benchmarks; here the CUDA tests are skipped.)"""
import json
import os
import subprocess
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(tmp_path, deadline, *stages):
    env = dict(os.environ, OUT=str(tmp_path), GPU_CHECK_DEADLINE=str(deadline))
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "gpu_check.sh"), *stages], env=env,
                       capture_output=True, text=True, timeout=300)
    summary = json.load(open(tmp_path / "gpu_check.json"))
    with tarfile.open(tmp_path / "gpu_check.tar.gz") as t:
        names = set(t.getnames())
    return r, summary, names


def test_stages_reported_and_logs_packed(tmp_path):
    r, summary, names = run(tmp_path, 120, "pytest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [(s["stage"], s["status"]) for s in summary["stages"]] == [("pytest", "ok")]
    assert summary["failed_tests"] == [] and int(summary["pytest"]["tests"]) > 0
    assert {"logs/pytest.log", "logs/test_cuda.xml", "logs/summary.txt"} <= names


@pytest.mark.skipif(subprocess.run(["bash", "-c", "command -v nvidia-smi"], capture_output=True).returncode == 0,
                    reason="a GPU machine: the bench stage would run")
def test_deadline_skips_and_failures_fail(tmp_path):
    # bench fails without a GPU (and says why); a deadline of 30 s leaves a stage 15 s: skipped, not started
    r, summary, _ = run(tmp_path, 60, "bench")
    stages = {s["stage"]: s for s in summary["stages"]}
    assert stages["bench"]["status"] == "failed" and any("cuda" in line for line in stages["bench"]["log_tail"])
    r2, summary2, _ = run(tmp_path, 30, "pytest")
    assert summary2["stages"][0]["status"] == "skipped"
    assert r.returncode != 0 and r2.returncode != 0
