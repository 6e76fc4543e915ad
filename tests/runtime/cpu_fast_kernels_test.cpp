// The CPU backend's fast matrix kernels (cpu_kernels_matmul_fast.cpp) against
// the reference kernels, through the op harness, at Gemma 2 2B's row lengths
// (2304 and 9216 columns) with output counts that are not a multiple of any
// chunk or vector width, on 3 threads so that chunks end mid-way; and the
// same dispatch on 1 and 3 threads, which must agree bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include <hwy/targets.h>

#include <random>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_quant_dot_x8.h"
#include "format/quant.h"
#include "backend/op_harness.h"
#include "core/check.h"
#include "core/mapped_file.h"

namespace kp::backend {
namespace {

const kpath::Registry& registry() {
  static const kpath::Registry r = [] {
    kpath::Registry reg;
    auto text = read_text_file(std::string(KP_SOURCE_DIR) + "/kernels/registry.json");
    KP_CHECK(text.ok(), "kernels/registry.json is readable");
    KP_CHECK(reg.add_logical_json(*text, "kernels/registry.json").ok(), "kernels/registry.json parses");
    register_cpu_kernels(reg);
    return reg;
  }();
  return r;
}

kpath::ModelValues gemma2_2b() {
  kpath::ModelValues m;
  m.n_embd = 2304;
  m.n_ff = 9216;
  m.n_head = 8;
  m.n_head_kv = 4;
  m.head_dim = 256;
  m.n_vocab = 256000;
  m.n_layer = 26;
  m.rms_eps = 1e-6f;
  m.attn_scale = 0.0625f;
  m.embd_scale = 48;
  return m;
}

Backend& reference() {
  static std::unique_ptr<Backend> b = make_cpu_backend();
  return *b;
}
Backend& fast(unsigned threads) {
  static std::unique_ptr<Backend> one = make_cpu_backend(CpuOptions{CpuKernelSet::kFast, 1});
  static std::unique_ptr<Backend> three = make_cpu_backend(CpuOptions{CpuKernelSet::kFast, 3});
  return threads == 1 ? *one : *three;
}

struct FastCase {
  std::string kernel, entry;
  std::map<std::string, int64_t> symbols;
  double tolerance;  // relative L2 against the reference
};

void PrintTo(const FastCase& c, std::ostream* os) {
  *os << c.kernel << "." << c.entry;
  for (const auto& [k, v] : c.symbols) *os << " " << k << "=" << v;
}

// K-quant rows meet activations rounded to 16 bits (about 3e-5 relative per
// product); F32 and F16 rows the f32 activations, accumulated in f32.
std::vector<FastCase> cases() {
  std::vector<FastCase> out;
  for (const auto& [type, tol] : std::vector<std::pair<std::string, double>>{
           {"q4k", 1e-4}, {"q6k", 1e-4}, {"f32", 1e-6}, {"f16", 1e-6}}) {
    out.push_back({"matmul_" + type, "main", {{"T", 1}, {"K", 2304}, {"N", 2309}}, tol});
    out.push_back({"matmul_" + type, "main", {{"T", 1}, {"K", 9216}, {"N", 517}}, tol});
    out.push_back({"matmul_" + type, "gemm", {{"T", 7}, {"K", 2304}, {"N", 1031}}, tol});
    out.push_back({"matmul_" + type, "gemm", {{"T", 5}, {"K", 9216}, {"N", 301}}, tol});
    out.push_back({"ffn_gate_up_" + type, "main", {{"T", 1}, {"E", 2304}, {"F", 1155}}, tol});
    out.push_back({"ffn_gate_up_" + type, "gemm", {{"T", 3}, {"E", 2304}, {"F", 9216}}, tol});
  }
  // The *_x8 forms quantize x as the reference does; only the order of the
  // f32 sums differs.
  for (const std::string type : {"q4k", "q6k"}) {
    out.push_back({"matmul_" + type + "_x8", "main", {{"T", 1}, {"K", 2304}, {"N", 2309}}, 1e-5});
    out.push_back({"matmul_" + type + "_x8", "main", {{"T", 1}, {"K", 9216}, {"N", 517}}, 1e-5});
    out.push_back({"matmul_" + type + "_x8", "main", {{"T", 5}, {"K", 2304}, {"N", 1031}}, 1e-5});
    out.push_back({"ffn_gate_up_" + type + "_x8", "main", {{"T", 1}, {"E", 2304}, {"F", 1155}}, 1e-5});
    out.push_back({"ffn_gate_up_" + type + "_x8", "main", {{"T", 3}, {"E", 2304}, {"F", 517}}, 1e-5});
  }
  return out;
}

OpCase op_case(const FastCase& f) {
  OpCase c;
  c.kernel = f.kernel;
  c.entry = f.entry;
  c.symbols = f.symbols;
  c.seed = 7;
  return c;
}

class CpuFastKernel : public testing::TestWithParam<FastCase> {};

TEST_P(CpuFastKernel, MatchesTheReference) {
  const FastCase& f = GetParam();
  auto r = run_op_case(fast(3), reference(), registry(), op_case(f), gemma2_2b());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_LE(r->max_rel_l2(), f.tolerance) << r->summary();
  EXPECT_EQ(r->total_nan(), 0) << r->summary();
  for (const BindingError& e : r->outputs) EXPECT_EQ(e.ref_nonfinite, 0) << r->summary();
  if (f.kernel.ends_with("q4k") || f.kernel.ends_with("q6k") || f.kernel.ends_with("_x8")) {
    // The 16-bit activations (the f32 sums of the x8 forms) make a K-quant
    // product differ from the double reference: no difference at all would
    // mean the reference code ran.
    EXPECT_GT(r->max_rel_l2(), 0.0) << r->summary();
  }
}

TEST_P(CpuFastKernel, SameBitsOnOneAndThreeThreads) {
  const FastCase& f = GetParam();
  auto r = run_op_case(fast(3), fast(1), registry(), op_case(f), gemma2_2b());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->max_rel_l2(), 0.0) << r->summary();
}

INSTANTIATE_TEST_SUITE_P(Gemma2Shapes, CpuFastKernel, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<FastCase>& p) {
                           std::string n = p.param.kernel + "_" + p.param.entry;
                           for (const auto& [k, v] : p.param.symbols) n += "_" + k + std::to_string(v);
                           return n;
                         });

// The 8-bit dot products have two codes: AVX2 (x86 machines that have it) and
// portable loops (every other target). Both against the sum in double over
// the dequantized weights and activations, on this machine's best target and
// with the targets below AVX2 only.
TEST(CpuX8Dots, BestAndPortableTargetsMatchTheSumInDouble) {
  constexpr int64_t kCols = 2304;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(kCols), x(kCols);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng) * (1.0f + 4.0f * (rng() % 7 == 0));  // a few large activations
  cpu::ActX8 act;
  act.resize(1, kCols);
  cpu::quantize_x8_row(x.data(), 0, act);
  for (format::GgmlType type : {format::GgmlType::Q4_K, format::GgmlType::Q6_K}) {
    const size_t bytes = type == format::GgmlType::Q4_K ? kCols / 256 * 144 : kCols / 256 * 210;
    std::vector<std::byte> row(bytes);
    ASSERT_TRUE(format::quantize(type, w.data(), row.data(), kCols).ok());
    std::vector<float> wq(kCols);
    ASSERT_TRUE(format::dequantize(type, row.data(), wq.data(), kCols).ok());
    double want = 0, scale = 0;
    for (int64_t i = 0; i < kCols; ++i) {
      const double xi = static_cast<double>(act.d[i / 32]) * act.q[i];
      want += static_cast<double>(wq[i]) * xi;
      scale += std::abs(static_cast<double>(wq[i]) * xi);
    }
    auto dot = [&] {
      return type == format::GgmlType::Q4_K ? cpu::dot_q4k_x8(row.data(), act, 0) : cpu::dot_q6k_x8(row.data(), act, 0);
    };
    const float best = dot();
    hwy::SetSupportedTargetsForTest(HWY_SSE4 | HWY_SSSE3 | HWY_EMU128 | HWY_SCALAR);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    const float portable = dot();
    hwy::SetSupportedTargetsForTest(0);
    hwy::GetChosenTarget().Update(hwy::SupportedTargets());
    EXPECT_NEAR(best, want, 1e-5 * scale) << static_cast<int>(type);
    EXPECT_NEAR(portable, want, 1e-5 * scale) << static_cast<int>(type);
  }
}

TEST(CpuFastBackend, NamesItsKernelsAndThreads) {
  EXPECT_NE(fast(3).info().driver.find("SIMD"), std::string::npos) << fast(3).info().driver;
  EXPECT_NE(fast(3).info().name.find("3 threads"), std::string::npos) << fast(3).info().name;
  EXPECT_EQ(reference().info().driver, "kpath reference kernels");
  EXPECT_GE(physical_cores(), 1u);
}

}  // namespace
}  // namespace kp::backend
