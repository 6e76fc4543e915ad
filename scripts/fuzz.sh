#!/usr/bin/env bash
# Builds the libFuzzer targets (the `asan` preset: clang, ASan + UBSan, the same
# build whose unit tests scripts/test.sh runs under the sanitizers) and runs
# each for FUZZ_SECONDS (default 60) from its seed corpus; fails if any target
# crashes, leaks, times out on an input or passes the memory limit. A crashing
# input is saved as <build>/fuzz-artifacts/<target>-crash-<sha1>; reproduce it
# with `<build>/fuzz/<target> FILE`, fix it, and add it as a regression test
# (tests/data/fuzz_regressions/<target>/, which this script also replays).
#
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_BUILD    build directory (default build/asan, the preset's)
#   FUZZ_JOBS     build jobs and targets run at once (default: nproc)
#   FUZZ_TARGETS  targets to run (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build/asan}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=(${FUZZ_TARGETS:-gguf_fuzz kernel_path_fuzz tokenizer_fuzz cli_fuzz})

start=$(date +%s)
cmake --preset asan -B "$build" >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]}" gguf_seeds
echo "fuzz: built in $(($(date +%s) - start)) s"

# Seeds are rebuilt on every run; what the fuzzer finds goes to corpus/ (kept).
seeds="$build/fuzz-seeds"
rm -rf "$seeds"
mkdir -p "$seeds"/{gguf_fuzz,kernel_path_fuzz,tokenizer_fuzz,cli_fuzz} "$build/fuzz-artifacts"
"$build/fuzz/gguf_seeds" "$seeds/gguf_fuzz"
cp kernel_paths/*.json kernel_paths/presets/*.json tests/data/invalid_paths/*.json "$seeds/kernel_path_fuzz/"
cp fuzz/corpus/tokenizer/* "$seeds/tokenizer_fuzz/"
head -c 4000 README.md >"$seeds/tokenizer_fuzz/readme.txt"

# CLI seeds: command lines of README.md and the CLI tests, arguments separated by NUL.
n=0
while read -r line; do
  [ -z "$line" ] && continue
  printf '%s' "$line" | tr ' ' '\0' >"$seeds/cli_fuzz/line_$n"
  n=$((n + 1))
done <<'EOF'
run -p Jesus -n 64
run -m model.gguf -p Hello --temp 0.7 --top-k 40 --top-p 0.9 --min-p 0.05 --seed 1
run -p Jesus --backend vulkan --kernel-path gemma2-q4k-dequant-f32 --trace run.json --profile
run -p hi -n -5 --top-p 7 --ctx-size 99999999999 --repeat-last-n -1 --repeat-penalty 1.1
run --backend cpu --seed 18446744073709551615 -p And -n 24 --temp 1.0 --top-k 0
eval -m model.gguf --prompt-tokens prompts.txt --n-gen 16 --backend cpu
info model.gguf
tokenize -m model.gguf --ids-only --no-bos In
quantize in.gguf out.gguf --type q4_k_m
make-model --like gemma2-2b --type q4_k_m --seed 1 /tmp/g2b.gguf
paths list --json
paths show gemma2-q4k-fused --steps
paths validate my-path.json -m model.gguf --backend vulkan --features f16,subgroups --ctx-size 4096
paths diff gemma2-q4k-fused gemma2-q4k-dequant-f32 --kernel-path-dir /tmp
kernels list
kernels show matmul_q4k
devices
verify --backend cpu --kernel-path gemma2-q4k-fused
bench --backend cpu -n 8
--help
run --help
--version
EOF

# Dictionary: every subcommand and option name the app declares.
{
  echo '"\x00"'
  grep -oh 'add_\(option\|flag\|subcommand\)("[^"]*"' apps/kpath/*.cpp apps/kpath/*.h |
    sed 's/.*("//; s/"$//' | tr ',' '\n' | sort -u | sed 's/.*/"&"/'
  printf '"%s"\n' cpu vulkan cuda reference auto q4_k_m f16 -1 0 1e309 nan inf 18446744073709551616
} >"$seeds/cli.dict"

# target: max_len and extra flags. Longest seeds: gemma2.gguf 20 KB, paths 9 KB.
declare -A max_len=([gguf_fuzz]=32768 [kernel_path_fuzz]=16384 [tokenizer_fuzz]=4096 [cli_fuzz]=1024)
declare -A extra=([kernel_path_fuzz]="-dict=fuzz/kernel_path.dict" [cli_fuzz]="-dict=$seeds/cli.dict")

run_target() {
  local t=$1
  local corpus="$build/fuzz-corpus/$t"
  local dirs=("$corpus" "$seeds/$t")
  mkdir -p "$corpus"
  [ -d "tests/data/fuzz_regressions/$t" ] && dirs+=("tests/data/fuzz_regressions/$t")
  # shellcheck disable=SC2086
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=1024 -max_len="${max_len[$t]}" -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" ${extra[$t]:-} "${dirs[@]}" \
    >"$build/fuzz-$t.log" 2>&1
}

# Targets run $jobs at a time, each single-threaded.
start=$(date +%s)
failed=()
pids=()
names=()
for t in "${targets[@]}"; do
  run_target "$t" &
  pids+=($!)
  names+=("$t")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed+=("${names[0]}")
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
done

for t in "${targets[@]}"; do
  stats=$(grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$build/fuzz-$t.log" | awk '{print $2}' | paste -sd' ' -)
  echo "fuzz: $t: executions, peak RSS MB: ${stats:-none}; corpus $(ls "$build/fuzz-corpus/$t" | wc -l) inputs"
done
echo "fuzz: ran ${#targets[@]} targets in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "fuzz: $t FAILED (log: $build/fuzz-$t.log):" >&2
    grep -E 'ERROR|SUMMARY|check failed|runtime error|Test unit written' "$build/fuzz-$t.log" | head -20 >&2 || true
  done
  exit 1
fi
