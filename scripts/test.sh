#!/usr/bin/env bash
# Installs the dependencies, builds kpath and runs the whole test suite:
# the release build's tests (CPU, Vulkan on whatever device is present —
# lavapipe on a CPU-only machine —, CUDA compile checks and GPU tests that skip
# without a GPU), then the unit tests again under ASan + UBSan (LeakSanitizer
# included), then the fuzz targets for 60 s each (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
jobs=$(nproc)

cmake --preset release
cmake --build --preset release -j "$jobs"
ctest --preset release -j "$jobs" --timeout 1500

cmake --preset asan
cmake --build --preset asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --preset asan -j "$jobs" --timeout 1500 -L cpu

# The libFuzzer targets (clang, ASan + UBSan), 60 s each, as many at a time as there are cores.
./scripts/fuzz.sh
