#!/usr/bin/env python3
"""Writes variants of a built-in kernel path that differ only in the CUDA
constants of their decode steps, for one `kpath bench --kernel-path a,b,...`
run that compares them on the same device and model.

    bench/sweeps/decode_constants.py OUT_DIR [BASE_PATH_JSON]

Prints the comma-separated list of the written files. Each variant is named
<base id>-<variant>; the variants are the table below (op -> constants).
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


def main():
    out = sys.argv[1]
    base_file = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(__file__), "..", "..", "kernel_paths", "gemma2-q4k-fused.json")
    base = json.load(open(base_file))
    os.makedirs(out, exist_ok=True)
    written = []
    for name, ops in VARIANTS.items():
        path = json.loads(json.dumps(base))
        path["id"] = f"{base['id']}-{name}"
        path["name"] = f"{base['name']} ({name})"
        for step in path["decode"]["steps"]:
            if step["op"] in ops:
                step.setdefault("constants", {})["cuda"] = ops[step["op"]]
        f = os.path.join(out, path["id"] + ".json")
        json.dump(path, open(f, "w"), indent=1)
        written.append(f)
    print(",".join(written))


if __name__ == "__main__":
    main()
