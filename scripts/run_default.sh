#!/usr/bin/env bash
# Installs the dependencies, builds kpath (release) and generates text with the
# embedded default model, streaming it to the terminal. Extra arguments go to
# `kpath run` (e.g. -p "And God said" -n 64).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target kpath
if [ $# -eq 0 ]; then
  set -- -p "In the beginning God created" -n 96 --seed 1
fi
exec ./build/release/apps/kpath run "$@"
