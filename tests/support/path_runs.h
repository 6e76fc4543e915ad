// Running the kjv fixtures' golden prompts through a kernel path on a backend
// (a Session) or through the reference forward, for the tests that compare
// paths across backends and with the oracle.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <ostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "runtime/path_engine.h"
#include "runtime/reference_engine.h"
#include "runtime/session.h"

namespace kp::test {

struct PathRun {
  std::vector<std::vector<float>> last_logits;      // per prompt
  std::vector<std::vector<int32_t>> greedy_tokens;  // per prompt
};

inline std::string data_file(const std::string& name) { return std::string(KP_TEST_DATA) + "/" + name; }
inline std::string model_file(const std::string& name) {
  // The Q4_K_M fixture lives once in the tree, as the embedded default model.
  return name == "kjv-tiny-q4_k_m.gguf" ? std::string(KP_SOURCE_DIR) + "/models/" + name : data_file(name);
}

// Token ids of the golden cases `which` of golden-hf-kjv-tiny.json (case 4 has
// 274 tokens and crosses the 128-token sliding window).
inline std::vector<std::vector<int32_t>> golden_prompts(const std::vector<size_t>& which) {
  std::ifstream in(data_file("golden-hf-kjv-tiny.json"));
  const nlohmann::json g = nlohmann::json::parse(in);
  std::vector<std::vector<int32_t>> out;
  for (size_t c : which) out.push_back(g["cases"][c]["tokens"].get<std::vector<int32_t>>());
  return out;
}

inline double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  if (got.size() != want.size()) return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

inline Result<std::unique_ptr<runtime::Session>> open_path(const format::GgufFile& model, const std::string& backend,
                                                           const std::string& path, bool vulkan_validation = false) {
  runtime::SessionOptions o;
  o.backend.name = backend;
  o.backend.vulkan_validation = vulkan_validation;
  o.kernel_path = path;
  o.ctx = 512;
  o.max_batch = 128;  // the 274-token prompt runs as three prefill chunks
  return runtime::Session::open(model, o);
}

inline Result<PathRun> run_session(runtime::Session& s, const std::vector<std::vector<int32_t>>& prompts,
                                   uint32_t n_gen) {
  PathRun out;
  for (const auto& p : prompts) {
    KP_TRY(runtime::GreedyEval r, runtime::eval_greedy_on_path(s.executor(), p, n_gen));
    out.last_logits.push_back(std::move(r.last_logits));
    out.greedy_tokens.push_back(std::move(r.greedy_tokens));
  }
  return out;
}

inline Result<PathRun> run_reference(const format::GgufFile& model, const std::vector<std::vector<int32_t>>& prompts,
                                     uint32_t n_gen) {
  KP_TRY(model::ReferenceModel ref, runtime::load_reference_model(model, 512));
  PathRun out;
  for (const auto& p : prompts) {
    KP_TRY(runtime::GreedyEval r, runtime::eval_greedy(ref, p, n_gen));
    out.last_logits.push_back(std::move(r.last_logits));
    out.greedy_tokens.push_back(std::move(r.greedy_tokens));
  }
  return out;
}

// One built-in path on one fixture, and the bound its logits must meet.
struct PathCase {
  std::string path;
  std::string model;
  double vs_reference;  // on the CPU backend, against the f32 reference forward
  double vs_cpu;        // on a GPU backend, against the CPU backend
  bool f32;             // weights used as dequantized f32 and f32 activations
  bool vulkan = true;   // the path has Vulkan implementations of every kernel
};

// Test names and failure messages show the case as "path on model".
inline void PrintTo(const PathCase& c, std::ostream* os) { *os << c.path << " on " << c.model; }

inline std::vector<PathCase> builtin_path_cases() {
  return {
      {"gemma2-q4k-fused", "kjv-tiny-q4_k_m.gguf", 1e-4, 1e-3, true},
      {"gemma2-q4k-fused", "kjv-tiny-q4_k.gguf", 1e-4, 1e-3, true},
      {"gemma2-q4k-dequant-f32", "kjv-tiny-q4_k_m.gguf", 1e-4, 1e-3, true},
      {"gemma2-q4k-dequant-f32", "kjv-tiny-q4_k.gguf", 1e-4, 1e-3, true},
      {"gemma2-q4k-dequant-f16", "kjv-tiny-q4_k_m.gguf", 1e-2, 1e-2, false},
      {"gemma2-q4k-dequant-f16", "kjv-tiny-q4_k.gguf", 1e-2, 1e-2, false},
      {"gemma2-f16-native", "kjv-tiny-f16.gguf", 1e-4, 1e-3, true},
      {"gemma2-q4k-fused-max", "kjv-tiny-q4_k_m.gguf", 1e-4, 1e-3, true, /*vulkan=*/false},
      {"gemma2-q4k-fused-max", "kjv-tiny-q4_k.gguf", 1e-4, 1e-3, true, /*vulkan=*/false},
      // 8-bit activations: under 0.4 % from the f32 reference on these prompts. The
      // CUDA kernels quantize as the CPU does, but their inputs differ from the CPU's
      // in the last f32 bits, so an activation near the middle of two steps may
      // round apart (one step: 1/127 of its block's largest value), which moved
      // the kjv Q4_K logits by 1.0e-3 on the H200: the f16-activation bound, and no
      // exact greedy comparison.
      {"gemma2-q4k-x8", "kjv-tiny-q4_k_m.gguf", 1e-2, 1e-2, false, /*vulkan=*/false},
      {"gemma2-q4k-x8", "kjv-tiny-q4_k.gguf", 1e-2, 1e-2, false, /*vulkan=*/false},
      {"gemma2-q4k-x8-max", "kjv-tiny-q4_k_m.gguf", 1e-2, 1e-2, false, /*vulkan=*/false},
      {"gemma2-q4k-x8-max", "kjv-tiny-q4_k.gguf", 1e-2, 1e-2, false, /*vulkan=*/false},
      // Binary16 operands in prefill (tensor cores): within the f16-activation bound.
      {"gemma2-q4k-x8-h16", "kjv-tiny-q4_k_m.gguf", 1e-2, 1e-2, false, /*vulkan=*/false},
      {"gemma2-q4k-x8-h16", "kjv-tiny-q4_k.gguf", 1e-2, 1e-2, false, /*vulkan=*/false},
  };
}

inline std::string case_name(const testing::TestParamInfo<PathCase>& info) {
  std::string n = info.param.path + "_" + info.param.model.substr(9, info.param.model.size() - 14);
  for (char& c : n) {
    if (c == '-' || c == '.') c = '_';
  }
  return n;
}

}  // namespace kp::test
