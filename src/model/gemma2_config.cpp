// Gemma 2 config: `gemma2.*` metadata, checked against every tensor the
// forward pass needs. Problems are collected, not returned one at a time, so a
// broken file is diagnosed in one run.
#include "model/gemma2_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>

namespace kp::model {

float Gemma2Config::attn_scale() const { return 1.0f / std::sqrt(query_pre_attn_scalar); }

namespace {

constexpr std::string_view kArch = "gemma2";
// llama.cpp's layer count for Gemma 2 27B, the one size whose attention scale
// is 1/sqrt(n_embd / n_head) (= 1/sqrt(144)) rather than 1/sqrt(head_dim).
constexpr uint64_t kGemma2_27bLayers = 46;

// Reads metadata keys and records every problem in `problems`.
class KeyReader {
 public:
  KeyReader(const format::GgufFile& file, std::vector<std::string>& problems)
      : file_(file), problems_(problems) {}

  // A required positive integer that fits in uint32; 0 when missing or wrong.
  uint32_t u32(std::string_view key) { return u32_impl(key, std::nullopt); }
  uint32_t u32_or(std::string_view key, uint32_t fallback) { return u32_impl(key, fallback); }

  // A finite positive float; `fallback` when absent (nullopt: required).
  float f32(std::string_view key, std::optional<float> fallback) {
    const format::GgufValue* v = file_.find(key);
    if (v == nullptr) {
      if (!fallback) problems_.push_back(fmt::format("missing key '{}'", key));
      return fallback.value_or(0.0f);
    }
    Result<double> x = v->as_f64(key);
    if (!x) {
      problems_.push_back(x.error().message);
      return 0.0f;
    }
    if (!std::isfinite(*x) || *x <= 0.0) {
      problems_.push_back(fmt::format("key '{}': expected a positive number, got {}", key, *x));
      return 0.0f;
    }
    return static_cast<float>(*x);
  }

 private:
  uint32_t u32_impl(std::string_view key, std::optional<uint32_t> fallback) {
    const format::GgufValue* v = file_.find(key);
    if (v == nullptr) {
      if (!fallback) problems_.push_back(fmt::format("missing key '{}'", key));
      return fallback.value_or(0);
    }
    Result<uint64_t> x = v->as_u64(key);
    if (!x) {
      problems_.push_back(x.error().message);
      return 0;
    }
    if (*x == 0 || *x > UINT32_MAX) {
      problems_.push_back(fmt::format("key '{}': expected an integer in [1, {}], got {}", key,
                                      UINT32_MAX, *x));
      return 0;
    }
    return static_cast<uint32_t>(*x);
  }

  const format::GgufFile& file_;
  std::vector<std::string>& problems_;
};

// GGUF may store trailing unit dimensions; [n] and [n, 1] are the same vector.
bool dims_match(const std::vector<uint64_t>& dims, const std::vector<uint64_t>& expected) {
  if (dims.size() < expected.size()) return false;
  for (size_t i = 0; i < dims.size(); ++i) {
    const uint64_t want = i < expected.size() ? expected[i] : 1;
    if (dims[i] != want) return false;
  }
  return true;
}

void check_tensor(const format::GgufFile& file, const std::string& name,
                  const std::vector<uint64_t>& expected, std::vector<std::string>& problems) {
  const format::GgufTensorInfo* t = file.tensor(name);
  if (t == nullptr) {
    problems.push_back(fmt::format("missing tensor '{}' (expected dims [{}])", name,
                                   fmt::join(expected, ", ")));
    return;
  }
  if (!dims_match(t->dims, expected)) {
    problems.push_back(fmt::format("tensor '{}': dims [{}], expected [{}]", name,
                                   fmt::join(t->dims, ", "), fmt::join(expected, ", ")));
  }
}

// The per-layer tensors, suffixes of "blk.{L}.", and their GGUF dims (ne0 first).
struct LayerTensor {
  std::string_view name;
  enum class Shape { kNorm, kQ, kKv, kOut, kUpGate, kDown } shape;
};
constexpr std::array<LayerTensor, 11> kLayerTensors = {{
    {"attn_norm", LayerTensor::Shape::kNorm},
    {"attn_q", LayerTensor::Shape::kQ},
    {"attn_k", LayerTensor::Shape::kKv},
    {"attn_v", LayerTensor::Shape::kKv},
    {"attn_output", LayerTensor::Shape::kOut},
    {"post_attention_norm", LayerTensor::Shape::kNorm},
    {"ffn_norm", LayerTensor::Shape::kNorm},
    {"ffn_gate", LayerTensor::Shape::kUpGate},
    {"ffn_up", LayerTensor::Shape::kUpGate},
    {"ffn_down", LayerTensor::Shape::kDown},
    {"post_ffw_norm", LayerTensor::Shape::kNorm},
}};

std::vector<uint64_t> layer_tensor_dims(const Gemma2Config& c, LayerTensor::Shape s) {
  const uint64_t q = uint64_t{c.n_head} * c.head_dim;
  const uint64_t kv = uint64_t{c.n_head_kv} * c.head_dim;
  switch (s) {
    case LayerTensor::Shape::kNorm: return {c.n_embd};
    case LayerTensor::Shape::kQ: return {c.n_embd, q};
    case LayerTensor::Shape::kKv: return {c.n_embd, kv};
    case LayerTensor::Shape::kOut: return {q, c.n_embd};
    case LayerTensor::Shape::kUpGate: return {c.n_embd, c.n_ff};
    case LayerTensor::Shape::kDown: return {c.n_ff, c.n_embd};
  }
  return {};
}

// Vocabulary size: token_embd's ne1, cross-checked with tokenizer.ggml.tokens.
uint32_t read_vocab(const format::GgufFile& file, std::vector<std::string>& problems) {
  std::optional<uint64_t> from_tokens;
  if (const format::GgufValue* v = file.find("tokenizer.ggml.tokens")) {
    if (const format::GgufArray* a = v->as_array()) {
      from_tokens = a->elems.size();
    } else {
      problems.push_back("key 'tokenizer.ggml.tokens': expected an array of strings, got " +
                         format::value_type_name(v->type));
    }
  }
  std::optional<uint64_t> from_embd;
  if (const format::GgufTensorInfo* t = file.tensor("token_embd.weight"); t && t->dims.size() >= 2) {
    from_embd = t->dims[1];
  }
  if (from_embd && from_tokens && *from_embd != *from_tokens) {
    problems.push_back(fmt::format(
        "tensor 'token_embd.weight' has {} rows but 'tokenizer.ggml.tokens' has {} tokens",
        *from_embd, *from_tokens));
  }
  const uint64_t n = from_embd ? *from_embd : from_tokens.value_or(0);
  if (n == 0 || n > INT32_MAX) {
    if (from_embd || from_tokens) {
      problems.push_back(fmt::format("vocabulary size {} is not in [1, {}]", n, INT32_MAX));
    }
    return 0;
  }
  return static_cast<uint32_t>(n);
}

}  // namespace

Result<Gemma2Config> load_gemma2_config(const format::GgufFile& file) {
  std::vector<std::string> problems;
  {
    const format::GgufValue* arch = file.find("general.architecture");
    if (arch == nullptr) {
      problems.push_back("missing key 'general.architecture' (expected \"gemma2\")");
    } else if (Result<std::string> s = arch->as_string("general.architecture"); !s) {
      problems.push_back(s.error().message);
    } else if (*s != kArch) {
      return make_error("{}: general.architecture is \"{}\", expected \"gemma2\"", file.name(), *s);
    }
  }

  Gemma2Config c;
  KeyReader keys(file, problems);
  c.n_ctx = keys.u32("gemma2.context_length");
  c.n_embd = keys.u32("gemma2.embedding_length");
  c.n_layer = keys.u32("gemma2.block_count");
  c.n_ff = keys.u32("gemma2.feed_forward_length");
  c.n_head = keys.u32("gemma2.attention.head_count");
  // llama.cpp: no head_count_kv means multi-head attention (n_head_kv = n_head).
  c.n_head_kv = keys.u32_or("gemma2.attention.head_count_kv", c.n_head);
  c.sliding_window = keys.u32("gemma2.attention.sliding_window");
  c.rms_eps = keys.f32("gemma2.attention.layer_norm_rms_epsilon", std::nullopt);
  c.attn_softcap = keys.f32("gemma2.attn_logit_softcapping", 50.0f);
  c.final_softcap = keys.f32("gemma2.final_logit_softcapping", 30.0f);
  c.rope_theta = keys.f32("gemma2.rope.freq_base", 10000.0f);
  c.n_vocab = read_vocab(file, problems);

  const uint32_t default_head_dim =
      (c.n_head != 0 && c.n_embd % c.n_head == 0) ? c.n_embd / c.n_head : 0;
  const bool has_key_length = file.find("gemma2.attention.key_length") != nullptr;
  const bool has_value_length = file.find("gemma2.attention.value_length") != nullptr;
  if ((!has_key_length || !has_value_length) && c.n_head != 0 && c.n_embd % c.n_head != 0) {
    problems.push_back(fmt::format(
        "embedding_length {} is not a multiple of head_count {} and key_length/value_length "
        "are not given", c.n_embd, c.n_head));
  }
  const uint32_t key_length = keys.u32_or("gemma2.attention.key_length", default_head_dim);
  const uint32_t value_length = keys.u32_or("gemma2.attention.value_length", default_head_dim);
  if (key_length != value_length) {
    problems.push_back(fmt::format("attention.key_length {} != attention.value_length {}",
                                   key_length, value_length));
  }
  c.head_dim = key_length;
  if (c.head_dim % 2 != 0) {
    problems.push_back(fmt::format("head_dim {} is odd; RoPE rotates pairs", c.head_dim));
  }
  if (c.n_head != 0 && c.n_head_kv != 0 && c.n_head % c.n_head_kv != 0) {
    problems.push_back(fmt::format("attention.head_count {} is not a multiple of head_count_kv {}",
                                   c.n_head, c.n_head_kv));
  }
  c.query_pre_attn_scalar = c.n_layer == kGemma2_27bLayers && c.n_head != 0
                                ? static_cast<float>(c.n_embd / c.n_head)
                                : static_cast<float>(c.head_dim);

  // A layer needs 11 tensors; a block_count the tensor table cannot hold is
  // reported once instead of as millions of missing tensors.
  const uint64_t max_layers = file.tensors().size() / kLayerTensors.size();
  if (c.n_layer > max_layers) {
    problems.push_back(fmt::format("block_count {} needs {} layer tensors but the file has {} tensors",
                                   c.n_layer, uint64_t{c.n_layer} * kLayerTensors.size(),
                                   file.tensors().size()));
  }

  const bool shapes_known = c.n_embd != 0 && c.n_head != 0 && c.n_head_kv != 0 && c.head_dim != 0 &&
                            c.n_ff != 0;
  if (shapes_known) {
    if (c.n_vocab != 0) {
      check_tensor(file, "token_embd.weight", {c.n_embd, c.n_vocab}, problems);
    } else if (file.tensor("token_embd.weight") == nullptr) {
      problems.push_back("missing tensor 'token_embd.weight' (expected dims [n_embd, n_vocab])");
    } else {
      problems.push_back("tensor 'token_embd.weight': expected 2 dims [n_embd, n_vocab]");
    }
    check_tensor(file, "output_norm.weight", {c.n_embd}, problems);
    if (c.n_layer <= max_layers) {
      for (uint32_t l = 0; l < c.n_layer; ++l) {
        for (const LayerTensor& lt : kLayerTensors) {
          check_tensor(file, fmt::format("blk.{}.{}.weight", l, lt.name),
                       layer_tensor_dims(c, lt.shape), problems);
        }
      }
    }
  }

  if (!problems.empty()) {
    return make_error("{}: not a usable gemma2 model ({} problem{}):\n  {}", file.name(),
                      problems.size(), problems.size() == 1 ? "" : "s",
                      fmt::join(problems, "\n  "));
  }
  return c;
}

namespace {

// Seed-style per-layer names (the part after "layer.{L}.") and their GGUF names.
constexpr std::array<std::pair<std::string_view, std::string_view>, 11> kLayerAliases = {{
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.o_proj", "attn_output"},
    {"mlp.gate_proj", "ffn_gate"},
    {"mlp.up_proj", "ffn_up"},
    {"mlp.down_proj", "ffn_down"},
    {"input_layernorm", "attn_norm"},
    // Gemma 2 has four norms per layer; HF's names map onto llama.cpp's like this.
    {"post_attention_layernorm", "post_attention_norm"},
    {"pre_feedforward_layernorm", "ffn_norm"},
    {"post_feedforward_layernorm", "post_ffw_norm"},
}};

constexpr std::array<std::pair<std::string_view, std::string_view>, 5> kGlobalAliases = {{
    {"embed_tokens", "token_embd"},
    {"model.embed_tokens", "token_embd"},
    {"norm", "output_norm"},
    {"model.norm", "output_norm"},
    {"lm_head", "token_embd"},  // Gemma ties the output projection to the embedding
}};

// Splits "<prefix><L>.<rest>"; nullopt unless L is a canonical decimal number.
std::optional<std::pair<uint32_t, std::string_view>> split_layer(std::string_view name,
                                                                  std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const std::string_view digits = name.substr(0, dot);
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;
  uint32_t layer = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), layer);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return std::make_pair(layer, name.substr(dot + 1));
}

}  // namespace

Result<std::string> resolve_weight_name(const std::string& name) {
  std::string_view base = name;
  if (base.ends_with(".weight")) base.remove_suffix(std::string_view(".weight").size());

  for (const auto& [alias, gguf] : kGlobalAliases) {
    if (base == alias) return fmt::format("{}.weight", gguf);
  }
  if (base == "token_embd" || base == "output_norm") return fmt::format("{}.weight", base);

  if (auto seed = split_layer(base, "layer.")) {
    for (const auto& [alias, gguf] : kLayerAliases) {
      if (seed->second == alias) return fmt::format("blk.{}.{}.weight", seed->first, gguf);
    }
  }
  if (auto blk = split_layer(base, "blk.")) {
    for (const LayerTensor& lt : kLayerTensors) {
      if (blk->second == lt.name) return fmt::format("blk.{}.{}.weight", blk->first, lt.name);
    }
  }
  return make_error(
      "weight '{}': not a Gemma 2 weight name (expected e.g. 'layer.3.self_attn.q_proj', "
      "'layer.3.mlp.down_proj', 'embed_tokens', 'norm', 'lm_head' or a GGUF name such as "
      "'blk.3.attn_q.weight')",
      name);
}

}  // namespace kp::model
