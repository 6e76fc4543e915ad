// Gemma 2 config loading (on the fixtures and on small GGUFs built with the
// GgufWriter, some broken on purpose) and weight-name resolution.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "format/gguf.h"
#include "model/gemma2_config.h"

namespace kp::model {
namespace {

using format::GgufValue;

// A small but complete gemma2 file: every key and tensor, F32 zeros.
struct TinyModel {
  uint32_t n_embd = 16, n_head = 2, n_head_kv = 1, head_dim = 8, n_ff = 32, n_layer = 2;
  uint32_t n_vocab = 12, n_ctx = 64, window = 8;
  bool write_head_dim = true;           // key_length / value_length present
  std::optional<uint32_t> value_length;  // != head_dim to break it
  std::string arch = "gemma2";
  std::vector<std::string> skip_keys;
  std::vector<std::string> skip_tensors;
  std::map<std::string, std::vector<uint64_t>> dims_override;

  Result<format::GgufFile> build() const {
    format::GgufWriter w;
    auto set = [&](const std::string& key, GgufValue v) {
      if (std::find(skip_keys.begin(), skip_keys.end(), key) == skip_keys.end()) w.set(key, std::move(v));
    };
    set("general.architecture", GgufValue::string(arch));
    set("gemma2.context_length", GgufValue::u32(n_ctx));
    set("gemma2.embedding_length", GgufValue::u32(n_embd));
    set("gemma2.block_count", GgufValue::u32(n_layer));
    set("gemma2.feed_forward_length", GgufValue::u32(n_ff));
    set("gemma2.attention.head_count", GgufValue::u32(n_head));
    set("gemma2.attention.head_count_kv", GgufValue::u32(n_head_kv));
    if (write_head_dim) {
      set("gemma2.attention.key_length", GgufValue::u32(head_dim));
      set("gemma2.attention.value_length", GgufValue::u32(value_length.value_or(head_dim)));
    }
    set("gemma2.attention.layer_norm_rms_epsilon", GgufValue::f32(1e-6f));
    set("gemma2.attention.sliding_window", GgufValue::u32(window));
    set("gemma2.attn_logit_softcapping", GgufValue::f32(50.0f));
    set("gemma2.final_logit_softcapping", GgufValue::f32(30.0f));

    auto add = [&](const std::string& name, std::vector<uint64_t> dims) -> Status {
      if (std::find(skip_tensors.begin(), skip_tensors.end(), name) != skip_tensors.end()) return {};
      if (auto it = dims_override.find(name); it != dims_override.end()) dims = it->second;
      uint64_t n = 1;
      for (uint64_t d : dims) n *= d;
      return w.add_tensor(name, format::GgmlType::F32, dims, std::vector<uint8_t>(n * sizeof(float)));
    };
    const uint64_t q = uint64_t{n_head} * head_dim, kv = uint64_t{n_head_kv} * head_dim;
    KP_TRY_STATUS(add("token_embd.weight", {n_embd, n_vocab}));
    KP_TRY_STATUS(add("output_norm.weight", {n_embd}));
    for (uint32_t l = 0; l < n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      KP_TRY_STATUS(add(p + "attn_norm.weight", {n_embd}));
      KP_TRY_STATUS(add(p + "attn_q.weight", {n_embd, q}));
      KP_TRY_STATUS(add(p + "attn_k.weight", {n_embd, kv}));
      KP_TRY_STATUS(add(p + "attn_v.weight", {n_embd, kv}));
      KP_TRY_STATUS(add(p + "attn_output.weight", {q, n_embd}));
      KP_TRY_STATUS(add(p + "post_attention_norm.weight", {n_embd}));
      KP_TRY_STATUS(add(p + "ffn_norm.weight", {n_embd}));
      KP_TRY_STATUS(add(p + "ffn_gate.weight", {n_embd, n_ff}));
      KP_TRY_STATUS(add(p + "ffn_up.weight", {n_embd, n_ff}));
      KP_TRY_STATUS(add(p + "ffn_down.weight", {n_ff, n_embd}));
      KP_TRY_STATUS(add(p + "post_ffw_norm.weight", {n_embd}));
    }
    return format::GgufFile::parse(MappedFile::from_bytes(w.to_bytes(), "tiny.gguf"));
  }
};

Result<Gemma2Config> load(const TinyModel& m) {
  Result<format::GgufFile> f = m.build();
  EXPECT_TRUE(f.ok()) << f.error().message;
  if (!f) return f.take_error();
  return load_gemma2_config(*f);
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= s.size()) {
    const size_t end = std::min(s.find('\n', begin), s.size());
    out.push_back(s.substr(begin, end - begin));
    begin = end + 1;
  }
  return out;
}

// The error's lines after the header, which names the file.
std::vector<std::string> problems_of(const Result<Gemma2Config>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return {};
  std::vector<std::string> lines = lines_of(r.error().message);
  EXPECT_NE(lines[0].find("tiny.gguf"), std::string::npos) << lines[0];
  lines.erase(lines.begin());
  return lines;
}

bool has_line_containing(const std::vector<std::string>& lines, const std::string& a,
                         const std::string& b = "") {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
  });
}

TEST(Gemma2Config, FixtureValues) {
  Result<format::GgufFile> f = format::GgufFile::open(std::string(KP_TEST_DATA) + "/kjv-tiny-f16.gguf");
  ASSERT_TRUE(f.ok()) << f.error().message;
  Result<Gemma2Config> c = load_gemma2_config(*f);
  ASSERT_TRUE(c.ok()) << c.error().message;
  // Values from the fixture README (the HF config the model was trained with).
  EXPECT_EQ(c->n_vocab, 4096u);
  EXPECT_EQ(c->n_embd, 256u);
  EXPECT_EQ(c->n_layer, 6u);
  EXPECT_EQ(c->n_head, 4u);
  EXPECT_EQ(c->n_head_kv, 2u);
  EXPECT_EQ(c->head_dim, 64u);
  EXPECT_EQ(c->n_ff, 768u);
  EXPECT_EQ(c->n_ctx, 1024u);
  EXPECT_EQ(c->sliding_window, 64u);
  EXPECT_FLOAT_EQ(c->attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(c->final_softcap, 30.0f);
  EXPECT_FLOAT_EQ(c->query_pre_attn_scalar, 64.0f);
  EXPECT_FLOAT_EQ(c->attn_scale(), 0.125f);
  EXPECT_FLOAT_EQ(c->rms_eps, 1e-6f);
  EXPECT_FLOAT_EQ(c->rope_theta, 10000.0f);
  EXPECT_EQ(c->layer_window(0), 64u);
  EXPECT_EQ(c->layer_window(1), 0u);
  EXPECT_EQ(c->layer_window(4), 64u);
}

TEST(Gemma2Config, TinyModelLoads) {
  Result<Gemma2Config> c = load(TinyModel{});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->n_vocab, 12u);
  EXPECT_EQ(c->head_dim, 8u);
  EXPECT_FLOAT_EQ(c->query_pre_attn_scalar, 8.0f);
}

TEST(Gemma2Config, HeadDimDefaultsToEmbdOverHeadsAndKvHeadsToHeads) {
  TinyModel m;
  m.write_head_dim = false;
  m.head_dim = m.n_embd / m.n_head;  // what the tensors are built with
  m.skip_keys = {"gemma2.attention.head_count_kv"};
  m.n_head_kv = m.n_head;
  Result<Gemma2Config> c = load(m);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->head_dim, 8u);
  EXPECT_EQ(c->n_head_kv, 2u);
}

TEST(Gemma2Config, OptionalSoftcapsDefault) {
  TinyModel m;
  m.skip_keys = {"gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping"};
  Result<Gemma2Config> c = load(m);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FLOAT_EQ(c->attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(c->final_softcap, 30.0f);
}

// Gemma 2 27B (46 layers) scales attention by 1/sqrt(n_embd / n_head), not
// 1/sqrt(head_dim): for the real model 1/sqrt(4608 / 32 = 144) vs 1/sqrt(128).
TEST(Gemma2Config, TwentySevenBScalesByEmbdOverHeads) {
  TinyModel m;
  m.n_layer = 46;
  m.n_embd = 64;
  m.n_head = 4;     // n_embd / n_head = 16
  m.head_dim = 8;   // != 16
  m.n_ff = 16;
  Result<Gemma2Config> c = load(m);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FLOAT_EQ(c->query_pre_attn_scalar, 16.0f);
  EXPECT_FLOAT_EQ(c->attn_scale(), 0.25f);

  m.n_layer = 45;
  c = load(m);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FLOAT_EQ(c->query_pre_attn_scalar, 8.0f);
}

TEST(Gemma2Config, ListsEveryMissingOrMisshapenTensor) {
  TinyModel m;
  m.skip_tensors = {"blk.1.ffn_up.weight", "output_norm.weight"};
  m.dims_override["blk.0.attn_k.weight"] = {16, 16};   // expected [16, 8]
  m.dims_override["blk.1.ffn_down.weight"] = {16, 32};  // transposed: expected [32, 16]
  const std::vector<std::string> p = problems_of(load(m));
  ASSERT_EQ(p.size(), 4u) << ::testing::PrintToString(p);
  EXPECT_TRUE(has_line_containing(p, "missing tensor 'blk.1.ffn_up.weight'", "[16, 32]"));
  EXPECT_TRUE(has_line_containing(p, "missing tensor 'output_norm.weight'"));
  EXPECT_TRUE(has_line_containing(p, "'blk.0.attn_k.weight': dims [16, 16], expected [16, 8]"));
  EXPECT_TRUE(has_line_containing(p, "'blk.1.ffn_down.weight': dims [16, 32], expected [32, 16]"));
}

TEST(Gemma2Config, ListsMissingKeysAndTensorsTogether) {
  TinyModel m;
  m.skip_keys = {"gemma2.attention.sliding_window", "gemma2.context_length",
                 "gemma2.attention.layer_norm_rms_epsilon"};
  m.skip_tensors = {"blk.0.post_ffw_norm.weight"};
  const std::vector<std::string> p = problems_of(load(m));
  ASSERT_EQ(p.size(), 4u) << ::testing::PrintToString(p);
  EXPECT_TRUE(has_line_containing(p, "missing key 'gemma2.attention.sliding_window'"));
  EXPECT_TRUE(has_line_containing(p, "missing key 'gemma2.context_length'"));
  EXPECT_TRUE(has_line_containing(p, "missing key 'gemma2.attention.layer_norm_rms_epsilon'"));
  EXPECT_TRUE(has_line_containing(p, "missing tensor 'blk.0.post_ffw_norm.weight'"));
}

TEST(Gemma2Config, RejectsInconsistentHeads) {
  TinyModel m;
  m.value_length = 4;
  std::vector<std::string> p = problems_of(load(m));
  EXPECT_TRUE(has_line_containing(p, "key_length 8 != attention.value_length 4")) << ::testing::PrintToString(p);

  TinyModel g;
  g.n_head = 3;  // not a multiple of... 2 kv heads
  g.n_head_kv = 2;
  p = problems_of(load(g));
  EXPECT_TRUE(has_line_containing(p, "head_count 3 is not a multiple of head_count_kv 2"))
      << ::testing::PrintToString(p);
}

TEST(Gemma2Config, RejectsOtherArchitectures) {
  TinyModel m;
  m.arch = "llama";
  Result<Gemma2Config> c = load(m);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("\"llama\", expected \"gemma2\""), std::string::npos) << c.error().message;
}

TEST(Gemma2Config, RejectsABlockCountTheTensorsCannotHold) {
  TinyModel m;
  Result<format::GgufFile> f = m.build();
  ASSERT_TRUE(f.ok());
  // Same tensors, block_count claims a billion layers: one problem, not a billion.
  format::GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  w.set("gemma2.block_count", GgufValue::u32(1000000000));
  for (const format::GgufTensorInfo& t : f->tensors()) {
    ASSERT_TRUE(w.add_tensor(t.name, t.type, t.dims, std::vector<uint8_t>(t.data, t.data + t.n_bytes)).ok());
  }
  Result<format::GgufFile> big = format::GgufFile::parse(MappedFile::from_bytes(w.to_bytes(), "tiny.gguf"));
  ASSERT_TRUE(big.ok()) << big.error().message;
  Result<Gemma2Config> c = load_gemma2_config(*big);
  const std::vector<std::string> p = problems_of(c);
  ASSERT_EQ(p.size(), 1u) << ::testing::PrintToString(p);
  EXPECT_TRUE(has_line_containing(p, "block_count 1000000000"));
}

std::string resolved(const std::string& name) {
  Result<std::string> r = resolve_weight_name(name);
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::string();
}

TEST(ResolveWeightName, SeedStyleLayerNames) {
  EXPECT_EQ(resolved("layer.5.self_attn.q_proj"), "blk.5.attn_q.weight");
  EXPECT_EQ(resolved("layer.5.self_attn.k_proj"), "blk.5.attn_k.weight");
  EXPECT_EQ(resolved("layer.5.self_attn.v_proj"), "blk.5.attn_v.weight");
  EXPECT_EQ(resolved("layer.5.self_attn.o_proj"), "blk.5.attn_output.weight");
  EXPECT_EQ(resolved("layer.0.mlp.gate_proj"), "blk.0.ffn_gate.weight");
  EXPECT_EQ(resolved("layer.0.mlp.up_proj"), "blk.0.ffn_up.weight");
  EXPECT_EQ(resolved("layer.12.mlp.down_proj"), "blk.12.ffn_down.weight");
  EXPECT_EQ(resolved("layer.3.input_layernorm"), "blk.3.attn_norm.weight");
  EXPECT_EQ(resolved("layer.3.post_attention_layernorm"), "blk.3.post_attention_norm.weight");
  EXPECT_EQ(resolved("layer.3.pre_feedforward_layernorm"), "blk.3.ffn_norm.weight");
  EXPECT_EQ(resolved("layer.3.post_feedforward_layernorm"), "blk.3.post_ffw_norm.weight");
  EXPECT_EQ(resolved("layer.3.self_attn.q_proj.weight"), "blk.3.attn_q.weight");
}

TEST(ResolveWeightName, GlobalNames) {
  EXPECT_EQ(resolved("embed_tokens"), "token_embd.weight");
  EXPECT_EQ(resolved("model.embed_tokens"), "token_embd.weight");
  EXPECT_EQ(resolved("norm"), "output_norm.weight");
  EXPECT_EQ(resolved("model.norm"), "output_norm.weight");
  EXPECT_EQ(resolved("lm_head"), "token_embd.weight");  // tied
}

TEST(ResolveWeightName, GgufNamesAsIs) {
  EXPECT_EQ(resolved("blk.5.attn_q"), "blk.5.attn_q.weight");
  EXPECT_EQ(resolved("blk.5.attn_q.weight"), "blk.5.attn_q.weight");
  EXPECT_EQ(resolved("blk.40.post_ffw_norm"), "blk.40.post_ffw_norm.weight");
  EXPECT_EQ(resolved("token_embd"), "token_embd.weight");
  EXPECT_EQ(resolved("token_embd.weight"), "token_embd.weight");
  EXPECT_EQ(resolved("output_norm.weight"), "output_norm.weight");
}

TEST(ResolveWeightName, RejectsUnknownNames) {
  for (const std::string bad :
       {"", "layer", "layer.x.self_attn.q_proj", "layer.-1.self_attn.q_proj", "layer.03.mlp.up_proj",
        "layer.3.self_attn.qkv_proj", "layer.3.", "blk.3.attn_qq", "blk..attn_q", "attn_q",
        "model.layers.3.self_attn.q_proj", "embed_tokens.bias", "layer.{L}.self_attn.q_proj"}) {
    Result<std::string> r = resolve_weight_name(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' resolved to " << *r;
    EXPECT_NE(r.error().message.find("'" + bad + "'"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace kp::model
