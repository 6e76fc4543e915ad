// Every Vulkan kernel and entry against the CPU backend through the op harness
// (src/backend/op_harness.h), at the kjv-tiny fixture's shapes and at Gemma 2
// 2B's: decode (T = 1), small batches, tiled prefill with a partial tile, in
// place where the registry allows it, attention with cache history, sliding
// windows and large positions, sampling with every filter. The validation
// layer is on, and each kernel's cases must leave it silent.
//
// Lavapipe runs these on a couple of CPU cores, so the 2B cases are a handful
// of T values per kernel; the 256000-row output head needs a binding larger
// than lavapipe's 128 MiB maxStorageBufferRange and runs only on devices that
// allow it (OutputHead, skipped elsewhere with the sizes).
#include <gtest/gtest.h>

#include <algorithm>

#include "../cuda/cuda_shapes.h"  // the built-in paths' shapes at Gemma 2 2B and kjv-tiny
#include "backend/op_harness.h"
#include "format/ggml_type.h"
#include "vulkan_env.h"

namespace kp::vulkan_test {
namespace {

using backend::BindingError;
using backend::OpCase;
using cuda_test::ModelShapes;
using cuda_test::Symbols;

// Relative L2 error against the CPU, which accumulates in double: f32
// accumulation over up to 9216 terms (and f32 exp/tanh) stays far below this.
// Weights are exactly representable in both, so quantized and f16 weights get
// the same bar. i32 outputs (tokens) must be identical (rel_l2 = the fraction
// of elements that differ).
constexpr double kMaxRelL2 = 1e-5;

struct Case {
  OpCase op;
  const ModelShapes* model = nullptr;
};

bool is_output_head(const std::string& kernel, const Symbols& s, const ModelShapes& m) {
  return kernel.rfind("matmul_", 0) == 0 && s.at("N") == int64_t{m.values.n_vocab};
}

std::vector<Case> cases_for(const kpath::KernelDesc& kernel, const ModelShapes& m, bool output_head) {
  std::vector<Case> out;
  const std::string& id = kernel.id;
  bool has_inplace = false;
  for (const auto& b : kernel.bindings) has_inplace = has_inplace || !b.inplace_of.empty();
  const bool big = m.name == "gemma2-2b";
  for (Symbols symbols : cuda_test::path_shapes(id, m)) {
    if (is_output_head(id, symbols, m) != output_head) continue;
    // The tied output head is stored as Q6_K, Q4_K or Q8_0 in the GGUFs kpath runs.
    if (output_head && big && id != "matmul_q6k" && id != "matmul_q4k" && id != "matmul_q8_0") continue;
    // At Gemma's shapes the q projection (2304 -> 2048) adds nothing that the
    // k/v (2304 -> 1024) and o (2048 -> 2304) projections do not test.
    if (big && id.rfind("matmul_", 0) == 0 && symbols.at("K") == int64_t{m.values.n_embd} &&
        symbols.at("N") == int64_t{m.values.n_head} * m.values.head_dim) {
      continue;
    }
    // Embedding tables are indexed, never scanned: 4096 rows at Gemma's width.
    if (id.rfind("embed_", 0) == 0 && big) symbols["V"] = 4096;
    for (const auto& entry_desc : kernel.entries) {
      const std::string& entry = entry_desc.first;  // a plain reference: the lambdas below capture it
      auto add = [&](int64_t t, auto&& tweak) {
        Case c;
        c.model = &m;
        c.op.kernel = id;
        c.op.entry = entry;
        c.op.symbols = symbols;
        c.op.symbols["T"] = t;
        c.op.seed = out.size() + 1;
        tweak(c.op);
        out.push_back(std::move(c));
      };
      auto none = [](OpCase&) {};
      if (id == "attention") {
        if (big) {
          add(1, [](OpCase& c) { c.params.pos0 = 5000; c.step.window = 4096; });  // decode deep in the context
          add(12, none);                                                           // prefill from 0
          add(1, [](OpCase& c) { c.params.pos0 = 600; });                          // decode, whole history
          add(7, [](OpCase& c) { c.params.pos0 = 300; });                          // prefill after history
        } else {
          add(1, [](OpCase& c) { c.params.pos0 = 37; });                       // decode with cache history
          add(40, none);                                                        // prefill from 0, two key tiles
          add(3, [](OpCase& c) { c.params.pos0 = 100; c.step.window = 64; });   // the window cuts the history
          add(17, [](OpCase& c) { c.params.pos0 = 50; c.step.window = 30; });   // the window inside the batch
        }
      } else if (id == "rope_neox") {
        add(1, none);
        add(big ? 2 : 5, [&](OpCase& c) { c.params.pos0 = big ? 7000 : 900; });  // large angles
      } else if (id == "sample") {
        add(1, none);  // argmax; sample: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, rand_u 0.37
        if (entry == "argmax") continue;
        // Without top_k and min_p every logit stays a candidate (no shared-memory copy).
        add(1, [](OpCase& c) { c.params.top_k = 0; c.params.min_p = 0; c.params.top_p = 0.9f; c.params.rand_u = 0.61f; });
        if (big) continue;
        add(1, [](OpCase& c) { c.params.rand_u = 0.0f; });
        add(1, [](OpCase& c) { c.params.rand_u = 0.999f; });
        add(1, [](OpCase& c) { c.params.top_k = 0; c.params.min_p = 0; c.params.top_p = 1; c.params.rand_u = 0.25f; });
        add(1, [](OpCase& c) { c.params.top_k = 1; });
        add(1, [](OpCase& c) { c.params.temperature = 0; });
        add(1, [](OpCase& c) { c.params.temperature = 2.5f; c.params.top_k = 0; c.params.min_p = 0.2f; c.params.rand_u = 0.8f; });
      } else if (id == "repeat_penalty" || id == "softcap") {
        add(1, none);
      } else if (entry == "gemm") {
        if (big) {
          add(17, none);  // one partial row tile
        } else {
          add(40, none);  // two row tiles, the second partial
          add(1, none);
        }
      } else if (entry == "last_row") {
        add(5, none);
      } else {
        add(1, none);
        if (!big) add(5, none);
      }
      if (has_inplace && entry != "last_row" && !big) {
        add(id == "repeat_penalty" || id == "softcap" ? 1 : 3, [](OpCase& c) { c.in_place = true; });
      }
    }
  }
  return out;
}

// Weight bytes of a case, to compare with the device's largest binding.
uint64_t largest_weight_bytes(const kpath::KernelDesc& kernel, const OpCase& c, const kpath::ModelValues& model) {
  uint64_t largest = 0;
  for (size_t i = 0; i < kernel.bindings.size(); ++i) {
    const auto& b = kernel.bindings[i];
    if (b.kind != kpath::BindingKind::Weight) continue;
    auto shape = backend::binding_shape(kernel, c.entry, i, c.symbols, model);
    if (!shape.ok()) continue;
    const uint64_t rows = static_cast<uint64_t>(shape->first), cols = static_cast<uint64_t>(shape->second);
    largest = std::max(largest, rows * format::row_bytes(b.weight_types.at(0), cols));
  }
  return largest;
}

void run_cases(const std::string& kernel_id, bool output_head, std::vector<ModelShapes> models) {
  Env& e = env();
  const kpath::KernelDesc* kernel = e.registry->find(kernel_id);
  ASSERT_NE(kernel, nullptr) << kernel_id << " is not in kernels/registry.json";
  ASSERT_TRUE(kernel->impls.count("vulkan")) << kernel_id << " has no entry in kernels/vulkan/registry.json";
  const uint64_t validation_before = e.vulkan->validation_message_count();
  size_t n = 0;
  double worst = 0;
  std::string too_big;
  for (const ModelShapes& m : models) {
    for (const Case& c : cases_for(*kernel, m, output_head)) {
      const uint64_t weight_bytes = largest_weight_bytes(*kernel, c.op, m.values);
      if (weight_bytes > e.vulkan->max_binding_bytes()) {
        too_big += fmt::format("{}: {} ({} MiB of weights); ", m.name, describe(c.op), weight_bytes >> 20);
        continue;
      }
      SCOPED_TRACE(m.name + ": " + describe(c.op));
      auto r = backend::run_op_case(*e.backend, *e.cpu, *e.registry, c.op, m.values);
      ASSERT_TRUE(r.ok()) << r.error().message;
      for (const BindingError& b : r->outputs) {
        EXPECT_EQ(b.ref_nonfinite, 0) << "the CPU reference left non-finite values: " << r->summary();
        EXPECT_EQ(b.nan_count, 0) << r->summary();
        EXPECT_EQ(b.extra_finite, 0) << r->summary();
      }
      EXPECT_LE(r->max_rel_l2(), kMaxRelL2) << r->summary();
      worst = std::max(worst, r->max_rel_l2());
      ++n;
    }
  }
  EXPECT_EQ(e.vulkan->validation_message_count(), validation_before) << validation_report(validation_before);
  ::testing::Test::RecordProperty("cases", static_cast<int>(n));
  ::testing::Test::RecordProperty("max_rel_l2", fmt::format("{:.3g}", worst));
  if (!too_big.empty()) {
    GTEST_SKIP() << "the device's largest binding is " << (e.vulkan->max_binding_bytes() >> 20)
                 << " MiB; these cases need more: " << too_big;
  }
  EXPECT_GT(n, 0u) << "no cases for " << kernel_id;
}

// The kernels of the built-in kernel paths; every one has a Vulkan implementation.
const std::vector<std::string> kKernels = {
    "embed_f32",       "embed_f16",       "embed_q8_0",       "embed_q4k",        "embed_q6k",
    "matmul_f32",      "matmul_f16",      "matmul_q8_0",      "matmul_q4k",       "matmul_q6k",
    "ffn_gate_up_f32", "ffn_gate_up_f16", "ffn_gate_up_q8_0", "ffn_gate_up_q4k",  "ffn_gate_up_q6k",
    "rmsnorm",         "rmsnorm_residual", "add",             "gelu_mul",         "rope_neox",
    "attention",       "softcap",         "repeat_penalty",   "sample"};

class VulkanOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { KP_REQUIRE_VULKAN(); }
};

TEST_P(VulkanOps, MatchesTheCpuBackend) {
  run_cases(GetParam(), false, {cuda_test::kjv_tiny(), cuda_test::gemma2_2b()});
}

std::string param_name(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

INSTANTIATE_TEST_SUITE_P(PathKernels, VulkanOps, ::testing::ValuesIn(kKernels), param_name);

class VulkanOutputHead : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { KP_REQUIRE_VULKAN(); }
};

// matmul with N = n_vocab (the tied output head), one test per model so that
// a device too small for Gemma's head shows as a skip.
TEST_P(VulkanOutputHead, FixtureShape) { run_cases(GetParam(), true, {cuda_test::kjv_tiny()}); }
TEST_P(VulkanOutputHead, Gemma2Shape) { run_cases(GetParam(), true, {cuda_test::gemma2_2b()}); }

INSTANTIATE_TEST_SUITE_P(HeadTypes, VulkanOutputHead,
                         ::testing::Values(std::string("matmul_q4k"), std::string("matmul_q6k"), std::string("matmul_q8_0")),
                         param_name);

TEST(VulkanOpsCoverage, EveryVulkanKernelIsTested) {
  KP_REQUIRE_VULKAN();
  for (const auto& [id, kernel] : env().registry->kernels()) {
    if (!kernel.impls.count("vulkan")) continue;
    EXPECT_NE(std::find(std::begin(kKernels), std::end(kKernels), id), std::end(kKernels))
        << id << " has a Vulkan implementation but no op test (tests/vulkan/vulkan_ops_test.cpp)";
    for (const auto& [entry, unused] : kernel.entries) {
      EXPECT_TRUE(kernel.impls.at("vulkan").entries.count(entry)) << id << " has no Vulkan entry '" << entry << "'";
    }
  }
  for (const std::string& id : kKernels) {
    const kpath::KernelDesc* k = env().registry->find(id);
    ASSERT_NE(k, nullptr) << id;
    EXPECT_TRUE(k->impls.count("vulkan")) << id << " is used by the built-in paths but has no Vulkan implementation";
  }
}

}  // namespace
}  // namespace kp::vulkan_test
