#!/usr/bin/env bash
# One-call check of fastconv's CUDA backend on a GPU machine (python3 with torch+CUDA, nvcc, cmake, ninja; no
# network). A lent GPU gives one call of at most 10 minutes and 8 files back, so everything runs in one call
# under a deadline and comes back as two files: $OUT/gpu_check.tar.gz (every log, the JUnit XML, the benchmark
# JSONs) and $OUT/gpu_check.json (per stage: status, seconds, last log lines; the failed pytest cases).
#   OUT=/some/dir bash scripts/gpu_check.sh [stage ...]
# Stages (default: all, in this order; a failed stage does not stop the others):
#   info      nvidia-smi, nvcc, torch versions
#   build     in-place build of the extension with its CUDA kernels (MAX_JOBS=16, TORCH_CUDA_ARCH_LIST=9.0)
#   ctest     CMake build of the torch-free kernel tests; test_cuda_kernels (it compares every CUDA kernel with the
#             CPU's) with the tensor cores' 64 x 64 tiles, again with their 128 x 128 tiles, and under compute-sanitizer
#             memcheck
#   pytest    tests/test_cuda.py, without -x: every failure is listed (-rf); FASTCONV_CUDA_LARGE=1
#   sanitize  compute-sanitizer memcheck on a subset of tests/test_cuda.py (PYTORCH_NO_CUDA_MEMORY_CACHING=1)
#   bench     python3 -m fastconv.bench --device cuda --layout nhwc on the issue's target layers (ResNet-50's 3x3
#             and 1x1, MobileNet's depthwise, pooling), float16 and bfloat16, against cuDNN with
#             torch.backends.cudnn.benchmark = True
# GPU_CHECK_DEADLINE (seconds, default 470) bounds the whole run: each stage gets what is left minus a reserve
# for packing the results, and a stage that would start with under 20 s left is skipped (recorded as such).
set -u
OUT=${OUT:-/tmp/fastconv_gpu_check}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
PY=${PYTHON:-python3}
CS=${COMPUTE_SANITIZER:-compute-sanitizer}
command -v "$CS" > /dev/null || CS=/usr/local/cuda/bin/compute-sanitizer
DEADLINE=${GPU_CHECK_DEADLINE:-470}
RESERVE=15
LOGS="$OUT/logs"
mkdir -p "$LOGS"
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(info build ctest pytest sanitize bench)
RESULTS=()  # "name status seconds"

run_stage() {
  local name=$1
  local left=$((DEADLINE - RESERVE - SECONDS))
  if [ $left -lt 20 ]; then
    echo "=== $name: skipped (${left} s left)" | tee -a "$LOGS/summary.txt"
    RESULTS+=("$name skipped 0")
    return
  fi
  echo "=== $name (budget ${left} s)" | tee -a "$LOGS/summary.txt"
  local t0=$SECONDS rc=0
  # the stage runs in its own bash under timeout, so a hung build or test cannot eat the other stages' time
  timeout --kill-after=5 "$left" bash -c "$(declare -f "stage_$name"); PY=$PY; LOGS=$LOGS; CS=$CS; BENCH_CASES='$BENCH_CASES'; stage_$name" \
    > "$LOGS/$name.log" 2>&1 || rc=$?
  local dt=$((SECONDS - t0)) status=ok
  [ $rc -ne 0 ] && status=failed
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status=timeout
  echo "    $status rc=$rc (${dt} s)" | tee -a "$LOGS/summary.txt"
  [ $status != ok ] && tail -15 "$LOGS/$name.log" | tee -a "$LOGS/summary.txt"
  RESULTS+=("$name $status $dt")
}

stage_info() {
  nvidia-smi || true
  nvcc --version || true
  $PY -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))"
}

stage_build() {
  FORCE_CUDA=1 $PY setup.py build_ext --inplace && $PY -m fastconv info &&
    $PY -c "import fastconv, sys; sys.exit(0 if fastconv.build_info()['cuda_built'] else 1)"
}

stage_ctest() {
  local arch=${TORCH_CUDA_ARCH_LIST//./}  # "8.0;9.0" -> "80;90"
  arch=${arch//+PTX/}
  cmake -S . -B build-cuda-ctest -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=${arch// /;}" &&
    cmake --build build-cuda-ctest -j "$MAX_JOBS" --target test_cuda_kernels || return 1
  local rc=0
  echo "--- test_cuda_kernels (tensor-core tiles 64 x 64)"
  build-cuda-ctest/test_cuda_kernels || rc=1
  echo "--- test_cuda_kernels (tensor-core tiles 128 x 128)"
  FASTCONV_CUDA_TILES=big build-cuda-ctest/test_cuda_kernels || rc=1
  echo "--- compute-sanitizer memcheck test_cuda_kernels"
  "$CS" --tool memcheck --error-exitcode 9 build-cuda-ctest/test_cuda_kernels || rc=1
  return $rc
}

stage_pytest() {
  FASTCONV_CUDA_LARGE=1 $PY -m pytest tests/test_cuda.py -q -rf -p no:cacheprovider --junitxml="$LOGS/test_cuda.xml"
}

stage_sanitize() {
  local sel="test_conv2d and 16x8x8x32 or test_max_pool2d or test_avg_pool2d or test_adaptive_pool2d or test_max_unpool2d or test_conv_transpose2d or test_deterministic"
  PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$CS" --tool memcheck --error-exitcode 9 --target-processes all \
    $PY -m pytest tests/test_cuda.py -q -rf -p no:cacheprovider -k "($sel) and float32 and contiguous"
}

# The issue's target layers: ResNet-50's 3x3 and 1x1 convolutions, MobileNet's depthwise ones, and pooling.
BENCH_CASES="resnet50.*,mobilenet.dw*,resnet18.maxpool,vgg16.pool3,densenet121.transition1.pool,resnet50.avgpool,segnet.pool1"

stage_bench() {
  local rc=0
  for dt in float16 bfloat16; do
    $PY -m fastconv.bench --device cuda --case "$BENCH_CASES" --layout nhwc --dtype "$dt" --budget 0.5 \
      --json "$LOGS/bench_cuda_$dt.json" || rc=1
  done
  return $rc
}

for s in "${STAGES[@]}"; do
  run_stage "$s"
done

# One JSON summary (stages, failed test ids from the JUnit XML, the benchmark geomeans) and one tarball.
printf '%s\n' "${RESULTS[@]}" > "$LOGS/stages.txt"
$PY - "$LOGS" "$OUT/gpu_check.json" <<'EOF' || echo "summary JSON failed" | tee -a "$LOGS/summary.txt"
import json, os, sys, xml.etree.ElementTree as ET
logs, out = sys.argv[1], sys.argv[2]
summary = {"stages": [], "failed_tests": [], "bench": {}}
for line in open(os.path.join(logs, "stages.txt")):
    if not line.strip():
        continue
    name, status, seconds = line.split()
    tail = []
    log = os.path.join(logs, f"{name}.log")
    if os.path.exists(log):
        tail = open(log, errors="replace").read().splitlines()[-20:]
    summary["stages"].append({"stage": name, "status": status, "seconds": int(seconds), "log_tail": tail})
xml = os.path.join(logs, "test_cuda.xml")
if os.path.exists(xml):
    root = ET.parse(xml).getroot()
    for case in root.iter("testcase"):
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                summary["failed_tests"].append({"test": f"{case.get('classname')}::{case.get('name')}",
                                                "message": (el.get("message") or "")[:500]})
    suite = root.find("testsuite") if root.tag == "testsuites" else root
    summary["pytest"] = {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")}
for dt in ("float16", "bfloat16"):
    path = os.path.join(logs, f"bench_cuda_{dt}.json")
    if os.path.exists(path):
        summary["bench"][dt] = json.load(open(path)).get("summary")
json.dump(summary, open(out, "w"), indent=1)
EOF
tar -czf "$OUT/gpu_check.tar.gz" -C "$OUT" logs
failed=$(printf '%s\n' "${RESULTS[@]}" | awk '$2 != "ok" {print $1}' | tr '\n' ' ')
if [ -n "$failed" ]; then
  echo "stages not ok: $failed" | tee -a "$LOGS/summary.txt"
  exit 1
fi
echo "all stages passed" | tee -a "$LOGS/summary.txt"
