// Dequantization against an outside oracle and hand-built blocks:
//  - the Q4_K / Q6_K tensors of models/kjv-tiny-q4_k_m.gguf against
//    tests/data/dequant-golden.bin (llama.cpp gguf-py's gguf.quants.dequantize);
//  - Q8_0, Q4_K, Q5_K and Q6_K blocks packed here bit by bit from ggml's
//    documented layout, with values whose products are exact in float;
//  - F16 / BF16 decoding and the errors for unsupported input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/fp16.h"
#include "format/gguf.h"
#include "format/quant.h"
#include "format/quant_blocks.h"

namespace kp::format {
namespace {

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST(QuantDequant, MatchesGgufPyGolden) {
  std::ifstream json_in(KP_TEST_DATA "/dequant-golden.json");
  ASSERT_TRUE(json_in.good());
  const nlohmann::json golden = nlohmann::json::parse(json_in);
  const std::vector<uint8_t> bin = read_file(KP_TEST_DATA "/dequant-golden.bin");
  ASSERT_FALSE(bin.empty());
  const Result<GgufFile> model = GgufFile::open(KP_SOURCE_DIR "/models/kjv-tiny-q4_k_m.gguf");
  ASSERT_TRUE(model.ok()) << model.error().message;

  ASSERT_EQ(golden.at("tensors").size(), 5u);
  int n_q4 = 0, n_q6 = 0;
  for (const nlohmann::json& t : golden.at("tensors")) {
    const std::string name = t.at("name");
    SCOPED_TRACE(name);
    const GgufTensorInfo* info = model->tensor(name);
    ASSERT_NE(info, nullptr);
    const std::string type = t.at("type");
    EXPECT_EQ(type, type_name(info->type));
    n_q4 += info->type == GgmlType::Q4_K;
    n_q6 += info->type == GgmlType::Q6_K;
    // shape is [rows, cols] = [ne1, ne0]
    ASSERT_EQ(t.at("shape").size(), 2u);
    EXPECT_EQ(t.at("shape")[0].get<uint64_t>(), info->dims[1]);
    EXPECT_EQ(t.at("shape")[1].get<uint64_t>(), info->dims[0]);
    const uint64_t count = t.at("count"), offset = t.at("offset");
    ASSERT_EQ(count, info->n_elements);
    ASSERT_LE(offset + count * 4, bin.size());

    std::vector<float> got(count);
    const Status s = dequantize(info->type, info->data, got.data(), static_cast<int64_t>(count));
    ASSERT_TRUE(s.ok()) << s.error().message;
    std::vector<float> want(count);
    std::memcpy(want.data(), bin.data() + offset, count * 4);
    double max_diff = 0;
    uint64_t worst = 0;
    for (uint64_t i = 0; i < count; ++i) {
      const double d = std::fabs(static_cast<double>(got[i]) - want[i]);
      if (!(d <= max_diff)) {
        max_diff = d;
        worst = i;
      }
    }
    EXPECT_LE(max_diff, 1e-6) << "element " << worst << ": " << got[worst] << " vs " << want[worst];
  }
  EXPECT_EQ(n_q4, 2);
  EXPECT_EQ(n_q6, 3);
}

TEST(QuantDequant, Q8_0Block) {
  BlockQ8_0 b{};
  b.d = f32_to_f16(0.25f);
  for (int i = 0; i < kQK8_0; ++i) b.qs[i] = static_cast<int8_t>(i * 8 - 128 + i % 3);
  std::vector<float> y(kQK8_0);
  ASSERT_TRUE(dequantize(GgmlType::Q8_0, &b, y.data(), kQK8_0).ok());
  for (int i = 0; i < kQK8_0; ++i) EXPECT_EQ(y[i], 0.25f * b.qs[i]) << i;
}

// Packs the 6-bit scales and mins of Q4_K / Q5_K: sub-blocks 0..3 in the low
// 6 bits of bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 with their low
// 4 bits in bytes 8..11 (scale low nibble, min high nibble) and their top 2 bits
// in the top 2 bits of bytes 0..3 (scales) and 4..7 (mins).
void pack_k_scales(const int sc[8], const int m[8], uint8_t out[12]) {
  std::memset(out, 0, 12);
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

TEST(QuantDequant, Q4_KBlock) {
  const int sc[8] = {1, 7, 13, 63, 17, 40, 5, 33};
  const int m[8] = {63, 0, 21, 9, 48, 2, 31, 16};
  BlockQ4_K b{};
  b.d = f32_to_f16(0.5f);
  b.dmin = f32_to_f16(0.125f);
  pack_k_scales(sc, m, b.scales);
  int q[kQK_K];
  for (int i = 0; i < kQK_K; ++i) q[i] = (i * 7 + i / 32) % 16;
  // Group g of 64 weights uses bytes qs[32g..32g+32): weight 64g+l in the low
  // nibble, weight 64g+32+l in the high nibble.
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) b.qs[32 * g + l] = static_cast<uint8_t>(q[64 * g + l] | (q[64 * g + 32 + l] << 4));
  }
  std::vector<float> y(kQK_K);
  ASSERT_TRUE(dequantize(GgmlType::Q4_K, &b, y.data(), kQK_K).ok());
  for (int i = 0; i < kQK_K; ++i) {
    const int j = i / 32;
    EXPECT_EQ(y[i], 0.5f * sc[j] * q[i] - 0.125f * m[j]) << i;
  }
}

TEST(QuantDequant, Q5_KBlock) {
  const int sc[8] = {3, 10, 17, 24, 31, 38, 45, 63};
  const int m[8] = {60, 55, 0, 45, 40, 35, 30, 25};
  BlockQ5_K b{};
  b.d = f32_to_f16(0.25f);
  b.dmin = f32_to_f16(0.5f);
  pack_k_scales(sc, m, b.scales);
  int q[kQK_K];
  for (int i = 0; i < kQK_K; ++i) q[i] = (i * 11 + 5) % 32;
  // Low 4 bits as in Q4_K; the fifth bit of weight 64g+l is bit 2g of qh[l],
  // that of weight 64g+32+l is bit 2g+1.
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      const int lo = q[64 * g + l], hi = q[64 * g + 32 + l];
      b.qs[32 * g + l] = static_cast<uint8_t>((lo & 15) | ((hi & 15) << 4));
      b.qh[l] = static_cast<uint8_t>(b.qh[l] | ((lo >> 4) << (2 * g)) | ((hi >> 4) << (2 * g + 1)));
    }
  }
  std::vector<float> y(kQK_K);
  ASSERT_TRUE(dequantize(GgmlType::Q5_K, &b, y.data(), kQK_K).ok());
  for (int i = 0; i < kQK_K; ++i) {
    const int j = i / 32;
    EXPECT_EQ(y[i], 0.25f * sc[j] * q[i] - 0.5f * m[j]) << i;
  }
}

TEST(QuantDequant, Q6_KBlock) {
  BlockQ6_K b{};
  b.d = f32_to_f16(-0.0625f);
  int8_t sc[16];
  for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(j % 2 == 0 ? -128 + 17 * j : 127 - 9 * j);
  std::memcpy(b.scales, sc, 16);
  int q[kQK_K];  // 0..63, value q - 32
  for (int i = 0; i < kQK_K; ++i) q[i] = (i * 13 + 7) % 64;
  // Half h (128 weights): for l < 32, weights 128h + l + 32k (k = 0..3) keep
  // their low nibble in ql[64h + l] (k = 0 low, k = 2 high) or ql[64h + 32 + l]
  // (k = 1 low, k = 3 high), and their top 2 bits in bits 2k..2k+1 of qh[32h + l].
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const int* w = q + 128 * h + l;
      b.ql[64 * h + l] = static_cast<uint8_t>((w[0] & 15) | ((w[64] & 15) << 4));
      b.ql[64 * h + 32 + l] = static_cast<uint8_t>((w[32] & 15) | ((w[96] & 15) << 4));
      b.qh[32 * h + l] =
          static_cast<uint8_t>((w[0] >> 4) | ((w[32] >> 4) << 2) | ((w[64] >> 4) << 4) | ((w[96] >> 4) << 6));
    }
  }
  std::vector<float> y(kQK_K);
  ASSERT_TRUE(dequantize(GgmlType::Q6_K, &b, y.data(), kQK_K).ok());
  for (int i = 0; i < kQK_K; ++i) EXPECT_EQ(y[i], -0.0625f * sc[i / 16] * (q[i] - 32)) << i;
}

TEST(QuantDequant, PlainFloats) {
  const uint16_t half[] = {0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00};
  const float want[] = {0.0f, -0.0f, 1.0f, -2.0f, 65504.0f, 0x1p-24f, 0x3ffp-24f, 0x1p-14f, INFINITY, -INFINITY};
  std::vector<float> y(std::size(half));
  ASSERT_TRUE(dequantize(GgmlType::F16, half, y.data(), static_cast<int64_t>(y.size())).ok());
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_EQ(y[i], want[i]) << i;
    EXPECT_EQ(std::signbit(y[i]), std::signbit(want[i])) << i;
  }
  const uint16_t nan_half = 0x7e00;
  float nan_out = 0;
  ASSERT_TRUE(dequantize(GgmlType::F16, &nan_half, &nan_out, 1).ok());
  EXPECT_TRUE(std::isnan(nan_out));

  const uint16_t bf[] = {0x3f80, 0xc040, 0x0001, 0x7f80, 0x8000};
  const float bf_want[] = {1.0f, -3.0f, 0x1p-133f, INFINITY, -0.0f};
  std::vector<float> z(std::size(bf));
  ASSERT_TRUE(dequantize(GgmlType::BF16, bf, z.data(), static_cast<int64_t>(z.size())).ok());
  for (size_t i = 0; i < z.size(); ++i) EXPECT_EQ(z[i], bf_want[i]) << i;

  const float f[] = {1.5f, -0.0f, 3e38f};
  float g[3] = {};
  ASSERT_TRUE(dequantize(GgmlType::F32, f, g, 3).ok());
  EXPECT_EQ(std::memcmp(f, g, sizeof f), 0);
}

TEST(QuantDequant, RejectsUnsupportedInput) {
  std::vector<uint8_t> bytes(1024);
  std::vector<float> out(512);
  const Status q4_0 = dequantize(GgmlType::Q4_0, bytes.data(), out.data(), 32);
  ASSERT_FALSE(q4_0.ok());
  EXPECT_NE(q4_0.error().message.find("Q4_0"), std::string::npos) << q4_0.error().message;

  const Status partial = dequantize(GgmlType::Q4_K, bytes.data(), out.data(), 100);
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.error().message.find("256"), std::string::npos) << partial.error().message;

  EXPECT_FALSE(dequantize(static_cast<GgmlType>(99), bytes.data(), out.data(), 1).ok());
  EXPECT_TRUE(can_dequantize(GgmlType::Q5_K));
  EXPECT_FALSE(can_dequantize(GgmlType::IQ2_XXS));
}

}  // namespace
}  // namespace kp::format
