#!/usr/bin/env bash
# Installs the dependencies, builds kpath and runs the whole test suite:
# the release build's tests (CPU, Vulkan on whatever device is present —
# lavapipe on a CPU-only machine —, CUDA compile checks and GPU tests that skip
# without a GPU), the unit tests again under ASan + UBSan (LeakSanitizer
# included), then the fuzz targets for 60 s each (scripts/fuzz.sh). The `asan`
# preset is one clang build for both the sanitizer unit tests and the fuzz
# targets. Tests labelled `slow` (the long soaks) are left out: run them by hand
# with `ctest --test-dir build/release -L slow`.
#
# Compiles go through ccache (cache in build/ccache), so a rerun in the same
# checkout only recompiles what changed. Each phase prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
phase_start=$(date +%s)
phase() {  # prints how long the phase that just ended took
  local now
  now=$(date +%s)
  echo "test.sh: $1 took $((now - phase_start)) s"
  phase_start=$now
}

./scripts/install_deps.sh
phase "install_deps"

cmake --preset release
cmake --preset asan
phase "configure"
cmake --build --preset release -j "$jobs"
phase "release build"

# The release tests and the sanitizer build run side by side: the tests'
# tail (a few long Vulkan tests on lavapipe) would otherwise leave a core idle.
log=build/release/ctest.log
ctest --preset release -j "$jobs" --timeout 1500 >"$log" 2>&1 &
release_tests=$!
asan_status=0
cmake --build --preset asan -j "$jobs" || asan_status=$?
phase "asan build (beside the release tests)"
release_status=0
wait "$release_tests" || release_status=$?
phase "release tests (after the asan build)"
cat "$log"
[ "$release_status" -eq 0 ] || { echo "test.sh: release tests failed" >&2; exit "$release_status"; }
[ "$asan_status" -eq 0 ] || { echo "test.sh: asan build failed" >&2; exit "$asan_status"; }

# The asan test preset runs the `cpu` label: the Vulkan drivers are not instrumented.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --preset asan -j "$jobs" --timeout 1500
phase "asan tests"

# The libFuzzer targets (the same asan build), 60 s each, as many at a time as there are cores.
./scripts/fuzz.sh
phase "fuzz"
