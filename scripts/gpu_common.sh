# Sourced by scripts/gpu_decode.sh and scripts/gpu_prefill.sh: what both do
# before their own work on a CUDA machine. Expects bin (the binaries' folder)
# and out (the results' folder); defines here, built_at, link, log, model, mm,
# cuda_tests and bench, writes out/device.txt and starts building the model.
mkdir -p "$out"
here=$PWD
built_at=${KP_BUILT_AT:-$PWD}
# The binaries find kernels/ at the path they were built in: a link from there
# to the checkout in use (never over a real directory).
link() {
  [ -d "$built_at" ] && [ ! -L "$built_at" ] && { echo "$built_at is a directory: cannot link it" >&2; return 1; }
  mkdir -p "$(dirname "$built_at")"; ln -sfn "$1" "$built_at"
}
[ "$built_at" != "$PWD" ] && link "$here"
export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
log() { echo "== $*" | tee -a "$out/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
model=/tmp/g2b-q4km.gguf
"$bin/kpath" make-model --like gemma2-2b --type q4_k_m --seed 1 "$model" >/tmp/mm.log 2>&1 &
mm=$!

cuda_tests() {  # gtest filter
  log "cuda op and path tests"
  timeout 300 "$bin/kp_cuda_tests" --gtest_filter="$1" >"$out/cuda_tests.txt" 2>&1
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST|rel_l2|Failure" "$out/cuda_tests.txt" | head -40 |
    tee -a "$out/summary.txt"
}

bench() {  # label, kpath bench args... (the rows matching $bench_rows go to the summary)
  local label=$1; shift
  log "bench $label"
  local file="$out/bench-${label// /-}.txt"
  timeout 300 "$bin/kpath" bench -m "$model" --backend cuda "$@" >"$file" 2>&1
  grep -E "$bench_rows|rror" "$file" | tee -a "$out/summary.txt"
}
