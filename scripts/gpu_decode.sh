#!/usr/bin/env bash
# One call on a CUDA machine for decode work: the CUDA op tests of the decode
# kernels and the path tests, a greedy run on the kjv fixture, `kpath bench` of
# the fused path on make-model Gemma-2-2B Q4_K_M at depth 512 and 4096 (with
# the kernels of BASE_DIR too, when given: the same binary, the kernels as they
# were), and Nsight Compute's time and DRAM bytes for every kernel of decoded
# tokens.
#   scripts/gpu_decode.sh BIN_DIR OUT_DIR [BASE_DIR]
# BIN_DIR holds kpath, kp_cuda_tests and the shared libraries they need; the
# binaries read kernels/ and tests/data from the checkout they were built in
# (KP_BUILT_AT, linked to this one), so BASE_DIR is a checkout whose kernels/
# are an earlier version.
set -uo pipefail
bin=$(cd "$1" && pwd)
out=$2
base=${3:-}
source "$(dirname "$0")/gpu_common.sh"

cuda_tests "${KP_CUDA_FILTER:-*CudaOps*/attention*:*CudaOps*/matmul_q4k:*CudaOps*/matmul_q6k:*CudaOps*/matmul_norm_*:*CudaOps*/ffn_gate_up_*:*CudaOps*/rmsnorm*:*CudaOps*/*x8*:*CudaPath*}"
for p in ${KP_RUN_PATHS:-gemma2-q4k-fused gemma2-q4k-x8-h16}; do
  log "kjv greedy, $p"
  "$bin/kpath" run --backend cuda --kernel-path $p -p "In the beginning God created" -n 24 --temp 0 2>&1 |
    tail -4 | tee -a "$out/summary.txt"
done

wait "$mm" || { cat /tmp/mm.log; exit 1; }
bench_rows="^\| gemma|^\| (q|k|v|o|down)_proj |^\| (ffn_gate_up|attention|lm_head|ffn_residual|input_norm|attn_residual|post_attn_norm|rope_q) |^\| total"
paths=${KP_PATHS:-gemma2-q4k-x8-h16,gemma2-q4k-fused}
bench "new p512" --kernel-path "$paths" -p 512 -n 128 -r 3 --ops 8 --save "$out"
bench "new p4096" --kernel-path "$paths" -p 4096 -n 128 -r 2
if [ -n "$base" ]; then
  link "$(cd "$base" && pwd)"
  bench "base p512" --kernel-path gemma2-q4k-fused -p 512 -n 128 -r 3 --ops 8
  link "$here"
fi
log "trace: 4 decoded tokens on ${paths%%,*}"
"$bin/kpath" run -m "$model" --backend cuda --kernel-path "${paths%%,*}" -p "hello there" -n 4 --temp 0 \
  --trace "$out/trace.json" --profile 2>&1 | tail -12 | tee -a "$out/summary.txt"
if [ "${KP_NCU:-1}" = 1 ] && command -v ncu >/dev/null; then
  log "ncu: decode kernels"
  # Kernels of the 3rd and 4th decoded tokens (the prompt's prefill comes first).
  timeout 240 ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum \
    --csv --page raw --print-units base --launch-skip 800 --launch-count 700 \
    "$bin/kpath" run -m "$model" --backend cuda --kernel-path "${paths%%,*}" -p "hello there" -n 8 --temp 0 \
    >"$out/ncu.csv" 2>"$out/ncu.err"
  python3 - "$out/ncu.csv" <<'PY' | tee -a "$out/summary.txt"
import csv, sys, collections
rows = list(csv.reader(open(sys.argv[1])))
hdr = next(i for i, r in enumerate(rows) if r and r[0] == "ID")
h = rows[hdr]; data = rows[hdr + 2:]
ki, ti, bi = h.index("Kernel Name"), h.index("gpu__time_duration.sum"), h.index("dram__bytes_read.sum")
gi = h.index("Grid Size")
agg = collections.OrderedDict()
for r in data:
    try: t = float(r[ti].replace(",", "")); b = float(r[bi].replace(",", ""))
    except (ValueError, IndexError): continue
    a = agg.setdefault(f"{r[ki]} {r[gi]}", [0, 0.0, 0.0]); a[0] += 1; a[1] += t; a[2] += b
tot = sum(a[1] for a in agg.values())
print(f"{'kernel grid':56s} {'n':>5s} {'us/launch':>10s} {'share':>6s} {'TB/s':>6s}")
for k, (n, t, b) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
    print(f"{k[:56]:56s} {n:5d} {t/n/1e3:10.2f} {100*t/tot:5.1f}% {b/t/1e3 if t else 0:6.2f}")
print(f"total {tot/1e3:.1f} us over {sum(a[0] for a in agg.values())} launches")
PY
fi
if [ -n "${KP_NCU_DETAIL:-}" ] && command -v ncu >/dev/null; then
  # Stall reasons, occupancy and memory throughput of one launch of each kernel
  # whose name matches the regex KP_NCU_DETAIL, in a decoded token.
  log "ncu detail: $KP_NCU_DETAIL"
  timeout 150 ncu --clock-control none --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section LaunchStats -k "regex:$KP_NCU_DETAIL" --launch-skip 60 --launch-count 3 \
    "$bin/kpath" run -m "$model" --backend cuda --kernel-path "${paths%%,*}" -p "hello there" -n 8 --temp 0 \
    >"$out/ncu-detail.txt" 2>&1
  grep -E "^  [a-z_0-9]+_main|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Stall|Warp Cycles Per Issued|Issued Warp|L1/TEX Hit|L2 Hit|Block Limit" \
    "$out/ncu-detail.txt" | head -80 | tee -a "$out/summary.txt"
fi
if [ "${KP_SWEEP:-0}" = 1 ]; then
  sweep_base=${KP_SWEEP_BASE:-gemma2-q4k-fused-max}
  variants=$(python3 bench/sweeps/decode_constants.py "$out/sweep" "kernel_paths/$sweep_base.json")
  bench "sweep p512" --kernel-path "$sweep_base,$variants" -p 512 -n 128 -r 2
  attn=$(echo "$variants" | tr , '\n' | grep attn | paste -sd,)
  [ -n "$attn" ] && bench "sweep p4096 attention" --kernel-path "$attn" -p 4096 -n 64 -r 1
fi
