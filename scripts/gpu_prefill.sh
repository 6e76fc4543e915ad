#!/usr/bin/env bash
# One call on a CUDA machine for prefill work: the CUDA op tests of the prefill
# kernels and the path tests, `kpath bench` of prefill (pp512, pp4096) on
# make-model Gemma-2-2B Q4_K_M, a sweep of the prefill constants, and Nsight
# Compute's time per kernel of one 512-token prefill.
#   scripts/gpu_prefill.sh BIN_DIR OUT_DIR
# BIN_DIR holds kpath, kp_cuda_tests and the shared libraries they need; the
# binaries read kernels/ and tests/data from the checkout they were built in
# (KP_BUILT_AT, linked to this one).
# Environment: KP_CUDA_FILTER (gtest filter), KP_PATHS (paths to bench),
# KP_BATCH (-b, default 512), KP_SWEEP=1 (constants sweep), KP_NCU=1 (ncu).
set -uo pipefail
bin=$(cd "$1" && pwd)
out=$2
mkdir -p "$out"
here=$PWD
built_at=${KP_BUILT_AT:-$PWD}
if [ "$built_at" != "$PWD" ]; then
  [ -d "$built_at" ] && [ ! -L "$built_at" ] && { echo "$built_at is a directory: cannot link it" >&2; exit 1; }
  mkdir -p "$(dirname "$built_at")"; ln -sfn "$here" "$built_at"
fi
export LD_LIBRARY_PATH="$bin:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
log() { echo "== $*" | tee -a "$out/summary.txt"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/device.txt"
model=/tmp/g2b-q4km.gguf
"$bin/kpath" make-model --like gemma2-2b --type q4_k_m --seed 1 "$model" >/tmp/mm.log 2>&1 &
mm=$!

log "cuda op and path tests"
timeout 300 "$bin/kp_cuda_tests" --gtest_filter="${KP_CUDA_FILTER:-*CudaOps*/*h16*:*CudaPath*}" \
  >"$out/cuda_tests.txt" 2>&1
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED TEST|rel_l2|Failure" "$out/cuda_tests.txt" | head -40 | tee -a "$out/summary.txt"

wait "$mm" || { cat /tmp/mm.log; exit 1; }
batch=${KP_BATCH:-512}
bench() {  # label, args...
  local label=$1; shift
  log "bench $label"
  local file="$out/bench-${label// /-}.txt"
  timeout 300 "$bin/kpath" bench -m "$model" --backend cuda "$@" >"$file" 2>&1
  grep -E "^\| gemma|^\| total|rror" "$file" | tee -a "$out/summary.txt"
}
paths=${KP_PATHS:-gemma2-q4k-x8-h16,gemma2-q4k-fused}
bench "pp512" --kernel-path "$paths" -p 512 -n 32 -b "$batch" -r 3 --save "$out"
bench "pp4096" --kernel-path "$paths" -p 4096 -n 32 -b "$batch" -r 2
if [ "${KP_SWEEP:-0}" = 1 ]; then
  variants=$(python3 bench/sweeps/prefill_constants.py "$out/sweep" "kernel_paths/${paths%%,*}.json")
  bench "sweep pp512" --kernel-path "${paths%%,*},$variants" -p 512 -n 0 -b "$batch" -r 3
fi
if [ "${KP_NCU:-1}" = 1 ] && command -v ncu >/dev/null; then
  log "ncu: kernels of one ${batch}-token prefill on ${paths%%,*}"
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active \
    --csv --page raw --print-units base --launch-count 400 \
    "$bin/kpath" bench -m "$model" --backend cuda --kernel-path "${paths%%,*}" -p 512 -n 0 -b "$batch" -r 1 --bandwidth-mib 0 \
    >"$out/ncu.csv" 2>"$out/ncu.err"
  python3 - "$out/ncu.csv" <<'PY' | tee -a "$out/summary.txt"
import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))
hdr = next(i for i, r in enumerate(rows) if r and r[0] == "ID")
h = rows[hdr]; data = rows[hdr + 2:]
ki, ti, gi = h.index("Kernel Name"), h.index("gpu__time_duration.sum"), h.index("Grid Size")
tc = h.index("sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active") if "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active" in h else None
agg = collections.OrderedDict()
for r in data:
    try: t = float(r[ti].replace(",", ""))
    except (ValueError, IndexError): continue
    try: p = float(r[tc].replace(",", "")) if tc is not None else 0.0
    except ValueError: p = 0.0
    a = agg.setdefault(f"{r[ki]} {r[gi]}", [0, 0.0, 0.0]); a[0] += 1; a[1] += t; a[2] += p * t
tot = sum(a[1] for a in agg.values())
print(f"{'kernel grid':60s} {'n':>5s} {'us/launch':>10s} {'share':>6s} {'tc%':>5s}")
for k, (n, t, p) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{k[:60]:60s} {n:5d} {t/n/1e3:10.2f} {100*t/tot:5.1f}% {p/t if t else 0:5.1f}")
print(f"total {tot/1e3:.1f} us over {sum(a[0] for a in agg.values())} launches")
PY
fi
