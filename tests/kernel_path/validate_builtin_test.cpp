// The built-in kernel paths validate against the fixture models on the CPU
// backend, and their expansion has the documented shape: dispatch counts per
// layer, slot shapes and dtypes, the weights each step binds.
#include <gtest/gtest.h>

#include <algorithm>

#include "path_test_support.h"

namespace kp::kpath {
namespace {

using testing::builtin_registry;
using testing::load_model;
using testing::load_path_file;
using testing::options_for;
using testing::source_path;

KernelPath builtin_path(const std::string& id) { return load_path_file(source_path("kernel_paths/" + id + ".json")); }

size_t count_layer(const std::vector<PlannedStep>& steps, int32_t layer) {
  return static_cast<size_t>(
      std::count_if(steps.begin(), steps.end(), [&](const PlannedStep& s) { return s.layer == layer; }));
}

size_t count_section(const std::vector<PlannedStep>& steps, const std::string& section) {
  return static_cast<size_t>(
      std::count_if(steps.begin(), steps.end(), [&](const PlannedStep& s) { return s.phase_section == section; }));
}

struct Case {
  std::string path;
  std::string model;
  size_t per_layer;
};

class BuiltinPaths : public ::testing::TestWithParam<Case> {};

TEST_P(BuiltinPaths, ValidatesAndExpands) {
  const Case& c = GetParam();
  const auto& m = load_model(c.model);
  const KernelPath path = builtin_path(c.path);
  auto plan = validate_path(path, builtin_registry(), m.file, options_for(m));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const uint32_t n_layer = m.config.n_layer;
  ASSERT_EQ(n_layer, 6u);
  for (const auto* steps : {&plan->decode, &plan->prefill}) {
    for (uint32_t l = 0; l < n_layer; ++l) EXPECT_EQ(count_layer(*steps, static_cast<int32_t>(l)), c.per_layer);
    EXPECT_EQ(count_section(*steps, "preLayer"), 1u);
    EXPECT_EQ(count_section(*steps, "postLayer"), 3u);
    EXPECT_EQ(count_section(*steps, "sampling"), 2u);
    EXPECT_EQ(steps->size(), 1 + n_layer * c.per_layer + 3 + 2);
  }
  // The fixture: hidden 256, 4 query heads and 2 KV heads of 64, FFN 768, vocab 4096.
  const auto& slots = plan->slots;
  auto expect_slot = [&](const std::string& name, Dim rows, int64_t cols, SlotDType dtype) {
    auto it = slots.find(name);
    ASSERT_NE(it, slots.end()) << name;
    EXPECT_EQ(it->second.rows, rows) << name;
    EXPECT_EQ(it->second.cols, cols) << name;
    EXPECT_EQ(it->second.dtype, dtype) << name;
  };
  const Dim t{1, true};
  expect_slot("token_ids", t, 1, SlotDType::I32);
  expect_slot("positions", t, 1, SlotDType::I32);
  expect_slot("history", Dim{64, false}, 1, SlotDType::I32);
  expect_slot("hidden_state", t, 256, SlotDType::F32);
  expect_slot("normed", t, 256, SlotDType::F32);
  expect_slot("q", t, 256, SlotDType::F32);
  expect_slot("k", t, 128, SlotDType::F32);
  expect_slot("v", t, 128, SlotDType::F32);
  expect_slot("attn", t, 256, SlotDType::F32);
  expect_slot("ffn_h", t, 768, SlotDType::F32);
  expect_slot("normed_last", Dim{1, false}, 256, SlotDType::F32);
  expect_slot("logits", Dim{1, false}, 4096, SlotDType::F32);
  for (uint32_t l = 0; l < n_layer; ++l) {
    for (const char* kind : {"k_cache.", "v_cache."}) {
      const std::string name = kind + std::to_string(l);
      expect_slot(name, Dim{1024, false}, 128, SlotDType::F32);
      EXPECT_TRUE(slots.at(name).persistent) << name;
    }
  }
  EXPECT_FALSE(slots.count("k_cache.6"));
  EXPECT_TRUE(slots.at("token_ids").host_written);
  EXPECT_FALSE(slots.at("q").host_written);

  // Every layer tensor of the model plus token_embd and output_norm.
  EXPECT_EQ(plan->weights.size(), 2u + 11u * n_layer);
  EXPECT_TRUE(plan->weights.count("token_embd.weight"));
  EXPECT_TRUE(plan->weights.count("output_norm.weight"));
  EXPECT_TRUE(plan->weights.count("blk.5.ffn_down.weight"));
  EXPECT_EQ(plan->weight_types.at("output_norm.weight"), format::GgmlType::F32);
  EXPECT_EQ(plan->ctx, 1024);
  EXPECT_EQ(plan->backend, "cpu");
  EXPECT_EQ(plan->path, &path);
}

INSTANTIATE_TEST_SUITE_P(Models, BuiltinPaths,
                         ::testing::Values(Case{"gemma2-q4k-fused", testing::q4_k_m_model(), 13},
                                           Case{"gemma2-q4k-fused", testing::q4_k_model(), 13},
                                           Case{"gemma2-q4k-fused", testing::f16_model(), 13},
                                           Case{"gemma2-q4k-dequant-f32", testing::q4_k_m_model(), 15},
                                           Case{"gemma2-q4k-dequant-f32", testing::q4_k_model(), 15},
                                           Case{"gemma2-q4k-dequant-f32", testing::f16_model(), 15},
                                           Case{"gemma2-q4k-dequant-f16", testing::q4_k_m_model(), 15},
                                           Case{"gemma2-q4k-dequant-f16", testing::q4_k_model(), 15},
                                           Case{"gemma2-q4k-dequant-f16", testing::f16_model(), 15},
                                           Case{"gemma2-f16-native", testing::f16_model(), 13}),
                         [](const ::testing::TestParamInfo<Case>& p) {
                           std::string name = p.param.path + "_" + p.param.model.substr(p.param.model.rfind('/') + 1);
                           std::replace_if(
                               name.begin(), name.end(),
                               [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
                           return name;
                         });

const PlannedStep& find_step(const std::vector<PlannedStep>& steps, const std::string& op, int32_t layer) {
  auto it =
      std::find_if(steps.begin(), steps.end(), [&](const PlannedStep& s) { return s.op == op && s.layer == layer; });
  KP_CHECK(it != steps.end(), "step exists");
  return *it;
}

TEST(BuiltinPathsDetail, FusedOnQ4KMChoosesKernelsByEachTensorsType) {
  const auto& m = load_model(testing::q4_k_m_model());
  const KernelPath path = builtin_path("gemma2-q4k-fused");
  auto plan = validate_path(path, builtin_registry(), m.file, options_for(m));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  // Q4_K_M keeps token_embd (and so the tied lm_head) in Q6_K.
  EXPECT_EQ(m.file.tensor("token_embd.weight")->type, format::GgmlType::Q6_K);
  const PlannedStep& embed = find_step(plan->decode, "embed", -1);
  EXPECT_EQ(embed.kernel->id, "embed_q6k");
  EXPECT_EQ(embed.bindings.at(1).tensor, "token_embd.weight");
  EXPECT_EQ(find_step(plan->decode, "lm_head", -1).kernel->id, "matmul_q6k");
  // Each layer's projection kernel follows its own tensor's type.
  for (int32_t l = 0; l < 6; ++l) {
    const auto* v = m.file.tensor(fmt::format("blk.{}.attn_v.weight", l));
    const std::string want = v->type == format::GgmlType::Q6_K ? "matmul_q6k" : "matmul_q4k";
    EXPECT_EQ(find_step(plan->decode, "v_proj", l).kernel->id, want) << "layer " << l;
    EXPECT_EQ(find_step(plan->decode, "q_proj", l).kernel->id, "matmul_q4k");
  }
  // Prefill uses the tiled entry for the matrix products, decode the matrix-vector one.
  EXPECT_EQ(find_step(plan->prefill, "q_proj", 2).entry, "gemm");
  EXPECT_EQ(find_step(plan->decode, "q_proj", 2).entry, "main");
  EXPECT_EQ(find_step(plan->decode, "final_norm", -1).entry, "last_row");
  // Weights stay as stored.
  EXPECT_EQ(plan->weight_types.at("blk.0.attn_q.weight"), format::GgmlType::Q4_K);
  EXPECT_EQ(plan->weight_types.at("token_embd.weight"), format::GgmlType::Q6_K);
}

TEST(BuiltinPathsDetail, StepBindingsSymbolsAndLocations) {
  const auto& m = load_model(testing::q4_k_m_model());
  const KernelPath path = builtin_path("gemma2-q4k-fused");
  auto plan = validate_path(path, builtin_registry(), m.file, options_for(m));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const PlannedStep& attn = find_step(plan->decode, "attention", 5);
  EXPECT_EQ(attn.location, "decode.steps[6] (layer 5)");
  EXPECT_EQ(attn.phase_section, "layer");
  ASSERT_EQ(attn.bindings.size(), 6u);
  EXPECT_EQ(attn.bindings[0].slot, "q");
  EXPECT_EQ(attn.bindings[3].slot, "attn");
  EXPECT_EQ(attn.bindings[4].slot, "k_cache.5");
  EXPECT_EQ(attn.bindings[4].kind, BindingKind::InOut);
  EXPECT_EQ(attn.bindings[5].slot, "v_cache.5");
  EXPECT_EQ(attn.symbols.at("QC"), (Dim{256, false}));
  EXPECT_EQ(attn.symbols.at("KC"), (Dim{128, false}));
  EXPECT_EQ(attn.symbols.at("CTX"), (Dim{1024, false}));
  EXPECT_EQ(attn.symbols.at("T"), (Dim{1, true}));
  EXPECT_NE(attn.impl, nullptr);
  EXPECT_EQ(attn.impl->backend, "cpu");

  const PlannedStep& down = find_step(plan->decode, "down_proj", 3);
  EXPECT_EQ(down.symbols.at("K"), (Dim{768, false}));
  EXPECT_EQ(down.symbols.at("N"), (Dim{256, false}));
  EXPECT_EQ(down.bindings.at(1).tensor, "blk.3.ffn_down.weight");

  // The steps after the last-row norm run on one row, whatever the batch.
  const PlannedStep& softcap = find_step(plan->prefill, "final_softcap", -1);
  EXPECT_EQ(softcap.symbols.at("T"), (Dim{1, false}));
  EXPECT_EQ(softcap.symbols.at("N"), (Dim{4096, false}));
  const PlannedStep& norm = find_step(plan->prefill, "final_norm", -1);
  EXPECT_EQ(norm.symbols.at("T"), (Dim{1, true}));
  const PlannedStep& penalty = find_step(plan->decode, "repeat_penalty", -1);
  EXPECT_EQ(penalty.symbols.at("H"), (Dim{64, false}));
  EXPECT_EQ(penalty.location, "sampling[0]");
}

TEST(BuiltinPathsDetail, WeightDtypeConvertsMatricesButNotNorms) {
  const auto& m = load_model(testing::q4_k_m_model());
  for (auto [id, type] : {std::pair{"gemma2-q4k-dequant-f32", format::GgmlType::F32},
                          std::pair{"gemma2-q4k-dequant-f16", format::GgmlType::F16}}) {
    const KernelPath path = builtin_path(id);
    auto plan = validate_path(path, builtin_registry(), m.file, options_for(m));
    ASSERT_TRUE(plan.ok()) << plan.error().message;
    EXPECT_EQ(plan->weight_types.at("token_embd.weight"), type) << id;
    EXPECT_EQ(plan->weight_types.at("blk.2.ffn_down.weight"), type) << id;
    EXPECT_EQ(plan->weight_types.at("blk.2.attn_norm.weight"), format::GgmlType::F32) << id;
    EXPECT_EQ(plan->weight_types.at("output_norm.weight"), format::GgmlType::F32) << id;
  }
}

TEST(BuiltinPathsDetail, ValidatesForTheCudaRegistryWithoutADevice) {
  // kernels/cuda/registry.json implements every kernel of the built-in paths.
  const auto& m = load_model(testing::q4_k_m_model());
  const KernelPath path = builtin_path("gemma2-q4k-fused");
  auto plan = validate_path(path, builtin_registry(), m.file, options_for(m, "cuda"));
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(find_step(plan->decode, "q_proj", 0).impl->backend, "cuda");
}

TEST(BuiltinPathsDetail, F16NativeRefusesQuantizedWeightsNamingTheTensor) {
  const auto& m = load_model(testing::q4_k_m_model());
  const KernelPath path = builtin_path("gemma2-f16-native");
  auto plan = validate_path(path, builtin_registry(), m.file, options_for(m));
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("decode.steps[1].kernel: tensor blk.0.attn_q.weight is Q4_K but the step "
                                      "names kernels for F32, F16"),
            std::string::npos)
      << plan.error().message;
  EXPECT_NE(plan.error().message.find("preLayer[0].kernel: tensor token_embd.weight is Q6_K"), std::string::npos)
      << plan.error().message;
}

}  // namespace
}  // namespace kp::kpath
