// Model quantization against llama.cpp's own output for the same model:
// quantizing tests/data/kjv-tiny-f16.gguf to q4_k_m must give
// models/kjv-tiny-q4_k_m.gguf's tensor order, types and metadata exactly, and
// per tensor a weight RMS error (vs the F16 weights) within 1.1x of llama.cpp's.
// Also: the other mixes, requantizing, the fallback for short rows, the
// use_more_bits layers, and `kpath quantize`.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "format/gguf.h"
#include "format/quant.h"
#include "model/quantize_model.h"

namespace kp::model {
namespace {

using format::GgmlType;
using format::GgufFile;
using format::GgufTensorInfo;
using format::GgufValue;

const char* const kF16 = KP_TEST_DATA "/kjv-tiny-f16.gguf";
const char* const kLlamaQ4KM = KP_SOURCE_DIR "/models/kjv-tiny-q4_k_m.gguf";

std::string quantize_temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kp_quantize_model_" + name)).string();
}

GgufFile open_quantized_or_die(const std::string& path) {
  Result<GgufFile> f = GgufFile::open(path);
  if (!f.ok()) {
    ADD_FAILURE() << f.error().message;
    std::abort();
  }
  return std::move(f).value();
}

std::vector<float> dequantized(const GgufTensorInfo& t) {
  std::vector<float> v(t.n_elements);
  const Status s = format::dequantize(t.type, t.data, v.data(), static_cast<int64_t>(v.size()));
  EXPECT_TRUE(s.ok()) << t.name << ": " << (s.ok() ? "" : s.error().message);
  return v;
}

double rms_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
  return std::sqrt(e / static_cast<double>(a.size()));
}

void expect_same_value(const GgufValue& a, const GgufValue& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  if (const format::GgufArray* arr = a.as_array()) {
    const format::GgufArray* brr = b.as_array();
    ASSERT_NE(brr, nullptr) << where;
    ASSERT_EQ(arr->elem_type, brr->elem_type) << where;
    ASSERT_EQ(arr->elems.size(), brr->elems.size()) << where;
    for (size_t i = 0; i < arr->elems.size(); ++i) expect_same_value(arr->elems[i], brr->elems[i], where);
  } else {
    EXPECT_TRUE(a.v == b.v) << where;
  }
}

Status quantize_to(const std::string& in, const std::string& out, QuantMix mix, int threads = 0) {
  QuantizeOptions opt;
  opt.mix = mix;
  opt.n_threads = threads;
  return quantize_model(in, out, opt);
}

TEST(QuantizeModel, UseMoreBitsPicksLlamaCppLayers) {
  auto picked = [](int n) {
    std::vector<int> v;
    for (int i = 0; i < n; ++i) {
      if (use_more_bits(i, n)) v.push_back(i);
    }
    return v;
  };
  EXPECT_EQ(picked(6), (std::vector<int>{2, 5}));  // the kjv fixture: blk.2 and blk.5 are Q6_K
  EXPECT_EQ(picked(26), (std::vector<int>{0, 1, 2, 5, 8, 11, 14, 17, 20, 22, 23, 24, 25}));  // Gemma 2 2B
}

TEST(QuantizeModel, MixNames) {
  EXPECT_EQ(parse_quant_mix("Q4_K_M"), QuantMix::Q4_K_M);
  EXPECT_EQ(parse_quant_mix("q8_0"), QuantMix::Q8_0);
  EXPECT_EQ(parse_quant_mix("f16"), QuantMix::F16);
  EXPECT_FALSE(parse_quant_mix("q5_k_m").has_value());
  EXPECT_EQ(llama_file_type(QuantMix::Q4_K_M), 15u);
  EXPECT_EQ(llama_file_type(QuantMix::Q4_K), 14u);
  EXPECT_EQ(llama_file_type(QuantMix::Q6_K), 18u);
  EXPECT_EQ(llama_file_type(QuantMix::Q8_0), 7u);
  EXPECT_EQ(llama_file_type(QuantMix::F16), 1u);
  EXPECT_NE(quant_mix_names().find("q4_k_m"), std::string::npos);
}

TEST(QuantizeModel, Q4_K_MReproducesLlamaCpp) {
  const std::string out = quantize_temp_path("q4_k_m.gguf");
  const Status s = quantize_to(kF16, out, QuantMix::Q4_K_M);
  ASSERT_TRUE(s.ok()) << s.error().message;
  const GgufFile mine = open_quantized_or_die(out);
  const GgufFile ref = open_quantized_or_die(kLlamaQ4KM);
  const GgufFile src = open_quantized_or_die(kF16);

  // Metadata: same keys, order and values (file_type 15 and
  // quantization_version 2 moved to the end).
  ASSERT_EQ(mine.metadata().size(), ref.metadata().size());
  for (size_t i = 0; i < ref.metadata().size(); ++i) {
    EXPECT_EQ(mine.metadata()[i].first, ref.metadata()[i].first) << i;
    expect_same_value(mine.metadata()[i].second, ref.metadata()[i].second, ref.metadata()[i].first);
  }
  EXPECT_EQ(mine.get_u64("general.file_type").value(), 15u);

  // Tensors: same order, shapes and types; error within 1.1x of llama.cpp's.
  ASSERT_EQ(mine.tensors().size(), ref.tensors().size());
  double worst_ratio = 0;
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const GgufTensorInfo& r = ref.tensors()[i];
    const GgufTensorInfo& m = mine.tensors()[i];
    SCOPED_TRACE(r.name);
    ASSERT_EQ(m.name, r.name);
    EXPECT_EQ(m.dims, r.dims);
    EXPECT_EQ(type_name(m.type), type_name(r.type));
    const GgufTensorInfo* f = src.tensor(r.name);
    ASSERT_NE(f, nullptr);
    if (r.dims.size() == 1) {
      ASSERT_EQ(m.n_bytes, f->n_bytes);
      EXPECT_EQ(std::memcmp(m.data, f->data, m.n_bytes), 0) << "1-D tensors are copied";
      continue;
    }
    const std::vector<float> weights = dequantized(*f);
    const double e_mine = rms_diff(dequantized(m), weights);
    const double e_ref = rms_diff(dequantized(r), weights);
    EXPECT_GT(e_ref, 0.0);
    EXPECT_LE(e_mine, 1.1 * e_ref) << "rms error " << e_mine << " vs llama.cpp " << e_ref;
    worst_ratio = std::max(worst_ratio, e_mine / e_ref);
  }
  RecordProperty("worst_rms_ratio_vs_llama_cpp", std::to_string(worst_ratio));
  std::remove(out.c_str());
}

TEST(QuantizeModel, OtherMixes) {
  const GgufFile src = open_quantized_or_die(kF16);
  struct Case {
    QuantMix mix;
    GgmlType matrix;
    uint64_t file_type;
    double max_rel_rms;  // error of the matrices relative to their RMS
  };
  const Case cases[] = {
      {QuantMix::Q4_K, GgmlType::Q4_K, 14, 0.12},
      {QuantMix::Q6_K, GgmlType::Q6_K, 18, 0.03},
      {QuantMix::Q8_0, GgmlType::Q8_0, 7, 0.008},
      {QuantMix::F16, GgmlType::F16, 1, 0.0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(quant_mix_name(c.mix));
    const std::string out = quantize_temp_path("mix.gguf");
    const Status s = quantize_to(kF16, out, c.mix, 2);
    ASSERT_TRUE(s.ok()) << s.error().message;
    const GgufFile f = open_quantized_or_die(out);
    EXPECT_EQ(f.get_u64("general.file_type").value(), c.file_type);
    EXPECT_EQ(f.get_u64("general.quantization_version").value(), 2u);
    ASSERT_EQ(f.tensors().size(), src.tensors().size());
    for (const GgufTensorInfo& t : f.tensors()) {
      SCOPED_TRACE(t.name);
      const GgufTensorInfo* orig = src.tensor(t.name);
      ASSERT_NE(orig, nullptr);
      if (t.dims.size() == 1) {
        EXPECT_EQ(t.type, GgmlType::F32);
        continue;
      }
      EXPECT_EQ(t.type, c.matrix);
      const std::vector<float> w = dequantized(*orig);
      const std::vector<float> zero(w.size(), 0.0f);
      EXPECT_LE(rms_diff(dequantized(t), w), c.max_rel_rms * rms_diff(w, zero));
    }
    std::remove(out.c_str());
  }
}

TEST(QuantizeModel, RequantizesQuantizedInput) {
  // Same mix: every tensor already has its type and is copied byte for byte.
  const std::string same = quantize_temp_path("same.gguf");
  ASSERT_TRUE(quantize_to(kLlamaQ4KM, same, QuantMix::Q4_K_M).ok());
  const GgufFile ref = open_quantized_or_die(kLlamaQ4KM);
  const GgufFile copy = open_quantized_or_die(same);
  ASSERT_EQ(copy.tensors().size(), ref.tensors().size());
  for (size_t i = 0; i < ref.tensors().size(); ++i) {
    const GgufTensorInfo& a = ref.tensors()[i];
    const GgufTensorInfo& b = copy.tensors()[i];
    ASSERT_EQ(a.name, b.name);
    ASSERT_EQ(a.n_bytes, b.n_bytes);
    EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0) << a.name;
  }
  std::remove(same.c_str());

  // To Q8_0: K-quant blocks are dequantized and re-encoded.
  const std::string q8 = quantize_temp_path("q8.gguf");
  ASSERT_TRUE(quantize_to(kLlamaQ4KM, q8, QuantMix::Q8_0).ok());
  const GgufFile f = open_quantized_or_die(q8);
  const GgufTensorInfo* t = f.tensor("blk.2.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->type, GgmlType::Q8_0);
  const std::vector<float> from = dequantized(*ref.tensor("blk.2.ffn_down.weight"));
  const std::vector<float> zero(from.size(), 0.0f);
  EXPECT_LE(rms_diff(dequantized(*t), from), 0.008 * rms_diff(from, zero));
  std::remove(q8.c_str());
}

std::map<std::string, GgmlType> planned(const std::vector<TensorDesc>& t, QuantMix mix, uint32_t n_layer) {
  Result<std::vector<PlannedTensor>> p = plan_quantization(t, mix, n_layer);
  EXPECT_TRUE(p.ok()) << p.error().message;
  std::map<std::string, GgmlType> out;
  if (p.ok()) {
    for (const PlannedTensor& x : *p) out[t[x.source].name] = x.type;
  }
  return out;
}

TEST(QuantizeModel, PlanRules) {
  const GgmlType f32 = GgmlType::F32;
  // Rows that are not whole 256-blocks fall back to Q8_0 (whole 32-blocks) or F16.
  const std::vector<TensorDesc> odd = {
      {"blk.0.attn_q.weight", {96, 8}, f32},  {"blk.0.attn_k.weight", {100, 8}, f32},
      {"blk.0.attn_v.weight", {96, 8}, f32},  {"blk.0.ffn_down.weight", {100, 8}, f32},
      {"blk.0.attn_norm.weight", {96}, f32},  {"rope_freqs", {32, 2}, f32},
      {"blk.0.layer_norm.weight", {256, 2}, f32},
  };
  std::map<std::string, GgmlType> p = planned(odd, QuantMix::Q4_K_M, 1);
  EXPECT_EQ(p["blk.0.attn_q.weight"], GgmlType::Q8_0);
  EXPECT_EQ(p["blk.0.attn_k.weight"], GgmlType::F16);
  EXPECT_EQ(p["blk.0.attn_v.weight"], GgmlType::Q8_0);   // Q6_K (layer 0 of 1) -> Q8_0
  EXPECT_EQ(p["blk.0.ffn_down.weight"], GgmlType::F16);
  EXPECT_EQ(p["blk.0.attn_norm.weight"], f32);            // 1-D
  EXPECT_EQ(p["rope_freqs"], f32);                        // not a weight
  EXPECT_EQ(p["blk.0.layer_norm.weight"], f32);           // a norm
  EXPECT_EQ(planned(odd, QuantMix::Q8_0, 1)["blk.0.attn_k.weight"], GgmlType::F16);

  // Untied output: output.weight gets Q6_K (Q8_0 for short rows), token_embd keeps Q4_K.
  const std::vector<TensorDesc> untied = {
      {"token_embd.weight", {256, 10}, f32}, {"output.weight", {256, 10}, f32}, {"blk.0.ffn_up.weight", {256, 4}, f32}};
  p = planned(untied, QuantMix::Q4_K_M, 1);
  EXPECT_EQ(p["token_embd.weight"], GgmlType::Q4_K);
  EXPECT_EQ(p["output.weight"], GgmlType::Q6_K);
  EXPECT_EQ(p["blk.0.ffn_up.weight"], GgmlType::Q4_K);
  EXPECT_EQ(planned({{"token_embd.weight", {256, 10}, f32}}, QuantMix::Q4_K_M, 1)["token_embd.weight"],
            GgmlType::Q6_K);
  EXPECT_EQ(planned({{"output.weight", {96, 10}, f32}}, QuantMix::Q4_K_M, 1)["output.weight"], GgmlType::Q8_0);
  EXPECT_EQ(planned(untied, QuantMix::Q4_K, 1)["output.weight"], GgmlType::Q4_K);  // pure

  // A type kpath cannot read cannot be converted.
  const Result<std::vector<PlannedTensor>> bad =
      plan_quantization({{"blk.0.attn_q.weight", {256, 4}, GgmlType::Q4_0}}, QuantMix::Q8_0, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("blk.0.attn_q.weight"), std::string::npos) << bad.error().message;
}

TEST(QuantizeModel, Errors) {
  const Status missing = quantize_to("/nonexistent/model.gguf", quantize_temp_path("x.gguf"), QuantMix::Q8_0);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/model.gguf"), std::string::npos);

  const std::string copy = quantize_temp_path("self.gguf");
  std::filesystem::copy_file(kF16, copy, std::filesystem::copy_options::overwrite_existing);
  const Status self = quantize_to(copy, copy, QuantMix::Q8_0);
  ASSERT_FALSE(self.ok());
  EXPECT_NE(self.error().message.find("overwrite the input"), std::string::npos) << self.error().message;
  EXPECT_EQ(std::filesystem::file_size(copy), std::filesystem::file_size(kF16));
  std::remove(copy.c_str());
}

TEST(QuantizeModel, Cli) {
  const std::string out = quantize_temp_path("cli.gguf");
  const std::string cmd = std::string(KP_BINARY) + " quantize " + kF16 + " " + out + " --type q6_k > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const GgufFile f = open_quantized_or_die(out);
  EXPECT_EQ(f.get_u64("general.file_type").value(), 18u);
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight")->type, GgmlType::Q6_K);
  std::remove(out.c_str());

  const std::string bad = std::string(KP_BINARY) + " quantize " + kF16 + " " + out + " --type q3_k 2> /dev/null";
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace kp::model
