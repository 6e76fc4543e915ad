// Shapes the built-in kernel paths dispatch each kernel with, for the two
// models the CUDA tests cover: Gemma 2 2B and the kjv-tiny fixture
// (tests/data, facts in ../shared/fixtures/README.md).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kernel_path/expr.h"

namespace kp::cuda_test {

struct ModelShapes {
  std::string name;
  kpath::ModelValues values;
  int64_t ctx = 0;      // KV cache rows
  int64_t history = 0;  // token-history rows (the planner's default)
  int64_t window = 0;   // sliding window of the even layers
};

inline ModelShapes gemma2_2b() {
  ModelShapes m;
  m.name = "gemma2-2b";
  kpath::ModelValues& v = m.values;
  v.n_embd = 2304;
  v.n_ff = 9216;
  v.n_head = 8;
  v.n_head_kv = 4;
  v.head_dim = 256;
  v.n_vocab = 256000;
  v.n_layer = 26;
  v.rms_eps = 1e-6f;
  v.rope_theta = 10000.0f;
  v.attn_softcap = 50.0f;
  v.final_softcap = 30.0f;
  v.attn_scale = 1.0f / 16.0f;  // query_pre_attn_scalar = head_dim = 256
  v.embd_scale = std::sqrt(2304.0f);
  m.ctx = 8192;
  m.history = 64;
  m.window = 4096;
  return m;
}

inline ModelShapes kjv_tiny() {
  ModelShapes m;
  m.name = "kjv-tiny";
  kpath::ModelValues& v = m.values;
  v.n_embd = 256;
  v.n_ff = 768;
  v.n_head = 4;
  v.n_head_kv = 2;
  v.head_dim = 64;
  v.n_vocab = 4096;
  v.n_layer = 6;
  v.rms_eps = 1e-6f;
  v.rope_theta = 10000.0f;
  v.attn_softcap = 50.0f;
  v.final_softcap = 30.0f;
  v.attn_scale = 1.0f / 8.0f;
  v.embd_scale = 16.0f;
  m.ctx = 1024;
  m.history = 64;
  m.window = 64;
  return m;
}

using Symbols = std::map<std::string, int64_t>;

// The symbol sets (without T) of every dispatch of `kernel` in the built-in
// paths for model `m`: one per distinct weight shape. Empty for a kernel these
// tests do not know, which the tests report as a failure.
inline std::vector<Symbols> path_shapes(const std::string& kernel, const ModelShapes& m) {
  const auto& v = m.values;
  const int64_t e = v.n_embd, f = v.n_ff, vocab = v.n_vocab;
  const int64_t qc = int64_t{v.n_head} * v.head_dim, kc = int64_t{v.n_head_kv} * v.head_dim;
  auto starts = [&](const char* prefix) { return kernel.rfind(prefix, 0) == 0; };
  if (starts("embed_")) return {{{"E", e}, {"V", vocab}}};
  if (starts("matmul_norm_")) {
    // q, k, v of the fused paths, and a ragged row count (no whole row group).
    return {{{"K", e}, {"N", qc}}, {{"K", e}, {"N", kc}}, {{"K", e}, {"N", kc + 3}}};
  }
  if (starts("matmul_")) {
    // q, k/v, o, down projections and the tied output head.
    std::set<std::pair<int64_t, int64_t>> kn = {{e, qc}, {e, kc}, {qc, e}, {f, e}, {e, vocab}};
    // The 8-bit activation kernels walk row groups, the tensor-core ones tiles
    // of rows: a ragged last group or tile too.
    if (kernel.ends_with("_x8") || kernel.ends_with("_h16")) kn.insert({e, kc + 3});
    std::vector<Symbols> out;
    for (const auto& [k, n] : kn) out.push_back({{"K", k}, {"N", n}});
    return out;
  }
  if (starts("ffn_gate_up_") && (kernel.ends_with("_x8") || kernel.ends_with("_h16"))) {
    return {{{"E", e}, {"F", f}}, {{"E", e}, {"F", f + 5}}};
  }
  if (starts("ffn_gate_up_")) return {{{"E", e}, {"F", f}}};
  if (kernel == "rmsnorm" || kernel == "rmsnorm_residual" || kernel == "add") return {{{"N", e}}};
  if (kernel == "gelu_mul") return {{{"F", f}}};
  if (kernel == "rope_neox") return {{{"C", qc}}, {{"C", kc}}};
  if (kernel == "attention" || kernel == "attention_rope" || kernel == "attention_h16") return {{{"QC", qc}, {"KC", kc}, {"CTX", m.ctx}}};
  if (kernel == "softcap") return {{{"N", vocab}}};
  if (kernel == "repeat_penalty") return {{{"V", vocab}, {"H", m.history}}};
  if (kernel == "sample") return {{{"V", vocab}}};
  return {};
}

}  // namespace kp::cuda_test
