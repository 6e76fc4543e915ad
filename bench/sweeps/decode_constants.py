#!/usr/bin/env python3
"""Writes variants of a built-in kernel path that differ only in the CUDA
constants of their decode steps, for one `kpath bench --kernel-path a,b,...`
run that compares them on the same device and model.

    bench/sweeps/decode_constants.py OUT_DIR [BASE_PATH_JSON]

Prints the comma-separated list of the written files. Each variant is named
<base id>-<variant>; the variants are the tables below (op -> constants):
X8_VARIANTS for a path whose id has -x8 (the 8-bit activation kernels),
VARIANTS otherwise. Steps of decode and postLayer (the output head) take them.
"""
import json
import os
import sys

VARIANTS = {
    "qkvo-w8k2": {op: {"WARPS": 8, "KSPLIT": 2} for op in ("q_proj", "k_proj", "v_proj", "o_proj")},
    "qkvo-r2": {op: {"ROWS": 2} for op in ("q_proj", "k_proj", "v_proj", "o_proj")},
    "qkv-w8": {op: {"WARPS": 8} for op in ("q_proj", "k_proj", "v_proj")},
    "gateup-r2": {"ffn_gate_up": {"ROWS": 2}},
    "gateup-r2w8": {"ffn_gate_up": {"ROWS": 2, "WARPS": 8}},
    "gateup-r4w8": {"ffn_gate_up": {"ROWS": 4, "WARPS": 8}},
    "gateup-w8": {"ffn_gate_up": {"WARPS": 8}},
    "down-w8k4": {"down_proj": {"WARPS": 8, "KSPLIT": 4}},
    "down-w8k8": {"down_proj": {"WARPS": 8, "KSPLIT": 8}},
    "attn-s16": {"attention": {"SPLITS": 16}},
    "attn-s64k32": {"attention": {"SPLITS": 64, "MIN_KEYS": 32}},
}

X8_VARIANTS = {
    "gateup-r4": {"ffn_gate_up": {"ROWS": 4}},
    "gateup-r1w8": {"ffn_gate_up": {"ROWS": 1, "WARPS": 8}},
    "gateup-r2w8": {"ffn_gate_up": {"ROWS": 2, "WARPS": 8}},
    "down-r2": {"down_proj": {"ROWS": 2}},
    "down-w4": {"down_proj": {"WARPS": 4}},
    "qkvo-w8": {op: {"WARPS": 8} for op in ("q_proj", "k_proj", "v_proj", "o_proj")},
    "qkvo-r1w2": {op: {"ROWS": 1, "WARPS": 2} for op in ("q_proj", "k_proj", "v_proj", "o_proj")},
    "head-b1024": {"lm_head": {"BLOCKS": 1024}},
    "head-r4": {"lm_head": {"ROWS": 4}},
    "head-b32k": {"lm_head": {"BLOCKS": 32000}},
}


def write_variants(out, base, table, steps_of):
    """Writes one path file per entry of table (name -> {op: constants}) into
    out, the steps that steps_of(path) returns taking the CUDA constants of
    their op; returns the files' paths."""
    os.makedirs(out, exist_ok=True)
    written = []
    for name, ops in table.items():
        path = json.loads(json.dumps(base))
        path["id"] = f"{base['id']}-{name}"
        path["name"] = f"{base['name']} ({name})"
        for step in steps_of(path):
            if step["op"] in ops:
                step.setdefault("constants", {})["cuda"] = ops[step["op"]]
        f = os.path.join(out, path["id"] + ".json")
        json.dump(path, open(f, "w"), indent=1)
        written.append(f)
    return written


def main():
    out = sys.argv[1]
    base_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "..", "kernel_paths", "gemma2-q4k-fused.json")
    base = json.load(open(base_file))
    table = X8_VARIANTS if "-x8" in base["id"] else VARIANTS
    print(",".join(write_variants(out, base, table, lambda p: p["decode"]["steps"] + p.get("postLayer", []))))


if __name__ == "__main__":
    main()
