#!/usr/bin/env bash
# One-shot check of fastconv's CUDA backend on a GPU machine (Python with torch+CUDA, nvcc, ninja; no
# network needed). Run from the repository root:  OUT=/some/dir bash scripts/gpu_check.sh [stage ...]
# Stages (default: all, in this order; each stage logs to $OUT/<stage>.log and the script goes on after a
# failure, exiting non-zero at the end if any stage failed):
#   info     nvidia-smi, nvcc, torch versions
#   build    in-place build of the CUDA extension (MAX_JOBS=16, TORCH_CUDA_ARCH_LIST=9.0 unless set)
#   ctest    CMake build of the torch-free kernels + ctest (test_cuda_kernels compares CUDA with the CPU)
#   pytest   tests/test_cuda.py (+ the 64-bit indexing case: FASTCONV_CUDA_LARGE=1)
#   sanitize compute-sanitizer memcheck and racecheck on a small subset
#   bench    python -m fastconv.bench --device cuda --suite quick (float16, float32) -> $OUT/bench_*.json
# Each call of the device tool is limited to 10 minutes: run `build` alone first, then the others.
set -u
OUT=${OUT:-/tmp/fastconv_gpu_check}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
PY=${PYTHON:-python}
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(info build ctest pytest sanitize bench)
FAILED=()

run_stage() {
  local name=$1; shift
  echo "=== $name: $*" | tee -a "$OUT/summary.txt"
  local t0=$SECONDS
  if "$@" > "$OUT/$name.log" 2>&1; then
    echo "    ok ($((SECONDS - t0)) s)" | tee -a "$OUT/summary.txt"
  else
    echo "    FAILED rc=$? ($((SECONDS - t0)) s), last lines:" | tee -a "$OUT/summary.txt"
    tail -25 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
    FAILED+=("$name")
  fi
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
    cmake --build build-cuda-ctest -j "$MAX_JOBS" && ctest --test-dir build-cuda-ctest --output-on-failure
}

stage_pytest() {
  FASTCONV_CUDA_LARGE=1 $PY -m pytest tests/test_cuda.py -q -x -p no:cacheprovider --junitxml="$OUT/test_cuda.xml"
}

stage_sanitize() {
  local cs=${COMPUTE_SANITIZER:-compute-sanitizer}
  command -v "$cs" > /dev/null || cs=/usr/local/cuda/bin/compute-sanitizer
  local sel="test_conv2d and 16x8x8x32 or test_max_pool2d or test_avg_pool2d or test_adaptive_pool2d or test_max_unpool2d or test_conv_transpose2d or test_deterministic"
  for tool in memcheck racecheck; do
    echo "--- $tool"
    "$cs" --tool "$tool" --error-exitcode 9 --target-processes all \
      $PY -m pytest tests/test_cuda.py -q -x -p no:cacheprovider -k "($sel) and float32 and contiguous" || return 1
  done
  if [ -x build-cuda-ctest/test_cuda_kernels ]; then
    "$cs" --tool memcheck --error-exitcode 9 build-cuda-ctest/test_cuda_kernels || return 1
    "$cs" --tool racecheck --error-exitcode 9 build-cuda-ctest/test_cuda_kernels || return 1
  fi
}

stage_bench() {
  for dt in float16 float32; do
    $PY -m fastconv.bench --device cuda --suite quick --dtype "$dt" --json "$OUT/bench_cuda_$dt.json" || return 1
  done
}

for s in "${STAGES[@]}"; do
  run_stage "$s" "stage_$s"
done
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "failed stages: ${FAILED[*]}" | tee -a "$OUT/summary.txt"
  exit 1
fi
echo "all stages passed" | tee -a "$OUT/summary.txt"
