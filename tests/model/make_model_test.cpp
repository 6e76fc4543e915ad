// Synthetic models: `--like tiny` has exactly the layout llama.cpp gave the
// kjv fixture (tensor names, order, shapes, types, metadata keys); the real
// 2B / 9B shapes and their q4_k_m plan; the vocabulary's structure; weights of
// the promised scale; same seed -> same bytes on any thread count; the file
// loads in the tokenizer; and `kpath make-model`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "format/gguf.h"
#include "format/quant.h"
#include "model/make_model.h"
#include "model/tokenizer.h"

namespace kp::model {
namespace {

using format::GgmlType;
using format::GgufFile;
using format::GgufTensorInfo;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kp_make_model_" + name)).string();
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

GgufFile open_or_die(const std::string& path) {
  Result<GgufFile> f = GgufFile::open(path);
  if (!f.ok()) {
    ADD_FAILURE() << f.error().message;
    std::abort();
  }
  return std::move(f).value();
}

Status make(const std::string& like, QuantMix mix, uint64_t seed, const std::string& out, int threads = 0) {
  MakeModelOptions opt;
  opt.shape = *synthetic_shape(like);
  opt.mix = mix;
  opt.seed = seed;
  opt.n_threads = threads;
  return make_model(opt, out);
}

TEST(MakeModel, TinyHasTheFixtureLayout) {
  const std::string out = temp_path("tiny_q4_k_m.gguf");
  const Status s = make("tiny", QuantMix::Q4_K_M, 1, out);
  ASSERT_TRUE(s.ok()) << s.error().message;
  const GgufFile mine = open_or_die(out);
  const GgufFile ref = open_or_die(KP_SOURCE_DIR "/models/kjv-tiny-q4_k_m.gguf");

  ASSERT_EQ(mine.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const GgufTensorInfo& r = ref.tensors()[i];
    const GgufTensorInfo& m = mine.tensors()[i];
    EXPECT_EQ(m.name, r.name) << i;
    EXPECT_EQ(m.dims, r.dims) << r.name;
    EXPECT_EQ(type_name(m.type), type_name(r.type)) << r.name;
  }
  // The same keys with the same value types; shapes and tokenizer settings equal.
  ASSERT_EQ(mine.metadata().size(), ref.metadata().size());
  for (const auto& [key, value] : ref.metadata()) {
    SCOPED_TRACE(key);
    const format::GgufValue* v = mine.find(key);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->type, value.type);
    if (key.rfind("gemma2.", 0) == 0 || key.rfind("tokenizer.ggml.", 0) == 0 || key.rfind("general.", 0) == 0) {
      if (key == "general.name" || key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.scores" ||
          key == "tokenizer.ggml.token_type") {
        continue;
      }
      EXPECT_TRUE(v->v == value.v);
    }
  }
  EXPECT_EQ(mine.find("tokenizer.ggml.tokens")->as_array()->elems.size(), 4096u);
  std::remove(out.c_str());
}

TEST(MakeModel, RealShapes) {
  const SyntheticShape s2 = *synthetic_shape("gemma2-2b");
  EXPECT_EQ(s2.n_vocab, 256000u);
  EXPECT_EQ(s2.n_embd, 2304u);
  EXPECT_EQ(s2.n_layer, 26u);
  EXPECT_EQ(s2.n_ff, 9216u);
  EXPECT_EQ(s2.sliding_window, 4096u);
  const SyntheticShape s9 = *synthetic_shape("gemma2-9b");
  EXPECT_EQ(s9.n_embd, 3584u);
  EXPECT_EQ(s9.n_layer, 42u);
  EXPECT_EQ(s9.n_head, 16u);
  EXPECT_EQ(s9.n_head_kv, 8u);
  EXPECT_EQ(s9.n_ff, 14336u);
  EXPECT_FALSE(synthetic_shape("gemma2-27b").has_value());

  const std::vector<TensorDesc> t = gemma2_tensors(s2);
  ASSERT_EQ(t.size(), 2u + 26u * 11u);
  std::unordered_map<std::string, std::vector<uint64_t>> dims;
  for (const TensorDesc& d : t) dims[d.name] = d.dims;
  EXPECT_EQ(dims["token_embd.weight"], (std::vector<uint64_t>{2304, 256000}));
  EXPECT_EQ(dims["blk.25.attn_q.weight"], (std::vector<uint64_t>{2304, 2048}));
  EXPECT_EQ(dims["blk.0.attn_k.weight"], (std::vector<uint64_t>{2304, 1024}));
  EXPECT_EQ(dims["blk.3.attn_output.weight"], (std::vector<uint64_t>{2048, 2304}));
  EXPECT_EQ(dims["blk.7.ffn_down.weight"], (std::vector<uint64_t>{9216, 2304}));
  EXPECT_EQ(dims["blk.7.post_ffw_norm.weight"], (std::vector<uint64_t>{2304}));

  // q4_k_m plan: which layers get Q6_K, and a file of about 1.7 GB like
  // llama.cpp's gemma-2-2b Q4_K_M.
  Result<std::vector<PlannedTensor>> plan = plan_quantization(t, QuantMix::Q4_K_M, s2.n_layer);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const std::set<int> q6_layers = {0, 1, 2, 5, 8, 11, 14, 17, 20, 22, 23, 24, 25};
  uint64_t bytes = 0;
  for (const PlannedTensor& p : *plan) {
    const TensorDesc& d = t[p.source];
    uint64_t n = 1;
    for (uint64_t x : d.dims) n *= x;
    bytes += format::row_bytes(p.type, n);
    int layer = -1;
    std::sscanf(d.name.c_str(), "blk.%d.", &layer);
    const bool more = d.name.find("attn_v") != std::string::npos || d.name.find("ffn_down") != std::string::npos;
    if (d.dims.size() == 1) {
      EXPECT_EQ(p.type, GgmlType::F32) << d.name;
    } else if (d.name == "token_embd.weight" || (more && q6_layers.count(layer))) {
      EXPECT_EQ(p.type, GgmlType::Q6_K) << d.name;
    } else {
      EXPECT_EQ(p.type, GgmlType::Q4_K) << d.name;
    }
  }
  EXPECT_GT(bytes, 1'600'000'000u);
  EXPECT_LT(bytes, 1'800'000'000u);

  const auto kv = synthetic_metadata(s9, synthetic_vocab(400), QuantMix::Q8_0);
  std::unordered_map<std::string, const format::GgufValue*> m;
  for (const auto& [k, v] : kv) m[k] = &v;
  for (const char* key :
       {"gemma2.context_length", "gemma2.embedding_length", "gemma2.block_count", "gemma2.feed_forward_length",
        "gemma2.attention.head_count", "gemma2.attention.head_count_kv", "gemma2.attention.key_length",
        "gemma2.attention.value_length", "gemma2.attention.layer_norm_rms_epsilon",
        "gemma2.attention.sliding_window", "gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping"}) {
    EXPECT_TRUE(m.count(key)) << key;
  }
  EXPECT_EQ(m["gemma2.embedding_length"]->as_u64("k").value(), 3584u);
  EXPECT_EQ(m["gemma2.attention.head_count"]->as_u64("k").value(), 16u);
  EXPECT_EQ(m["gemma2.attention.key_length"]->as_u64("k").value(), 256u);
  EXPECT_EQ(m["gemma2.context_length"]->as_u64("k").value(), 8192u);
  EXPECT_EQ(m["general.file_type"]->as_u64("k").value(), 7u);
  EXPECT_FLOAT_EQ(static_cast<float>(m["gemma2.final_logit_softcapping"]->as_f64("k").value()), 30.0f);
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

TEST(MakeModel, Vocabulary) {
  for (uint32_t n : {4096u, 256000u}) {
    SCOPED_TRACE(n);
    const SyntheticVocab v = synthetic_vocab(n);
    ASSERT_EQ(v.tokens.size(), n);
    ASSERT_EQ(v.scores.size(), n);
    ASSERT_EQ(v.types.size(), n);
    EXPECT_EQ(v.tokens[0], "<pad>");
    EXPECT_EQ(v.tokens[1], "<eos>");
    EXPECT_EQ(v.tokens[2], "<bos>");
    EXPECT_EQ(v.tokens[3], "<unk>");
    EXPECT_EQ((std::vector<int32_t>(v.types.begin(), v.types.begin() + 4)), (std::vector<int32_t>{3, 3, 3, 2}));
    EXPECT_EQ(v.tokens[4], "<0x00>");
    EXPECT_EQ(v.tokens[4 + 0x0a], "<0x0A>");
    EXPECT_EQ(v.tokens[259], "<0xFF>");
    for (int i = 4; i < 260; ++i) ASSERT_EQ(v.types[i], 6) << i;

    std::unordered_set<std::string> seen(v.tokens.begin(), v.tokens.end());
    EXPECT_EQ(seen.size(), n) << "pieces are unique";
    EXPECT_TRUE(seen.count("\xe2\x96\x81the"));  // "▁the"
    for (uint32_t i = 260; i < n; ++i) {
      ASSERT_EQ(v.types[i], 1) << i;
      ASSERT_TRUE(valid_utf8(v.tokens[i])) << i;
      ASSERT_FALSE(v.tokens[i].empty());
      if (i > 260) {
        ASSERT_LT(v.scores[i], v.scores[i - 1]) << "scores decrease";
      }
      // A multi-character piece splits into two pieces of the vocabulary, so
      // score-ordered merges can build it.
      const std::string& p = v.tokens[i];
      const bool single = p.size() == 1 || p == "\xe2\x96\x81";
      if (single) continue;
      bool splits = false;
      for (size_t k = 1; k < p.size() && !splits; ++k) {
        if ((static_cast<unsigned char>(p[k]) & 0xC0) == 0x80) continue;
        splits = seen.count(p.substr(0, k)) && seen.count(p.substr(k));
      }
      ASSERT_TRUE(splits) << p;
    }
  }
}

TEST(MakeModel, WeightsHaveTheirScale) {
  const std::string out = temp_path("tiny_f32.gguf");
  ASSERT_TRUE(make("tiny", QuantMix::F32, 42, out).ok());
  const GgufFile f = open_or_die(out);
  for (const GgufTensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_EQ(t.type, GgmlType::F32);
    const float* w = reinterpret_cast<const float*>(t.data);
    double sum2 = 0;
    float lo = w[0], hi = w[0];
    for (uint64_t i = 0; i < t.n_elements; ++i) {
      ASSERT_NE(w[i], 0.0f) << "element " << i;
      sum2 += static_cast<double>(w[i]) * w[i];
      lo = std::min(lo, w[i]);
      hi = std::max(hi, w[i]);
    }
    const double rms = std::sqrt(sum2 / static_cast<double>(t.n_elements));
    if (t.dims.size() == 1) {
      EXPECT_GT(lo, 0.8f);
      EXPECT_LT(hi, 1.2f);
      EXPECT_GT(hi - lo, 0.05f);  // not a constant
    } else {
      EXPECT_NEAR(rms, 1.0 / std::sqrt(static_cast<double>(t.dims[0])), 0.03 / std::sqrt(static_cast<double>(t.dims[0])));
      EXPECT_LT(lo, 0.0f);
      EXPECT_GT(hi, 0.0f);
    }
  }
  // Rows are what synthetic_row generates, and rows differ from each other.
  const GgufTensorInfo* q = f.tensor("blk.3.attn_q.weight");
  ASSERT_NE(q, nullptr);
  std::vector<float> row(q->cols());
  synthetic_row(42, TensorDesc{q->name, q->dims, GgmlType::F32}, 5, row.data());
  EXPECT_EQ(std::memcmp(row.data(), q->data + 5 * q->cols() * 4, row.size() * 4), 0);
  EXPECT_NE(std::memcmp(q->data, q->data + q->cols() * 4, q->cols() * 4), 0);
  std::remove(out.c_str());
}

TEST(MakeModel, QuantizedRowsFollowTheirSource) {
  const std::string out = temp_path("tiny_q.gguf");
  ASSERT_TRUE(make("tiny", QuantMix::Q4_K_M, 3, out).ok());
  const GgufFile f = open_or_die(out);
  for (const char* name : {"blk.0.ffn_up.weight", "blk.2.ffn_down.weight", "token_embd.weight"}) {
    const GgufTensorInfo* t = f.tensor(name);
    ASSERT_NE(t, nullptr);
    const double bound = t->type == GgmlType::Q4_K ? 0.08 : 0.02;
    const TensorDesc desc{t->name, t->dims, GgmlType::F32};
    std::vector<float> src(t->cols()), got(t->cols());
    const size_t rb = format::row_bytes(t->type, t->cols());
    double err = 0, ref = 0;
    for (uint64_t r = 0; r < t->rows(); r += 7) {
      synthetic_row(3, desc, r, src.data());
      ASSERT_TRUE(format::dequantize(t->type, t->data + r * rb, got.data(), static_cast<int64_t>(got.size())).ok());
      for (size_t i = 0; i < src.size(); ++i) {
        err += (static_cast<double>(got[i]) - src[i]) * (static_cast<double>(got[i]) - src[i]);
        ref += static_cast<double>(src[i]) * src[i];
      }
    }
    EXPECT_LT(std::sqrt(err / ref), bound) << name;
  }
  std::remove(out.c_str());
}

TEST(MakeModel, SameSeedSameBytes) {
  const std::string a = temp_path("a.gguf"), b = temp_path("b.gguf"), c = temp_path("c.gguf");
  ASSERT_TRUE(make("tiny", QuantMix::Q6_K, 7, a, 1).ok());
  ASSERT_TRUE(make("tiny", QuantMix::Q6_K, 7, b, 3).ok());
  ASSERT_TRUE(make("tiny", QuantMix::Q6_K, 8, c, 2).ok());
  const std::vector<uint8_t> fa = read_all(a), fb = read_all(b), fc = read_all(c);
  ASSERT_FALSE(fa.empty());
  EXPECT_EQ(fa, fb);
  ASSERT_EQ(fa.size(), fc.size());
  EXPECT_NE(fa, fc);
  const GgufFile ga = open_or_die(a), gc = open_or_die(c);
  for (size_t i = 0; i < ga.tensors().size(); ++i) {
    const GgufTensorInfo& x = ga.tensors()[i];
    EXPECT_NE(std::memcmp(x.data, gc.tensors()[i].data, x.n_bytes), 0) << x.name << " depends on the seed";
  }
  for (const std::string& p : {a, b, c}) std::remove(p.c_str());
}

TEST(MakeModel, TokenizerLoadsTheVocabulary) {
  const std::string out = temp_path("tok.gguf");
  ASSERT_TRUE(make("tiny", QuantMix::Q8_0, 1, out).ok());
  const GgufFile f = open_or_die(out);
  Result<Tokenizer> tok = Tokenizer::from_gguf(f);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  EXPECT_EQ(tok->n_vocab(), 4096);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_TRUE(tok->add_bos_token());
  EXPECT_FALSE(tok->add_space_prefix());
  // " the" is one piece: "▁t", "▁th", "▁the" are the first merges.
  const std::vector<int32_t> ids = tok->encode(" the", false);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(tok->piece(ids[0]), "\xe2\x96\x81the");
  const std::string text = "In the beginning God created the heaven and the earth.\n";
  const std::vector<int32_t> verse = tok->encode(text, true);
  EXPECT_EQ(verse[0], 2);
  EXPECT_LT(verse.size(), text.size());
  EXPECT_EQ(tok->decode(verse), text);
  std::remove(out.c_str());
}

TEST(MakeModel, Cli) {
  const std::string out = temp_path("cli.gguf");
  const std::string cmd =
      std::string(KP_BINARY) + " make-model --like tiny --type q8_0 --seed 5 " + out + " > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const GgufFile f = open_or_die(out);
  EXPECT_EQ(f.tensor("blk.1.ffn_gate.weight")->type, GgmlType::Q8_0);
  EXPECT_EQ(f.get_u64("gemma2.block_count").value(), 6u);
  // The library with the same arguments writes the same bytes.
  const std::string lib = temp_path("lib.gguf");
  ASSERT_TRUE(make("tiny", QuantMix::Q8_0, 5, lib).ok());
  EXPECT_EQ(read_all(out), read_all(lib));
  std::remove(out.c_str());
  std::remove(lib.c_str());

  const std::string bad = std::string(KP_BINARY) + " make-model --like gemma2-7b --type q8_0 " + out + " 2> /dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace kp::model
