// The real fixtures open and carry what tests/data's README says they carry:
// Gemma 2, vocab 4096, hidden 256, 6 layers, 4 heads of 64, 2 KV heads, FFN 768;
// 68 tensors (11 per layer + token_embd + output_norm).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>

#include "format/gguf.h"

namespace kp::format {
namespace {

struct Fixture {
  const char* path;
  GgmlType matrix_type;  // type of blk.0.attn_q.weight
  GgmlType embd_type;    // type of token_embd.weight
  uint64_t n_kv;
};

const Fixture kFixtures[] = {
    {KP_TEST_DATA "/kjv-tiny-f16.gguf", GgmlType::F16, GgmlType::F16, 26},
    {KP_TEST_DATA "/kjv-tiny-q4_k.gguf", GgmlType::Q4_K, GgmlType::Q4_K, 27},
    {KP_SOURCE_DIR "/models/kjv-tiny-q4_k_m.gguf", GgmlType::Q4_K, GgmlType::Q6_K, 27},
};

void expect_tensor(const GgufFile& f, const char* name, GgmlType type, std::vector<uint64_t> dims,
                   uint64_t n_bytes) {
  const GgufTensorInfo* t = f.tensor(name);
  ASSERT_NE(t, nullptr) << name;
  EXPECT_EQ(t->type, type) << name;
  EXPECT_EQ(t->dims, dims) << name;
  EXPECT_EQ(t->n_bytes, n_bytes) << name;
  EXPECT_EQ(t->data, f.file()->data() + f.data_offset() + t->offset) << name;
}

uint64_t bytes_of(GgmlType t, uint64_t n) {
  switch (t) {
    case GgmlType::F32: return n * 4;
    case GgmlType::F16: return n * 2;
    case GgmlType::Q4_K: return n / 256 * 144;
    case GgmlType::Q6_K: return n / 256 * 210;
    default: ADD_FAILURE() << "unexpected type"; return 0;
  }
}

TEST(GgufFixtures, OpenAndDescribeGemma2) {
  for (const Fixture& fx : kFixtures) {
    SCOPED_TRACE(fx.path);
    const Result<GgufFile> r = GgufFile::open(fx.path);
    ASSERT_TRUE(r.ok()) << r.error().message;
    const GgufFile& f = *r;
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.metadata().size(), fx.n_kv);
    EXPECT_EQ(f.get_string("general.architecture").value(), "gemma2");
    EXPECT_EQ(f.get_u64("gemma2.block_count").value(), 6u);
    EXPECT_EQ(f.get_u64("gemma2.embedding_length").value(), 256u);
    EXPECT_EQ(f.get_u64("gemma2.feed_forward_length").value(), 768u);
    EXPECT_EQ(f.get_u64("gemma2.attention.head_count_kv").value(), 2u);
    EXPECT_FLOAT_EQ(static_cast<float>(f.get_f64("gemma2.attn_logit_softcapping").value()), 50.0f);
    EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token").value());
    EXPECT_EQ(f.get_string("tokenizer.ggml.model").value(), "llama");

    const GgufArray* tokens = f.find("tokenizer.ggml.tokens")->as_array();
    ASSERT_NE(tokens, nullptr);
    EXPECT_EQ(tokens->elem_type, GgufValueType::STRING);
    ASSERT_EQ(tokens->elems.size(), 4096u);
    EXPECT_EQ(tokens->elems[2].as_string("tokens").value(), "<bos>");
    EXPECT_EQ(f.find("tokenizer.ggml.scores")->as_array()->elem_type, GgufValueType::FLOAT32);
    EXPECT_EQ(f.find("tokenizer.ggml.token_type")->as_array()->elem_type, GgufValueType::INT32);

    ASSERT_EQ(f.tensors().size(), 68u);
    expect_tensor(f, "token_embd.weight", fx.embd_type, {256, 4096}, bytes_of(fx.embd_type, 256 * 4096));
    expect_tensor(f, "blk.0.attn_q.weight", fx.matrix_type, {256, 256}, bytes_of(fx.matrix_type, 256 * 256));
    expect_tensor(f, "blk.3.attn_k.weight", fx.matrix_type, {256, 128}, bytes_of(fx.matrix_type, 256 * 128));
    expect_tensor(f, "blk.5.ffn_gate.weight", fx.matrix_type, {256, 768}, bytes_of(fx.matrix_type, 256 * 768));
    expect_tensor(f, "blk.5.post_ffw_norm.weight", GgmlType::F32, {256}, 1024);
    expect_tensor(f, "output_norm.weight", GgmlType::F32, {256}, 1024);
    EXPECT_EQ(f.tensor("blk.0.attn_q.weight")->rows(), 256u);
    EXPECT_EQ(f.tensor("blk.0.ffn_down.weight")->cols(), 768u);
    EXPECT_EQ(f.tensor("output.weight"), nullptr);  // tied to token_embd

    // Every tensor lies inside the file; the last one ends at its end.
    uint64_t end = 0;
    for (const GgufTensorInfo& t : f.tensors()) end = std::max(end, f.data_offset() + t.offset + t.n_bytes);
    EXPECT_LE(end, f.file_size());
    EXPECT_GT(end + f.alignment(), f.file_size());
  }
}

TEST(GgufFixtures, Q4KMMixesQ4KAndQ6K) {
  const Result<GgufFile> r = GgufFile::open(KP_SOURCE_DIR "/models/kjv-tiny-q4_k_m.gguf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::map<GgmlType, int> count;
  for (const GgufTensorInfo& t : r->tensors()) ++count[t.type];
  EXPECT_EQ(count[GgmlType::F32], 25);
  EXPECT_EQ(count[GgmlType::Q4_K], 38);
  EXPECT_EQ(count[GgmlType::Q6_K], 5);
  EXPECT_EQ(r->tensor("blk.2.attn_v.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(r->tensor("blk.5.ffn_down.weight")->type, GgmlType::Q6_K);
  EXPECT_EQ(r->tensor("blk.1.ffn_down.weight")->type, GgmlType::Q4_K);
  EXPECT_EQ(r->tensor("token_embd.weight")->offset, 1024u);
  EXPECT_EQ(r->data_offset(), 97952u);  // infos end at 97933, padded to 32
}

}  // namespace
}  // namespace kp::format
