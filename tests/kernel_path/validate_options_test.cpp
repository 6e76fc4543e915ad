// Validation against other registries, backends and options than the
// built-in CPU setup: missing implementations, device features, pinned
// backend files, per-backend constants, layer overrides, constants that would
// depend on the batch rows, and the model values the CLI and executor share.
#include <gtest/gtest.h>

#include <algorithm>

#include "path_test_support.h"

namespace kp::kpath {
namespace {

using testing::builtin_registry;
using testing::load_model;
using testing::options_for;

KernelPath fused() { return testing::load_path_file(testing::source_path("kernel_paths/gemma2-q4k-fused.json")); }

std::string validate_error(const KernelPath& path, const Registry& registry, const ValidateOptions& options) {
  const auto& m = load_model(testing::q4_k_m_model());
  auto plan = validate_path(path, registry, m.file, options);
  EXPECT_FALSE(plan.ok()) << path.id << " was accepted";
  return plan.ok() ? std::string() : plan.error().message;
}

Plan validate_ok(const KernelPath& path, const Registry& registry, const ValidateOptions& options) {
  const auto& m = load_model(testing::q4_k_m_model());
  auto plan = validate_path(path, registry, m.file, options);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  return plan.ok() ? std::move(*plan) : Plan{};
}

const PlannedStep* find(const std::vector<PlannedStep>& steps, const std::string& op, int32_t layer) {
  auto it = std::find_if(steps.begin(), steps.end(), [&](const auto& s) { return s.op == op && s.layer == layer; });
  return it == steps.end() ? nullptr : &*it;
}

TEST(ValidateOptions, ModelValuesOfTheFixture) {
  const auto& m = load_model(testing::q4_k_m_model());
  const ModelValues v = runtime::model_values(m.config);
  EXPECT_EQ(v.n_embd, 256u);
  EXPECT_EQ(v.n_ff, 768u);
  EXPECT_EQ(v.n_head, 4u);
  EXPECT_EQ(v.n_head_kv, 2u);
  EXPECT_EQ(v.head_dim, 64u);
  EXPECT_EQ(v.n_vocab, 4096u);
  EXPECT_EQ(v.n_layer, 6u);
  EXPECT_FLOAT_EQ(v.embd_scale, 16.0f);  // sqrt(256)
  EXPECT_FLOAT_EQ(v.attn_scale, 0.125f);  // 1/sqrt(query_pre_attn_scalar = 64)
  EXPECT_FLOAT_EQ(v.attn_softcap, 50.0f);
  EXPECT_FLOAT_EQ(v.final_softcap, 30.0f);
  EXPECT_FLOAT_EQ(v.rms_eps, 1e-6f);
  EXPECT_FLOAT_EQ(v.rope_theta, 10000.0f);
}

TEST(ValidateOptions, ABackendWithoutImplementationsIsNamed) {
  // The built-in registry without the CPU backend's implementations.
  auto bare = Registry::load_builtin(testing::source_path("kernels"));
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  const auto& m = load_model(testing::q4_k_m_model());
  const std::string e = validate_error(fused(), *bare, options_for(m));
  EXPECT_NE(e.find("gemma2-q4k-fused.json: preLayer[0].kernel: kernel 'embed_q6k' has no cpu implementation "
                   "(implemented for: cuda, vulkan)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("decode.steps[0].kernel: kernel 'rmsnorm' has no cpu implementation"), std::string::npos) << e;
}

TEST(ValidateOptions, DeviceFeaturesTheImplementationNeeds) {
  Registry registry = builtin_registry();
  KernelImpl impl = registry.find("rmsnorm")->impls.at("cpu");
  impl.features = {"subgroups"};
  registry.add_impl("rmsnorm", impl);
  const auto& m = load_model(testing::q4_k_m_model());
  ValidateOptions o = options_for(m);
  o.device_features = {"f16"};
  const std::string e = validate_error(fused(), registry, o);
  EXPECT_NE(e.find("decode.steps[0].kernel: kernel 'rmsnorm' (cpu) needs the device feature 'subgroups', which the "
                   "device lacks (it offers: f16)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("postLayer[0].kernel: kernel 'rmsnorm' (cpu) needs the device feature 'subgroups'"),
            std::string::npos)
      << e;
  o.device_features.insert("subgroups");
  validate_ok(fused(), registry, o);
}

TEST(ValidateOptions, GpuImplementationsMustImplementTheEntry) {
  Registry registry = builtin_registry();
  KernelImpl impl = registry.find("matmul_q4k")->impls.at("cuda");
  impl.entries.erase("gemm");
  registry.add_impl("matmul_q4k", impl);
  const auto& m = load_model(testing::q4_k_m_model());
  const std::string e = validate_error(fused(), registry, options_for(m, "cuda"));
  EXPECT_NE(e.find("prefill.steps[1].entry: kernel 'matmul_q4k' (cuda) does not implement entry 'gemm' (it "
                   "implements: main)"),
            std::string::npos)
      << e;
}

TEST(ValidateOptions, GridsMustEvaluate) {
  Registry registry = builtin_registry();
  KernelImpl impl = registry.find("softcap")->impls.at("cuda");
  impl.entries.at("main").grid = {"cdiv(N, BLOCKS)", "T", "1"};
  registry.add_impl("softcap", impl);
  const auto& m = load_model(testing::q4_k_m_model());
  const std::string e = validate_error(fused(), registry, options_for(m, "cuda"));
  EXPECT_NE(e.find("postLayer[2]: kernel 'softcap' (cuda) entry 'main' grid: expression 'cdiv(N, BLOCKS)': unknown "
                   "symbol 'BLOCKS'"),
            std::string::npos)
      << e;
}

TEST(ValidateOptions, PinnedBackendFiles) {
  KernelPath path = fused();
  path.decode[0].kernel = "rmsnorm.cu";
  path.decode[0].pinned_backend = "cuda";
  path.prefill[0] = path.decode[0];
  const auto& m = load_model(testing::q4_k_m_model());
  Plan plan = validate_ok(path, builtin_registry(), options_for(m, "cuda"));
  const PlannedStep* s = find(plan.decode, "input_norm", 3);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->kernel->id, "rmsnorm");
  EXPECT_EQ(s->impl->backend, "cuda");

  // embed.cu implements every embedding kernel: the file alone does not say which.
  path.pre_layer[0].kernel = "embed.cu";
  path.pre_layer[0].pinned_backend = "cuda";
  path.pre_layer[0].kernel_by_type.clear();
  const std::string e = validate_error(path, builtin_registry(), options_for(m, "cuda"));
  EXPECT_NE(e.find("preLayer[0].kernel: 'embed.cu' implements several kernels (embed_f16, embed_f32, embed_q4k, "
                   "embed_q5k, embed_q6k, embed_q8_0); name the kernel id instead"),
            std::string::npos)
      << e;
}

TEST(ValidateOptions, PerBackendConstantsJoinTheCommonOnes) {
  KernelPath path = fused();
  path.decode[0].constants = {{"EPS", "1e-5"}};
  path.decode[0].backend_constants["cuda"] = {{"BLOCK", "128"}};
  const auto& m = load_model(testing::q4_k_m_model());
  Plan cuda = validate_ok(path, builtin_registry(), options_for(m, "cuda"));
  const PlannedStep* s = find(cuda.decode, "input_norm", 0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->constant_overrides, (std::map<std::string, std::string>{{"EPS", "1e-5"}, {"BLOCK", "128"}}));
  Plan cpu = validate_ok(path, builtin_registry(), options_for(m, "cpu"));
  s = find(cpu.decode, "input_norm", 0);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->constant_overrides, (std::map<std::string, std::string>{{"EPS", "1e-5"}}));
  // The step's prefill copy keeps its own (default) constants.
  EXPECT_TRUE(find(cpu.prefill, "input_norm", 0)->constant_overrides.empty());
}

TEST(ValidateOptions, ConstantsCannotDependOnTheBatchRows) {
  Registry registry = builtin_registry();
  ASSERT_TRUE(registry
                  .add_logical_json(R"({"kernels": {"scale_rows": {
        "reference": "softcap",
        "bindings": [{"name": "x", "kind": "in", "shape": ["T", "N"], "dtype": "f32"},
                     {"name": "y", "kind": "out", "shape": ["T", "N"], "dtype": "f32", "inplace": "x"}],
        "constants": [{"name": "N", "type": "u32", "default": "N"},
                      {"name": "CAP", "type": "f32", "default": "T * 2"}]}}})",
                                    "custom.json")
                  .ok());
  backend::register_cpu_kernels(registry);
  KernelPath path = fused();
  path.decode[4].kernel = "scale_rows";
  path.decode[4].inputs = {"q"};
  path.prefill[4] = path.decode[4];
  const auto& m = load_model(testing::q4_k_m_model());
  const std::string e = validate_error(path, registry, options_for(m));
  EXPECT_NE(e.find("decode.steps[4].constants: constant CAP of kernel 'scale_rows': expression 'T * 2': unknown "
                   "symbol 'T'"),
            std::string::npos)
      << e;
}

TEST(ValidateOptions, LayerOverridesChangeThoseLayersInBothPhases) {
  KernelPath path = fused();
  // Layer 1 runs the separate gate / up / GELU steps of the dequant path, on its own weights.
  std::vector<Step> steps = path.decode;
  Step gate = steps[10], up = steps[10], act;
  gate.op = "gate_proj";
  gate.kernel_by_type = {{format::GgmlType::Q4_K, "matmul_q4k"}};
  gate.weights = {"layer.{L}.mlp.gate_proj"};
  gate.outputs = {"ffn_gate"};
  up.op = "up_proj";
  up.kernel_by_type = gate.kernel_by_type;
  up.weights = {"layer.{L}.mlp.up_proj"};
  up.outputs = {"ffn_up"};
  act.op = "activation";
  act.kernel = "gelu_mul";
  act.inputs = {"ffn_gate", "ffn_up"};
  act.outputs = {"ffn_h"};
  steps.erase(steps.begin() + 10);
  steps.insert(steps.begin() + 10, {gate, up, act});
  for (size_t i = 0; i < steps.size(); ++i) steps[i].location = fmt::format("layerOverrides[0].steps[{}]", i);
  LayerOverride o;
  o.layers = {1};
  o.decode = steps;
  o.prefill = steps;
  o.both_phases = true;
  o.location = "layerOverrides[0]";
  path.layer_overrides.push_back(o);

  const auto& m = load_model(testing::q4_k_m_model());
  Plan plan = validate_ok(path, builtin_registry(), options_for(m));
  for (const auto* phase : {&plan.decode, &plan.prefill}) {
    auto count = [&](int32_t l) { return std::count_if(phase->begin(), phase->end(), [&](const auto& s) { return s.layer == l; }); };
    EXPECT_EQ(count(0), 13);
    EXPECT_EQ(count(1), 15);
    EXPECT_EQ(count(2), 13);
  }
  const PlannedStep* a = find(plan.decode, "activation", 1);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->location, "layerOverrides[0].steps[12] (layer 1)");
  EXPECT_EQ(find(plan.decode, "activation", 2), nullptr);
  EXPECT_EQ(plan.slots.at("ffn_gate").cols, 768);

  // Layers the model does not have are refused.
  path.layer_overrides[0].layers = {1, 7};
  const std::string e = validate_error(path, builtin_registry(), options_for(m));
  EXPECT_NE(e.find("layerOverrides[0].layers[1]: layer 7 does not exist (the model has 6 layers, 0..5)"),
            std::string::npos)
      << e;
}

TEST(ValidateOptions, ContextAndHistorySizes) {
  const auto& m = load_model(testing::q4_k_m_model());
  ValidateOptions o = options_for(m);
  o.ctx = 64;
  o.history = 16;
  Plan plan = validate_ok(fused(), builtin_registry(), o);
  EXPECT_EQ(plan.slots.at("k_cache.0").rows, (Dim{64, false}));
  EXPECT_EQ(plan.slots.at("history").rows, (Dim{16, false}));
  EXPECT_EQ(find(plan.decode, "attention", 0)->symbols.at("CTX"), (Dim{64, false}));
  o.ctx = 0;
  EXPECT_NE(validate_error(fused(), builtin_registry(), o).find("the context size must be at least 1 (got 0)"),
            std::string::npos);
}

}  // namespace
}  // namespace kp::kpath
