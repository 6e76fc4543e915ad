// The GLSL block decoders agree with an outside oracle: real Q4_K and Q6_K
// tensors of models/kjv-tiny-q4_k_m.gguf, dequantized by llama.cpp's gguf-py
// (tests/data/dequant-golden.json/.bin), against the Vulkan kernels run on the
// same bytes: embed_* (kp_dequant8) row by row, and matmul_* main and gemm
// (kp_unit_dot and the tiles) against the golden weights times random x.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "backend/op_harness.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "vulkan_env.h"

namespace kp::vulkan_test {
namespace {

struct GoldenTensor {
  std::string name, type;
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // [rows, cols]
  std::vector<uint8_t> bytes; // the GGUF tensor data
};

std::vector<GoldenTensor> load_golden() {
  std::vector<GoldenTensor> out;
  auto text = read_text_file(std::string(KP_TEST_DATA) + "/dequant-golden.json");
  EXPECT_TRUE(text.ok()) << text.error().message;
  if (!text.ok()) return out;
  const auto doc = nlohmann::json::parse(*text);
  auto bin = MappedFile::open(std::string(KP_TEST_DATA) + "/dequant-golden.bin");
  auto model = format::GgufFile::open(std::string(KP_SOURCE_DIR) + "/models/kjv-tiny-q4_k_m.gguf");
  EXPECT_TRUE(bin.ok() && model.ok());
  if (!bin.ok() || !model.ok()) return out;
  for (const auto& t : doc.at("tensors")) {
    GoldenTensor g;
    g.name = t.at("name").get<std::string>();
    g.type = t.at("type").get<std::string>();
    g.rows = t.at("shape")[0].get<int64_t>();
    g.cols = t.at("shape")[1].get<int64_t>();
    const auto offset = t.at("offset").get<uint64_t>();
    const auto count = t.at("count").get<uint64_t>();
    EXPECT_EQ(count, static_cast<uint64_t>(g.rows * g.cols)) << g.name;
    g.values.resize(count);
    std::memcpy(g.values.data(), (*bin)->data() + offset, count * sizeof(float));
    const format::GgufTensorInfo* info = model->tensor(g.name);
    EXPECT_NE(info, nullptr) << g.name;
    if (info == nullptr) continue;
    g.bytes.assign(info->data, info->data + info->n_bytes);
    out.push_back(std::move(g));
  }
  return out;
}

std::string suffix(const std::string& type) { return type == "Q4_K" ? "q4k" : type == "Q6_K" ? "q6k" : "?"; }

std::vector<uint8_t> bytes_of(const void* p, size_t n) {
  std::vector<uint8_t> out(n);
  std::memcpy(out.data(), p, n);
  return out;
}

std::vector<float> floats_of(const std::vector<uint8_t>& b) {
  std::vector<float> out(b.size() / 4);
  std::memcpy(out.data(), b.data(), out.size() * 4);
  return out;
}

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double d2 = 0, w2 = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = got[i] - want[i];
    d2 += d * d;
    w2 += want[i] * want[i];
  }
  return std::sqrt(d2 / w2);
}

TEST(VulkanQuantLayout, EmbedRowsMatchGgufPy) {
  KP_REQUIRE_VULKAN();
  Env& e = env();
  const auto golden = load_golden();
  ASSERT_EQ(golden.size(), 5u);
  for (const GoldenTensor& g : golden) {
    SCOPED_TRACE(g.name + " " + g.type);
    backend::OpDispatch d;
    d.kernel = e.registry->find("embed_" + suffix(g.type));
    ASSERT_NE(d.kernel, nullptr);
    d.symbols = {{"T", g.rows}, {"V", g.rows}, {"E", g.cols}};
    d.constant_overrides = {{"SCALE", "1"}};
    std::vector<int32_t> ids(static_cast<size_t>(g.rows));
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(ids.size() - 1 - i);  // reversed rows
    d.data = {bytes_of(ids.data(), ids.size() * 4), g.bytes, std::vector<uint8_t>(g.values.size() * 4, 0)};
    auto out = backend::run_dispatch(*e.backend, d, kpath::ModelValues{});
    ASSERT_TRUE(out.ok()) << out.error().message;
    const std::vector<float> y = floats_of((*out)[2]);
    ASSERT_EQ(y.size(), g.values.size());
    double max_abs = 0, max_val = 0;
    for (int64_t r = 0; r < g.rows; ++r) {
      const int64_t src = g.rows - 1 - r;
      for (int64_t c = 0; c < g.cols; ++c) {
        const float want = g.values[src * g.cols + c];
        max_abs = std::max(max_abs, std::abs(static_cast<double>(y[r * g.cols + c]) - want));
        max_val = std::max(max_val, std::abs(static_cast<double>(want)));
      }
    }
    // Both compute d * sc * q - dmin * m in f32, possibly in another order: a few ulp.
    EXPECT_LE(max_abs, 4e-7 * max_val) << "max |y - golden| " << max_abs << " of values up to " << max_val;
  }
}

TEST(VulkanQuantLayout, MatmulMatchesGoldenWeights) {
  KP_REQUIRE_VULKAN();
  Env& e = env();
  const auto golden = load_golden();
  ASSERT_EQ(golden.size(), 5u);
  std::mt19937 rng(5);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (const GoldenTensor& g : golden) {
    for (const char* entry : {"main", "gemm"}) {
      SCOPED_TRACE(g.name + " " + g.type + " " + entry);
      const int64_t t = 7;
      std::vector<float> x(static_cast<size_t>(t * g.cols));
      for (auto& v : x) v = gauss(rng);
      std::vector<double> want(static_cast<size_t>(t * g.rows), 0.0);
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t n = 0; n < g.rows; ++n) {
          double s = 0;
          for (int64_t k = 0; k < g.cols; ++k) s += double(g.values[n * g.cols + k]) * x[r * g.cols + k];
          want[r * g.rows + n] = s;
        }
      }
      backend::OpDispatch d;
      d.kernel = e.registry->find("matmul_" + suffix(g.type));
      ASSERT_NE(d.kernel, nullptr);
      d.entry = entry;
      d.symbols = {{"T", t}, {"K", g.cols}, {"N", g.rows}};
      d.data = {bytes_of(x.data(), x.size() * 4), g.bytes, std::vector<uint8_t>(want.size() * 4, 0)};
      auto out = backend::run_dispatch(*e.backend, d, kpath::ModelValues{});
      ASSERT_TRUE(out.ok()) << out.error().message;
      EXPECT_LE(rel_l2(floats_of((*out)[2]), want), 1e-5);  // f32 sums over K <= 768
    }
  }
}

}  // namespace
}  // namespace kp::vulkan_test
