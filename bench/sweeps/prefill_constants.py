#!/usr/bin/env python3
"""Writes variants of a built-in kernel path that differ only in the CUDA
constants of their prefill steps, for one `kpath bench --kernel-path a,b,...`
run that compares them on the same device and model.

    bench/sweeps/prefill_constants.py OUT_DIR [BASE_PATH_JSON]

Prints the comma-separated list of the written files. Each variant is named
<base id>-<variant>; the variants are the table below (op -> constants), for
the tensor-core kernels (*_h16: TT tokens, NB output rows, KB steps of K; attention ROWS).
"""
import json
import os
import sys

from decode_constants import write_variants

QKVO = ("q_proj", "k_proj", "v_proj", "o_proj")
VARIANTS = {
    "attn-r16": {"attention": {"ROWS": 16}},
    "attn-r64": {"attention": {"ROWS": 64}},
    "mm-kb64": {op: {"KB": 64} for op in QKVO + ("down_proj",)},
    "down-nb128": {"down_proj": {"NB": 128}},
    "qkvo-tt128": {op: {"TT": 128} for op in QKVO},
}


def main():
    out = sys.argv[1]
    base_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "..", "kernel_paths", "gemma2-q4k-x8-h16.json")
    print(",".join(write_variants(out, json.load(open(base_file)), VARIANTS, lambda p: p["prefill"]["steps"])))


if __name__ == "__main__":
    main()
