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
# KP_BATCH (-ub: rows per prefill dispatch, default 512), KP_SWEEP=1 (constants sweep), KP_NCU=1 (ncu).
set -uo pipefail
bin=$(cd "$1" && pwd)
out=$2
source "$(dirname "$0")/gpu_common.sh"

cuda_tests "${KP_CUDA_FILTER:-*CudaOps*/*h16*:*CudaPath*}"

wait "$mm" || { cat /tmp/mm.log; exit 1; }
batch=${KP_BATCH:-512}
bench_rows="^\| gemma|^\| total"
paths=${KP_PATHS:-gemma2-q4k-x8-h16,gemma2-q4k-fused}
bench "pp512" --kernel-path "$paths" -p 512 -n 32 -ub "$batch" -r 3 --save "$out"
bench "pp4096" --kernel-path "$paths" -p 4096 -n 32 -ub "$batch" -r 2
if [ "${KP_SWEEP:-0}" = 1 ]; then
  variants=$(python3 bench/sweeps/prefill_constants.py "$out/sweep" "kernel_paths/${paths%%,*}.json")
  bench "sweep pp512" --kernel-path "${paths%%,*},$variants" -p 512 -n 0 -ub "$batch" -r 3
fi
if [ "${KP_NCU:-1}" = 1 ] && command -v ncu >/dev/null; then
  log "ncu: kernels of one ${batch}-token prefill on ${paths%%,*}"
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active \
    --csv --page raw --print-units base --launch-count 400 \
    "$bin/kpath" bench -m "$model" --backend cuda --kernel-path "${paths%%,*}" -p 512 -n 0 -ub "$batch" -r 1 --bandwidth-mib 0 \
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
