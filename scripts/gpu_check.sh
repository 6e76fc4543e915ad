#!/usr/bin/env bash
# One call on a GPU machine: the CUDA and Vulkan test suites, the four built-in
# paths on the kjv fixtures against the CPU backend, and decode/prefill speed of
# each path on make-model Gemma-2-2B shapes (Q4_K_M and F16).
#   scripts/gpu_check.sh BIN_DIR OUT_DIR [quick]
# BIN_DIR holds kpath, kp_vulkan_tests, kp_cuda_tests (and any libraries they need).
set -uo pipefail
bin=$1
out=$2
mode=${3:-full}
mkdir -p "$out"
export LD_LIBRARY_PATH="$bin:${LD_LIBRARY_PATH:-}"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
log "devices"; "$bin/kpath" devices 2>&1 | tee -a "$out/summary.txt"

log "cuda tests"
"$bin/kp_cuda_tests" --gtest_brief=1 2>&1 | tail -40 | tee "$out/cuda_tests.txt" | tail -15 | tee -a "$out/summary.txt"
log "vulkan tests"
"$bin/kp_vulkan_tests" --gtest_brief=1 2>&1 | tail -40 | tee "$out/vulkan_tests.txt" | tail -15 | tee -a "$out/summary.txt"

for be in cuda vulkan; do
  for p in gemma2-q4k-fused gemma2-q4k-dequant-f32 gemma2-q4k-dequant-f16; do
    log "$be $p kjv q4_k_m"
    "$bin/kpath" run --backend "$be" --kernel-path "$p" -p "In the beginning God created" -n 24 --temp 0 2>&1 | tail -4 | tee -a "$out/summary.txt"
  done
  log "$be gemma2-f16-native kjv f16"
  "$bin/kpath" run -m tests/data/kjv-tiny-f16.gguf --backend "$be" --kernel-path gemma2-f16-native -p "In the beginning God created" -n 24 --temp 0 2>&1 | tail -4 | tee -a "$out/summary.txt"
done
[ "$mode" = quick ] && exit 0

log "make-model gemma2-2b"
"$bin/kpath" make-model --like gemma2-2b --type q4_k_m --seed 1 /tmp/g2b-q4km.gguf 2>&1 | tail -2
"$bin/kpath" make-model --like gemma2-2b --type f16 --seed 1 /tmp/g2b-f16.gguf 2>&1 | tail -2
for be in cuda vulkan; do
  log "bench $be q4_k_m"
  "$bin/kpath" bench -m /tmp/g2b-q4km.gguf --backend "$be" \
    --kernel-path gemma2-q4k-fused,gemma2-q4k-dequant-f32,gemma2-q4k-dequant-f16 -p 512 -n 128 -r 3 \
    --json "$out/bench-$be-q4km.json" 2>&1 | tee -a "$out/summary.txt"
  log "bench $be f16"
  "$bin/kpath" bench -m /tmp/g2b-f16.gguf --backend "$be" --kernel-path gemma2-f16-native -p 512 -n 128 -r 3 \
    --json "$out/bench-$be-f16.json" 2>&1 | tee -a "$out/summary.txt"
done
