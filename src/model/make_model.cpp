// Synthetic Gemma 2 models; see make_model.h.
#include "model/make_model.h"

#include <array>
#include <cmath>
#include <unordered_set>

#include "core/check.h"
#include "format/quant_stream.h"

namespace kp::model {
namespace {

using format::GgufValue;
using format::GgufValueType;

// Shapes as data: Gemma 2 2B and 9B as published (config.json of
// google/gemma-2-2b and -9b), and the kjv fixture's (tests/data).
constexpr std::array<SyntheticShape, 3> kShapes{{
    {"gemma2-2b", 256000, 2304, 26, 8, 4, 256, 9216, 8192, 4096, 1e-6f, 50.0f, 30.0f},
    {"gemma2-9b", 256000, 3584, 42, 16, 8, 256, 14336, 8192, 4096, 1e-6f, 50.0f, 30.0f},
    {"tiny", 4096, 256, 6, 4, 2, 64, 768, 1024, 64, 1e-6f, 50.0f, 30.0f},
}};

// splitmix64: a 64-bit generator whose every output is a bijective mix of a
// counter, so any (seed, tensor, row) can start its own stream.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// An approximately standard normal value: the sum of four uniform 16-bit
// integers (Irwin-Hall), centred and scaled to unit variance; tails end at
// +-3.46. Much cheaper than Box-Muller for billions of weights.
float gaussian_like(uint64_t& state) {
  const uint64_t r = splitmix64(state);
  const uint32_t sum = static_cast<uint32_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
  constexpr float kMean = 2.0f * 65535.0f;
  const float kInvStd = std::sqrt(3.0f) / 65536.0f;  // 4 uniforms of variance 65536^2 / 12
  return (static_cast<float>(sum) - kMean) * kInvStd;
}

// Code points in a UTF-8 string.
size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

constexpr std::string_view kSpace = "\xe2\x96\x81";  // U+2581 "▁", SentencePiece's word start

// Frequent English words: their "▁"-prefixed forms and every prefix of those
// become pieces first, so that real text tokenizes into plausible pieces.
constexpr std::array<std::string_view, 64> kWords{{
    "the", "and", "of", "to", "in", "that", "he", "is", "it", "was", "for", "unto", "shall", "his",
    "they", "be", "with", "not", "all", "him", "them", "lord", "said", "thou", "thy", "which", "but",
    "have", "this", "from", "were", "when", "will", "their", "there", "what", "son", "out", "man",
    "king", "god", "people", "house", "day", "came", "come", "land", "one", "made", "went", "upon",
    "also", "into", "before", "hath", "every", "these", "then", "after", "over", "than", "great",
    "children", "israel",
}};

constexpr std::string_view kLetters = "etaoinshrdlcumwfgypbvkjxqz";
constexpr std::string_view kSingles =
    "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,;:!?'\"()-";

}  // namespace

std::optional<SyntheticShape> synthetic_shape(std::string_view like) {
  for (const SyntheticShape& s : kShapes) {
    if (s.like == like) return s;
  }
  return std::nullopt;
}

std::string synthetic_shape_names() {
  std::string out;
  for (const SyntheticShape& s : kShapes) {
    if (!out.empty()) out += '|';
    out += s.like;
  }
  return out;
}

SyntheticVocab synthetic_vocab(uint32_t n_vocab) {
  constexpr uint32_t kFixed = 4 + 256;  // special and byte pieces
  const size_t n_singles = 1 + kSingles.size();  // "▁" and the characters
  KP_CHECK(n_vocab >= 400 && n_vocab - kFixed > n_singles, "a synthetic vocabulary has at least 400 pieces");
  const size_t n_merged = n_vocab - kFixed - n_singles;

  std::vector<std::string> merged;
  merged.reserve(n_merged);
  std::unordered_set<std::string> seen;
  auto add = [&](std::string piece) {
    if (merged.size() < n_merged && seen.insert(piece).second) merged.push_back(std::move(piece));
  };
  // 1. "▁t", "▁th", "▁the", ...: each extends an earlier piece by one letter.
  for (std::string_view word : kWords) {
    std::string piece(kSpace);
    for (char c : word) {
      piece += c;
      add(piece);
    }
  }
  // 2. Concatenations of two earlier pieces, the right one a short piece that
  // does not start a word, picked by a fixed generator; at most 12 characters.
  std::vector<std::string> right_pool;
  for (char c : kLetters) right_pool.emplace_back(1, c);
  uint64_t state = 0x6b70617468ull;  // fixed: the vocabulary does not depend on the seed
  while (merged.size() < n_merged) {
    const uint64_t r = splitmix64(state);
    const uint64_t pick_left = r % (merged.size() + kLetters.size() + 1);
    std::string left;
    if (pick_left < merged.size()) {
      left = merged[pick_left];
    } else if (pick_left < merged.size() + kLetters.size()) {
      left = std::string(1, kLetters[pick_left - merged.size()]);
    } else {
      left = std::string(kSpace);
    }
    const std::string& right = right_pool[(r >> 32) % right_pool.size()];
    std::string piece = left + right;
    if (utf8_length(piece) > 12) continue;
    const size_t before = merged.size();
    add(piece);
    if (merged.size() > before && piece.rfind(kSpace, 0) != 0 && utf8_length(piece) <= 4) {
      right_pool.push_back(piece);
    }
  }

  SyntheticVocab v;
  v.tokens = {"<pad>", "<eos>", "<bos>", "<unk>"};
  v.types = {3, 3, 3, 2};
  for (int b = 0; b < 256; ++b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    v.tokens.push_back(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
    v.types.push_back(6);
  }
  v.scores.assign(v.tokens.size(), 0.0f);
  // Normal pieces score 0, -1, -2, ... in merge order, single characters last,
  // as SentencePiece's BPE trainer orders them.
  auto add_normal = [&](std::string piece) {
    v.scores.push_back(-static_cast<float>(v.tokens.size() - kFixed));
    v.tokens.push_back(std::move(piece));
    v.types.push_back(1);
  };
  for (std::string& piece : merged) add_normal(std::move(piece));
  add_normal(std::string(kSpace));
  for (char c : kSingles) add_normal(std::string(1, c));
  KP_CHECK(v.tokens.size() == n_vocab, "the synthetic vocabulary has exactly n_vocab pieces");
  return v;
}

std::vector<std::pair<std::string, GgufValue>> synthetic_metadata(const SyntheticShape& shape,
                                                                   const SyntheticVocab& vocab, QuantMix mix) {
  std::vector<std::pair<std::string, GgufValue>> kv;
  auto set = [&](std::string key, GgufValue value) { kv.emplace_back(std::move(key), std::move(value)); };
  set("general.architecture", GgufValue::string("gemma2"));
  set("general.name", GgufValue::string(std::string("kpath synthetic ") + std::string(shape.like)));
  set("gemma2.context_length", GgufValue::u32(shape.n_ctx));
  set("gemma2.embedding_length", GgufValue::u32(shape.n_embd));
  set("gemma2.block_count", GgufValue::u32(shape.n_layer));
  set("gemma2.feed_forward_length", GgufValue::u32(shape.n_ff));
  set("gemma2.attention.head_count", GgufValue::u32(shape.n_head));
  set("gemma2.attention.head_count_kv", GgufValue::u32(shape.n_head_kv));
  set("gemma2.attention.layer_norm_rms_epsilon", GgufValue::f32(shape.rms_eps));
  set("gemma2.attention.key_length", GgufValue::u32(shape.head_dim));
  set("gemma2.attention.value_length", GgufValue::u32(shape.head_dim));
  set("gemma2.attn_logit_softcapping", GgufValue::f32(shape.attn_softcap));
  set("gemma2.final_logit_softcapping", GgufValue::f32(shape.final_softcap));
  set("gemma2.attention.sliding_window", GgufValue::u32(shape.sliding_window));
  set("tokenizer.ggml.model", GgufValue::string("llama"));
  std::vector<GgufValue> tokens, scores, types;
  tokens.reserve(vocab.tokens.size());
  scores.reserve(vocab.tokens.size());
  types.reserve(vocab.tokens.size());
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    tokens.push_back(GgufValue::string(vocab.tokens[i]));
    scores.push_back(GgufValue::f32(vocab.scores[i]));
    types.push_back(GgufValue::i32(vocab.types[i]));
  }
  set("tokenizer.ggml.tokens", GgufValue::array(GgufValueType::STRING, std::move(tokens)));
  set("tokenizer.ggml.scores", GgufValue::array(GgufValueType::FLOAT32, std::move(scores)));
  set("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::INT32, std::move(types)));
  set("tokenizer.ggml.bos_token_id", GgufValue::u32(2));
  set("tokenizer.ggml.eos_token_id", GgufValue::u32(1));
  set("tokenizer.ggml.unknown_token_id", GgufValue::u32(3));
  set("tokenizer.ggml.padding_token_id", GgufValue::u32(0));
  set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
  set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(false));
  return quantized_metadata(kv, mix);
}

std::vector<TensorDesc> gemma2_tensors(const SyntheticShape& s) {
  const uint64_t embd = s.n_embd, q = uint64_t{s.n_head} * s.head_dim, kv = uint64_t{s.n_head_kv} * s.head_dim;
  std::vector<TensorDesc> t;
  auto add = [&](std::string name, std::vector<uint64_t> dims) { t.push_back({std::move(name), std::move(dims)}); };
  add("token_embd.weight", {embd, s.n_vocab});
  for (uint32_t i = 0; i < s.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".";
    add(b + "attn_norm.weight", {embd});
    add(b + "post_attention_norm.weight", {embd});
    add(b + "ffn_norm.weight", {embd});
    add(b + "post_ffw_norm.weight", {embd});
    add(b + "attn_q.weight", {embd, q});
    add(b + "attn_k.weight", {embd, kv});
    add(b + "attn_v.weight", {embd, kv});
    add(b + "attn_output.weight", {q, embd});
    add(b + "ffn_gate.weight", {embd, s.n_ff});
    add(b + "ffn_up.weight", {embd, s.n_ff});
    add(b + "ffn_down.weight", {s.n_ff, embd});
  }
  add("output_norm.weight", {embd});
  return t;
}

void synthetic_row(uint64_t seed, const TensorDesc& tensor, uint64_t row, float* out) {
  uint64_t state = seed;
  state = splitmix64(state) ^ fnv1a(tensor.name);
  state = splitmix64(state) ^ row;
  const uint64_t cols = tensor.dims[0];
  if (tensor.dims.size() == 1) {
    // Norm weights (Gemma's +1 included, as in GGUF files): 1 +- 5%.
    for (uint64_t i = 0; i < cols; ++i) out[i] = 1.0f + 0.05f * gaussian_like(state);
    return;
  }
  // A matrix row holds the weights of one output, over fan_in = cols inputs.
  const float std_dev = 1.0f / std::sqrt(static_cast<float>(cols));
  for (uint64_t i = 0; i < cols; ++i) {
    const float z = gaussian_like(state);
    out[i] = z != 0.0f ? z * std_dev : std_dev / 1024.0f;  // never exactly zero
  }
}

Status make_model(const MakeModelOptions& options, const std::string& out_path) {
  const SyntheticShape& shape = options.shape;
  const SyntheticVocab vocab = synthetic_vocab(shape.n_vocab);
  const std::vector<TensorDesc> tensors = gemma2_tensors(shape);
  KP_TRY(std::vector<PlannedTensor> plan, plan_quantization(tensors, options.mix, shape.n_layer));

  std::vector<format::StreamedTensor> streamed;
  streamed.reserve(plan.size());
  const uint64_t seed = options.seed;
  for (const PlannedTensor& p : plan) {
    const TensorDesc& desc = tensors[p.source];
    format::StreamedTensor t;
    t.spec = {desc.name, p.type, desc.dims};
    t.rows = [seed, &desc](uint64_t row, std::span<float> out) {
      synthetic_row(seed, desc, row, out.data());
      return Status{};
    };
    streamed.push_back(std::move(t));
  }
  format::StreamOptions stream;
  stream.n_threads = options.n_threads;
  if (options.on_tensor) {
    stream.on_tensor = [&](size_t i, const format::StreamedTensor& t) {
      options.on_tensor(i, streamed.size(), t.spec.name, t.spec.type);
    };
  }
  return format::write_gguf_streamed(out_path, synthetic_metadata(shape, vocab, options.mix), streamed, stream);
}

}  // namespace kp::model
