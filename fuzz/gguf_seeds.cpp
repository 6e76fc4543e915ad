// Writes the seed corpus of gguf_fuzz: small GGUF files (a few KiB each; the
// fixture models are megabytes, far past a useful -max_len) that between them
// reach every part of the reader and of what reads a model next:
//   values.gguf     every value type, arrays of each, nested and empty arrays
//   tensors.gguf    a tensor of each type kpath dequantizes, general.alignment 64
//   tokenizer.gguf  a SentencePiece vocabulary with byte and user-defined pieces
//   gemma2.gguf     a complete Gemma 2 model (config and tokenizer load) with tiny shapes
// Usage: kp_fuzz_gguf_seeds OUT_DIR
#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/check.h"
#include "format/gguf.h"
#include "format/quant.h"
#include "model/make_model.h"

namespace {

using kp::format::GgmlType;
using kp::format::GgufValue;
using kp::format::GgufValueType;
using kp::format::GgufWriter;

std::vector<float> ramp(uint64_t n) {
  std::vector<float> v(n);
  for (uint64_t i = 0; i < n; ++i) v[i] = static_cast<float>(static_cast<int64_t>(i % 17) - 8) / 8.0f;
  return v;
}

// `dims` (ne[0] first) of `type`, from a ramp: quantized where kpath can, else raw bytes.
void add(GgufWriter& w, const std::string& name, GgmlType type, std::vector<uint64_t> dims) {
  uint64_t n = 1;
  for (const uint64_t d : dims) n *= d;
  std::vector<uint8_t> bytes(kp::format::row_bytes(type, n));
  if (kp::format::can_quantize(type)) {
    const std::vector<float> src = ramp(n);
    KP_CHECK(kp::format::quantize(type, src.data(), bytes.data(), static_cast<int64_t>(n)).ok(), "quantizes");
  } else {
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 % 251);
  }
  KP_CHECK(w.add_tensor(name, type, std::move(dims), std::move(bytes)).ok(), "tensor added");
}

GgufWriter values() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("u8", GgufValue::u8(200));
  w.set("i8", GgufValue::i8(-100));
  w.set("u16", GgufValue::u16(60000));
  w.set("i16", GgufValue::i16(-30000));
  w.set("u32", GgufValue::u32(4000000000u));
  w.set("i32", GgufValue::i32(-2000000000));
  w.set("u64", GgufValue::u64(~uint64_t{0}));
  w.set("i64", GgufValue::i64(-1));
  w.set("f32", GgufValue::f32(1.5f));
  w.set("f64", GgufValue::f64(-2.25));
  w.set("bool", GgufValue::boolean(true));
  w.set("string", GgufValue::string("In the beginning \xE2\x96\x81 \xFF"));
  w.set("array.u8", GgufValue::array(GgufValueType::UINT8, {GgufValue::u8(1), GgufValue::u8(2)}));
  w.set("array.i32", GgufValue::array(GgufValueType::INT32, {GgufValue::i32(-1), GgufValue::i32(7)}));
  w.set("array.f32", GgufValue::array(GgufValueType::FLOAT32, {GgufValue::f32(0.5f)}));
  w.set("array.bool", GgufValue::array(GgufValueType::BOOL, {GgufValue::boolean(false)}));
  w.set("array.string", GgufValue::array(GgufValueType::STRING, {GgufValue::string("a"), GgufValue::string("")}));
  w.set("array.empty", GgufValue::array(GgufValueType::UINT64, {}));
  w.set("array.nested",
        GgufValue::array(GgufValueType::ARRAY,
                         {GgufValue::array(GgufValueType::INT64, {GgufValue::i64(3)}),
                          GgufValue::array(GgufValueType::ARRAY, {GgufValue::array(GgufValueType::FLOAT64, {})})}));
  return w;
}

GgufWriter tensors() {
  GgufWriter w;
  w.set_alignment(64);
  add(w, "f32", GgmlType::F32, {8, 2});
  add(w, "f16", GgmlType::F16, {8});
  add(w, "bf16", GgmlType::BF16, {4, 1, 1, 2});
  add(w, "q8_0", GgmlType::Q8_0, {32, 2});
  add(w, "q4_k", GgmlType::Q4_K, {256});
  add(w, "q5_k", GgmlType::Q5_K, {256});
  add(w, "q6_k", GgmlType::Q6_K, {256});
  add(w, "q4_0", GgmlType::Q4_0, {32});  // a type kpath names but does not read
  return w;
}

void set_vocab(GgufWriter& w, const kp::model::SyntheticVocab& v) {
  std::vector<GgufValue> tokens, scores, types;
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    tokens.push_back(GgufValue::string(v.tokens[i]));
    scores.push_back(GgufValue::f32(v.scores[i]));
    types.push_back(GgufValue::i32(v.types[i]));
  }
  w.set("tokenizer.ggml.model", GgufValue::string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::array(GgufValueType::STRING, std::move(tokens)));
  w.set("tokenizer.ggml.scores", GgufValue::array(GgufValueType::FLOAT32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::INT32, std::move(types)));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(2));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(3));
  w.set("tokenizer.ggml.padding_token_id", GgufValue::u32(0));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  w.set("tokenizer.ggml.add_space_prefix", GgufValue::boolean(true));
}

GgufWriter tokenizer() {
  kp::model::SyntheticVocab v = kp::model::synthetic_vocab(400);
  // Two user-defined pieces (type 4), matched whole before the merges.
  v.tokens[v.tokens.size() - 2] = "<start_of_turn>";
  v.types[v.types.size() - 2] = 4;
  v.tokens[v.tokens.size() - 1] = "\n\n";
  v.types[v.types.size() - 1] = 4;
  GgufWriter w;
  set_vocab(w, v);
  return w;
}

GgufWriter gemma2() {
  kp::model::SyntheticShape shape = *kp::model::synthetic_shape("tiny");
  shape.n_vocab = 400;
  shape.n_embd = 8;
  shape.n_layer = 2;
  shape.n_head = 2;
  shape.n_head_kv = 1;
  shape.head_dim = 4;
  shape.n_ff = 16;
  shape.n_ctx = 64;
  shape.sliding_window = 8;
  const kp::model::SyntheticVocab vocab = kp::model::synthetic_vocab(shape.n_vocab);
  GgufWriter w;
  for (auto& [key, value] : kp::model::synthetic_metadata(shape, vocab, kp::model::QuantMix::F16)) {
    w.set(key, std::move(value));
  }
  for (const kp::model::TensorDesc& t : kp::model::gemma2_tensors(shape)) {
    add(w, t.name, t.dims.size() >= 2 ? GgmlType::F16 : GgmlType::F32, t.dims);
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kp_fuzz_gguf_seeds OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::pair<const char*, GgufWriter> files[] = {
      {"values.gguf", values()}, {"tensors.gguf", tensors()}, {"tokenizer.gguf", tokenizer()}, {"gemma2.gguf", gemma2()}};
  for (const auto& [name, writer] : files) {
    const kp::Status st = writer.write(dir + "/" + name);
    if (!st) {
      fmt::print(stderr, "kp_fuzz_gguf_seeds: {}\n", st.error().message);
      return 1;
    }
  }
  return 0;
}
