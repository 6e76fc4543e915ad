// quantize -> dequantize round trips: the error each format should have on
// Gaussian data (bounds that a broken quantizer or a scale search that does
// not search would fail), special blocks, determinism, rejected input, and
// the F16 / BF16 conversions at their edges (rounding ties, subnormals,
// overflow, inf, NaN, and every finite value round-tripping exactly).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "format/quant.h"
#include "format/quant_blocks.h"

namespace kp::format {
namespace {

std::vector<float> gaussian(size_t n, float std_dev, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, std_dev);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

std::vector<float> round_trip(GgmlType type, const std::vector<float>& x) {
  std::vector<uint8_t> bytes(row_bytes(type, x.size()));
  const Status q = quantize(type, x.data(), bytes.data(), static_cast<int64_t>(x.size()));
  EXPECT_TRUE(q.ok()) << q.error().message;
  std::vector<float> y(x.size());
  const Status d = dequantize(type, bytes.data(), y.data(), static_cast<int64_t>(y.size()));
  EXPECT_TRUE(d.ok()) << d.error().message;
  return y;
}

double relative_rms(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (static_cast<double>(y[i]) - x[i]) * (static_cast<double>(y[i]) - x[i]);
    ref += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(QuantRoundTrip, GaussianErrorPerFormat) {
  const std::vector<float> x = gaussian(64 * 4096, 0.02f, 7);
  // Expected relative RMS: f16 keeps 11 significant bits (~2^-11/sqrt(3)),
  // bf16 8 (~2^-8/sqrt(3)); Q8_0 ~ max|x|/127/sqrt(12) per 32; Q6_K and Q4_K
  // as llama.cpp's quantizers reach (0.018 and 0.072 on this data).
  struct Case {
    GgmlType type;
    double bound;
  };
  const Case cases[] = {
      {GgmlType::F16, 4e-4}, {GgmlType::BF16, 3e-3}, {GgmlType::Q8_0, 0.01},
      {GgmlType::Q6_K, 0.02}, {GgmlType::Q4_K, 0.075},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(type_name(c.type));
    const double e = relative_rms(x, round_trip(c.type, x));
    EXPECT_LT(e, c.bound);
    EXPECT_GT(e, 0.0);  // these formats are lossy on random data
  }
  const std::vector<float> y = round_trip(GgmlType::F32, x);
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(float)), 0);
}

// Q4_K with the scale search must beat plain min/max rounding of each 32-weight
// sub-block, even when the latter keeps exact float scales.
TEST(QuantRoundTrip, Q4_KSearchBeatsMinMaxRounding) {
  const std::vector<float> x = gaussian(16 * 4096, 1.0f, 11);
  double naive = 0, ref = 0;
  for (size_t s = 0; s < x.size(); s += 32) {
    const auto [lo_it, hi_it] = std::minmax_element(x.begin() + static_cast<long>(s), x.begin() + static_cast<long>(s + 32));
    const float lo = std::min(*lo_it, 0.0f), step = (*hi_it - lo) / 15.0f;
    for (size_t i = s; i < s + 32; ++i) {
      const float y = lo + step * std::round((x[i] - lo) / step);
      naive += (static_cast<double>(y) - x[i]) * (y - x[i]);
      ref += static_cast<double>(x[i]) * x[i];
    }
  }
  const double naive_rms = std::sqrt(naive / ref);
  const double searched = relative_rms(x, round_trip(GgmlType::Q4_K, x));
  EXPECT_LT(searched, 0.95 * naive_rms) << "searched " << searched << ", min/max " << naive_rms;
}

TEST(QuantRoundTrip, SpecialBlocks) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    SCOPED_TRACE(type_name(type));
    // All zeros decode to zeros.
    const std::vector<float> zeros(512, 0.0f);
    for (float v : round_trip(type, zeros)) ASSERT_EQ(v, 0.0f);

    // A constant block is reproduced within 1%.
    const std::vector<float> constant(512, -0.37f);
    for (float v : round_trip(type, constant)) ASSERT_NEAR(v, -0.37f, 0.0037f);

    // One outlier among small weights keeps its value within 1%.
    std::vector<float> outlier = gaussian(512, 0.01f, 3);
    outlier[77] = 5.0f;
    outlier[300] = -4.0f;
    const std::vector<float> y = round_trip(type, outlier);
    EXPECT_NEAR(y[77], 5.0f, 0.05f);
    EXPECT_NEAR(y[300], -4.0f, 0.04f);
  }
  // Q4_K's offset: all-positive data (the offset cannot be positive, so it is
  // pinned at 0 and the levels span [0, max]) and all-negative data (the
  // offset reaches the minimum) both stay within 4-bit error (~0.045 here).
  std::vector<float> pos = gaussian(256, 1.0f, 5), neg(256);
  for (size_t i = 0; i < pos.size(); ++i) {
    pos[i] = std::fabs(pos[i]) + 0.5f;
    neg[i] = -pos[i];
  }
  EXPECT_LT(relative_rms(pos, round_trip(GgmlType::Q4_K, pos)), 0.06);
  EXPECT_LT(relative_rms(neg, round_trip(GgmlType::Q4_K, neg)), 0.06);
}

TEST(QuantRoundTrip, Deterministic) {
  const std::vector<float> x = gaussian(4096, 0.05f, 9);
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
    std::vector<uint8_t> a(row_bytes(type, x.size())), b(a.size(), 0xff);
    ASSERT_TRUE(quantize(type, x.data(), a.data(), static_cast<int64_t>(x.size())).ok());
    ASSERT_TRUE(quantize(type, x.data(), b.data(), static_cast<int64_t>(x.size())).ok());
    EXPECT_EQ(a, b) << type_name(type);
  }
}

TEST(QuantRoundTrip, RejectsBadInput) {
  std::vector<float> x(256, 1.0f);
  std::vector<uint8_t> out(1024);
  x[200] = NAN;
  const Status nan = quantize(GgmlType::Q4_K, x.data(), out.data(), 256);
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(nan.error().message.find("200"), std::string::npos) << nan.error().message;
  x[200] = INFINITY;
  EXPECT_FALSE(quantize(GgmlType::Q8_0, x.data(), out.data(), 256).ok());
  EXPECT_TRUE(quantize(GgmlType::F16, x.data(), out.data(), 256).ok());  // f16 has inf

  x[200] = 1.0f;
  const Status q5 = quantize(GgmlType::Q5_K, x.data(), out.data(), 256);
  ASSERT_FALSE(q5.ok());
  EXPECT_NE(q5.error().message.find("Q5_K"), std::string::npos) << q5.error().message;
  EXPECT_FALSE(quantize(GgmlType::Q6_K, x.data(), out.data(), 128).ok());
  EXPECT_FALSE(quantize(GgmlType::Q8_0, x.data(), out.data(), 40).ok());
  EXPECT_TRUE(can_quantize(GgmlType::Q4_K));
  EXPECT_FALSE(can_quantize(GgmlType::Q5_K));
}

uint16_t to_f16(float f) {
  uint16_t h = 0;
  EXPECT_TRUE(quantize(GgmlType::F16, &f, &h, 1).ok());
  return h;
}

uint16_t to_bf16(float f) {
  uint16_t h = 0;
  EXPECT_TRUE(quantize(GgmlType::BF16, &f, &h, 1).ok());
  return h;
}

TEST(QuantRoundTrip, F16Edges) {
  EXPECT_EQ(to_f16(0.0f), 0x0000);
  EXPECT_EQ(to_f16(-0.0f), 0x8000);
  EXPECT_EQ(to_f16(1.0f), 0x3c00);
  EXPECT_EQ(to_f16(-2.5f), 0xc100);
  EXPECT_EQ(to_f16(65504.0f), 0x7bff);            // largest half
  EXPECT_EQ(to_f16(65519.99f), 0x7bff);           // below the halfway point to 65536
  EXPECT_EQ(to_f16(65520.0f), 0x7c00);            // halfway: rounds to even = overflow to inf
  EXPECT_EQ(to_f16(1e10f), 0x7c00);
  EXPECT_EQ(to_f16(-INFINITY), 0xfc00);
  const uint16_t nan = to_f16(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_EQ(to_f16(0x1p-14f), 0x0400);            // smallest normal
  EXPECT_EQ(to_f16(0x1p-24f), 0x0001);            // smallest subnormal
  EXPECT_EQ(to_f16(0x1p-25f), 0x0000);            // half of it: tie to even (0)
  EXPECT_EQ(to_f16(0x1.8p-25f), 0x0001);          // 0.75 ulp rounds up
  EXPECT_EQ(to_f16(0x1.8p-24f), 0x0002);          // 1.5 ulp: tie to even (2)
  EXPECT_EQ(to_f16(1.0f + 0x1p-11f), 0x3c00);     // tie: mantissa 0 is even
  EXPECT_EQ(to_f16(1.0f + 0x3p-11f), 0x3c02);     // tie: mantissa 2 is even
  EXPECT_EQ(to_f16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);  // above the tie

  // Every finite half survives f16 -> f32 -> f16 unchanged.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf / nan
    const uint16_t back = to_f16(f16_to_f32(static_cast<uint16_t>(h)));
    ASSERT_EQ(back, h) << std::hex << h;
  }
}

TEST(QuantRoundTrip, BF16Edges) {
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f), 0x3f80);   // tie: to even
  EXPECT_EQ(to_bf16(1.0f + 0x3p-8f), 0x3f82);   // tie: to even
  EXPECT_EQ(to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(to_bf16(3.4028235e38f), 0x7f80);    // float max rounds up to inf
  const uint16_t nan = to_bf16(NAN);
  EXPECT_EQ(nan & 0x7f80, 0x7f80);
  EXPECT_NE(nan & 0x007f, 0);
  // A NaN whose payload lies only in the low 16 bits stays a NaN.
  uint32_t low_nan_bits = 0x7f800001;
  float low_nan;
  std::memcpy(&low_nan, &low_nan_bits, sizeof low_nan);
  EXPECT_TRUE(std::isnan(bf16_to_f32(to_bf16(low_nan))));

  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7f80) == 0x7f80) continue;
    ASSERT_EQ(to_bf16(bf16_to_f32(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

}  // namespace
}  // namespace kp::format
