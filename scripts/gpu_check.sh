#!/usr/bin/env bash
# One call on a GPU machine: the CUDA and Vulkan test suites (op harness at the
# fixture's and Gemma-2-2B shapes, the four built-in paths against the CPU
# backend), a short generation per path and backend on the kjv fixtures, and
# `kpath bench` of every built-in path on make-model Gemma-2-2B shapes (Q4_K_M
# and F16), saved as dated results.
#   scripts/gpu_check.sh BIN_DIR OUT_DIR [full|tests|bench]
# (tests: the suites and kjv runs; bench: the benchmarks; full: both, which
# can outlast a 10-minute call on a slow Vulkan driver.)
# BIN_DIR holds kpath, kp_cuda_tests, kp_vulkan_tests and any shared libraries
# they need (libfmt). Run it from the checkout the binaries were built from, or
# set KP_BUILT_AT to that checkout's path there: the tests find tests/data and
# kernels/ through it, so it is linked to this checkout first.
set -uo pipefail
bin=$(cd "$1" && pwd)
out=$2
mode=${3:-full}
# NVRTC compiles every kernel in CI already (tests/cuda/nvrtc_compile_test.cpp).
# The CudaFault tests fault their CUDA context: each runs in a process of its own.
cuda_filter=${KP_CUDA_FILTER:--NvrtcCompile.*:CudaFault.*}
mkdir -p "$out"
if [ -n "${KP_BUILT_AT:-}" ] && [ "$KP_BUILT_AT" != "$PWD" ]; then
  mkdir -p "$(dirname "$KP_BUILT_AT")" && ln -sfn "$PWD" "$KP_BUILT_AT"
fi
export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# NVIDIA's Vulkan ICD where the loader does not find it by itself.
if ! "$bin/kpath" devices 2>&1 | grep -qi nvidia && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
log() { echo "== $*" | tee -a "$out/summary.txt"; }
summary() { grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST" "$1" | head -40 | tee -a "$out/summary.txt"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
log "devices"; "$bin/kpath" devices 2>&1 | tee -a "$out/summary.txt"
if [ "$mode" != tests ]; then
  ( "$bin/kpath" make-model --like gemma2-2b --type q4_k_m --seed 1 /tmp/g2b-q4km.gguf >/tmp/mm-q4km.log 2>&1
    "$bin/kpath" make-model --like gemma2-2b --type f16 --seed 1 /tmp/g2b-f16.gguf >/tmp/mm-f16.log 2>&1 ) &
  make_models=$!
fi

if [ "$mode" != bench ]; then
log "cuda tests"; timeout 240 "$bin/kp_cuda_tests" --gtest_filter="$cuda_filter" >"$out/cuda_tests.txt" 2>&1
summary "$out/cuda_tests.txt"
for t in WithSyncEachDispatchTheErrorNamesTheStep AsAGraphTheErrorNamesTheStepsInFlight; do
  timeout 120 "$bin/kp_cuda_tests" --gtest_filter="CudaFault.$t" >>"$out/cuda_tests.txt" 2>&1
done
summary "$out/cuda_tests.txt"
log "vulkan tests"; timeout 240 "$bin/kp_vulkan_tests" >"$out/vulkan_tests.txt" 2>&1; summary "$out/vulkan_tests.txt"

for be in cuda vulkan; do
  for p in gemma2-q4k-fused gemma2-q4k-dequant-f32 gemma2-q4k-dequant-f16; do
    log "$be $p kjv q4_k_m"
    "$bin/kpath" run --backend "$be" --kernel-path "$p" -p "In the beginning God created" -n 24 --temp 0 2>&1 |
      tail -7 | tee -a "$out/summary.txt"
  done
  log "$be gemma2-f16-native kjv f16"
  "$bin/kpath" run -m tests/data/kjv-tiny-f16.gguf --backend "$be" --kernel-path gemma2-f16-native \
    -p "In the beginning God created" -n 24 --temp 0 2>&1 | tail -7 | tee -a "$out/summary.txt"
done
fi
[ "$mode" = tests ] && exit 0

wait "$make_models"
for be in cuda vulkan; do
  log "bench $be q4_k_m"
  "$bin/kpath" bench -m /tmp/g2b-q4km.gguf --backend "$be" \
    --kernel-path gemma2-q4k-fused,gemma2-q4k-dequant-f32,gemma2-q4k-dequant-f16 -p 512 -n 128 -r 3 \
    --save "$out" 2>&1 | tee -a "$out/summary.txt"
  log "bench $be f16"
  "$bin/kpath" bench -m /tmp/g2b-f16.gguf --backend "$be" --kernel-path gemma2-f16-native -p 512 -n 128 -r 3 \
    --save "$out" 2>&1 | tee -a "$out/summary.txt"
done
