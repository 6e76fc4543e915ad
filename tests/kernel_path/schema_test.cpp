// Parsing kernel path documents: defaults, the kernel forms (id, per-type map,
// pinned backend file), constants, templates, layer overrides, did-you-mean
// for unknown fields, and the JSON writer's round trip.
#include "kernel_path/schema.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kernel_path/suggest.h"
#include "path_test_support.h"

namespace kp::kpath {
namespace {

Result<KernelPath> parse(const std::string& text) { return parse_kernel_path(text, "t.json"); }

const char* kMinimal = R"({"id": "p", "decode": {"steps": [{"op": "norm", "kernel": "rmsnorm"}]}})";

TEST(Schema, DefaultsOfAPathAndAStep) {
  auto p = parse(kMinimal);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->id, "p");
  EXPECT_EQ(p->activation_dtype, SlotDType::F32);
  EXPECT_EQ(p->kv_dtype, SlotDType::F32);
  EXPECT_EQ(p->weight_dtype, "native");
  EXPECT_FALSE(p->prefill_given);
  ASSERT_EQ(p->decode.size(), 1u);
  ASSERT_EQ(p->prefill.size(), 1u);  // prefill defaults to decode's steps
  const Step& s = p->decode[0];
  EXPECT_EQ(s.op, "norm");
  EXPECT_EQ(s.kernel, "rmsnorm");
  EXPECT_TRUE(s.kernel_by_type.empty());
  EXPECT_TRUE(s.pinned_backend.empty());
  EXPECT_EQ(s.entry, "main");
  EXPECT_EQ(s.inputs, std::vector<std::string>{"hidden_state"});
  EXPECT_EQ(s.outputs, std::vector<std::string>{"hidden_state"});
  EXPECT_TRUE(s.weights.empty());
  EXPECT_EQ(s.location, "decode.steps[0]");
  EXPECT_EQ(p->prefill[0].location, "decode.steps[0]");
  EXPECT_EQ(p->source, "t.json");
}

TEST(Schema, KvDtypeDefaultsToTheActivationDtype) {
  auto p = parse(R"({"id": "p", "activationDtype": "f16", "decode": {"steps": [{"op": "a", "kernel": "rmsnorm"}]}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->activation_dtype, SlotDType::F16);
  EXPECT_EQ(p->kv_dtype, SlotDType::F16);
  auto q = parse(R"({"id": "p", "activationDtype": "f16", "kvDtype": "f32", "weightDtype": "f16",
                     "decode": {"steps": [{"op": "a", "kernel": "rmsnorm"}]}})");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->kv_dtype, SlotDType::F32);
  EXPECT_EQ(q->weight_dtype, "f16");
}

TEST(Schema, KernelForms) {
  auto p = parse(R"({"id": "p", "$comment": "kernels", "decode": {"steps": [
      {"op": "a", "kernel": {"Q4_K": "matmul_q4k", "q6_k": "matmul_q6k"}, "weights": "blk.{L}.attn_q"},
      {"op": "b", "kernel": "rmsnorm.comp"},
      {"op": "c", "kernel": "rmsnorm.cu", "entry": "last_row"}]}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const auto& s = p->decode;
  ASSERT_EQ(s[0].kernel_by_type.size(), 2u);
  EXPECT_EQ(s[0].kernel_by_type.at(format::GgmlType::Q4_K), "matmul_q4k");
  EXPECT_EQ(s[0].kernel_by_type.at(format::GgmlType::Q6_K), "matmul_q6k");
  EXPECT_EQ(s[0].weights, std::vector<std::string>{"blk.{L}.attn_q"});
  EXPECT_EQ(s[1].kernel, "rmsnorm.comp");
  EXPECT_EQ(s[1].pinned_backend, "vulkan");
  EXPECT_EQ(s[2].kernel, "rmsnorm.cu");
  EXPECT_EQ(s[2].pinned_backend, "cuda");
  EXPECT_EQ(s[2].entry, "last_row");
}

TEST(Schema, ConstantsKeepTheirTextAndPerBackendValues) {
  auto p = parse(R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": "rmsnorm",
      "constants": {"N": 2304, "EPS": 1e-6, "FLAG": true, "K": "N / 2",
                    "vulkan": {"ROWS_PER_WG": 4}, "cuda": {"BLOCK": 128, "EPS": 0.5}}}]}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const Step& s = p->decode[0];
  EXPECT_EQ(s.constants.at("N"), "2304");
  EXPECT_EQ(s.constants.at("EPS"), "1e-06");
  EXPECT_EQ(s.constants.at("FLAG"), "true");
  EXPECT_EQ(s.constants.at("K"), "N / 2");
  EXPECT_EQ(s.constants.size(), 4u);
  EXPECT_EQ(s.backend_constants.at("vulkan").at("ROWS_PER_WG"), "4");
  EXPECT_EQ(s.backend_constants.at("cuda").at("BLOCK"), "128");
  EXPECT_EQ(s.backend_constants.at("cuda").at("EPS"), "0.5");
}

TEST(Schema, WeightsInputsAndOutputsAsStringsOrArrays) {
  auto p = parse(R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": "ffn_gate_up_q4k",
      "weights": ["layer.{L}.mlp.gate_proj", "layer.{L}.mlp.up_proj"], "input": [], "output": ["x", "k_cache.{L}"]}]}})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  const Step& s = p->decode[0];
  EXPECT_EQ(s.weights, (std::vector<std::string>{"layer.{L}.mlp.gate_proj", "layer.{L}.mlp.up_proj"}));
  EXPECT_TRUE(s.inputs.empty());  // an explicit empty list is not the default
  EXPECT_EQ(s.outputs, (std::vector<std::string>{"x", "k_cache.{L}"}));
}

TEST(Schema, LayerOverridesReplaceStepsPerPhase) {
  auto p = parse(R"({"id": "p",
      "decode": {"steps": [{"op": "d", "kernel": "rmsnorm"}]},
      "layerOverrides": [
        {"layers": [0, 2], "decode": [{"op": "d0", "kernel": "rmsnorm"}]},
        {"layers": [1], "steps": [{"op": "s1", "kernel": "rmsnorm"}]},
        {"layers": [3], "prefill": {"steps": [{"op": "p3", "kernel": "rmsnorm"}]}}]})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto op = [&](uint32_t layer, bool prefill) { return p->layer_steps(layer, prefill).at(0).op; };
  EXPECT_EQ(op(0, false), "d0");
  EXPECT_EQ(op(2, false), "d0");
  // Without prefill steps of its own the path's prefill follows decode, overrides included.
  EXPECT_EQ(op(0, true), "d0");
  EXPECT_EQ(op(1, false), "s1");
  EXPECT_EQ(op(1, true), "s1");
  EXPECT_EQ(op(3, false), "d");
  EXPECT_EQ(op(3, true), "p3");
  EXPECT_EQ(op(4, false), "d");
  EXPECT_EQ(op(4, true), "d");
  EXPECT_EQ(p->layer_overrides[0].location, "layerOverrides[0]");
  EXPECT_EQ(p->layer_steps(0, false).at(0).location, "layerOverrides[0].decode[0]");
  EXPECT_EQ(p->layer_steps(3, true).at(0).location, "layerOverrides[2].prefill.steps[0]");
  EXPECT_TRUE(p->layer_overrides[1].both_phases);
}

TEST(Schema, AnOverridesDecodeDoesNotReplaceAGivenPrefill) {
  auto p = parse(R"({"id": "p",
      "decode": {"steps": [{"op": "d", "kernel": "rmsnorm"}]},
      "prefill": {"steps": [{"op": "p", "kernel": "rmsnorm"}]},
      "layerOverrides": [{"layers": [0], "decode": [{"op": "d0", "kernel": "rmsnorm"}]}]})");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->layer_steps(0, false).at(0).op, "d0");
  EXPECT_EQ(p->layer_steps(0, true).at(0).op, "p");
}

TEST(Schema, UnknownFieldsSuggestTheClosestOne) {
  auto p = parse(R"({"id": "p", "descripton": "x", "decode": {"steps": [
      {"op": "a", "kernel": "rmsnorm", "wieghts": "norm", "inputs": "x", "banana": 1}]}})");
  ASSERT_FALSE(p.ok());
  const std::string& m = p.error().message;
  EXPECT_NE(m.find("t.json: descripton: unknown field 'descripton' (did you mean 'description'?)"), std::string::npos)
      << m;
  EXPECT_NE(m.find("t.json: decode.steps[0].wieghts: unknown field 'wieghts' (did you mean 'weights'?)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("t.json: decode.steps[0].inputs: unknown field 'inputs' (did you mean 'input'?)"), std::string::npos)
      << m;
  EXPECT_NE(m.find("t.json: decode.steps[0].banana: unknown field 'banana' (expected one of: op, kernel, entry, "
                   "constants, weights, input, output)"),
            std::string::npos)
      << m;
}

TEST(Schema, AllProblemsAreReported) {
  auto p = parse(R"({"decode": {"steps": [{"kernel": 3}, {"op": "b", "kernel": "x", "entry": 7}]}, "kvDtype": "i32"})");
  ASSERT_FALSE(p.ok());
  const std::string& m = p.error().message;
  EXPECT_NE(m.find("t.json: missing field 'id'"), std::string::npos) << m;
  EXPECT_NE(m.find("t.json: kvDtype: 'i32' (expected f32 or f16)"), std::string::npos) << m;
  EXPECT_NE(m.find("t.json: decode.steps[0]: missing field 'op'"), std::string::npos) << m;
  EXPECT_NE(m.find("t.json: decode.steps[0].kernel: expected a kernel id or an object weight type -> kernel id, got a "
                   "number"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("t.json: decode.steps[1].entry: expected a string, got a number"), std::string::npos) << m;
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 4);
}

TEST(Schema, RejectsMalformedValues) {
  struct Bad {
    const char* json;
    const char* message;
  };
  const Bad cases[] = {
      {R"({"id": "p", "decode": {"steps": []}, "prefill": []})", "prefill: expected an object {\"steps\": [...]}"},
      {R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": {}}]}})",
       "decode.steps[0].kernel: expected at least one weight type -> kernel entry"},
      {R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": {"Q4_K": "matmul_q4k.comp"}}]}})",
       "decode.steps[0].kernel.Q4_K: 'matmul_q4k.comp': a per-type kernel map names logical kernel ids, not files"},
      {R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": "k", "constants": {"N": [1]}}]}})",
       "decode.steps[0].constants.N: expected a number, boolean or expression string, got an array"},
      {R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": "k", "weights": ["ok", ""]}]}})",
       "decode.steps[0].weights[1]: expected a non-empty name, got \"\""},
      {R"({"id": "p", "decode": {"steps": [{"op": "", "kernel": "k"}]}})",
       "decode.steps[0].op: expected a non-empty operation name"},
      {R"({"id": "p", "decode": {"steps": []}, "layerOverrides": [{"layers": [-1], "steps": []}]})",
       "layerOverrides[0].layers[0]: expected a layer number, got -1"},
      {R"({"id": "p", "decode": {"steps": []}, "layerOverrides": [{"layers": [1]}]})",
       "layerOverrides[0]: missing field 'steps' (or 'decode' / 'prefill')"},
      {R"({"id": "p", "decode": {"steps": []}, "layerOverrides": [{"layers": [], "steps": []}]})",
       "layerOverrides[0].layers: expected a non-empty array of layer numbers"},
      {R"({"id": "p", "decode": {"steps": [{"op": "a", "kernel": "k", "output": "x{L"}]}})",
       "decode.steps[0].output: unknown template '{L' in 'x{L'"},
      {R"([1, 2])", "t.json: expected a kernel path object, got an array"},
      {R"({"id": "p"})", "t.json: missing field 'decode'"},
  };
  for (const auto& c : cases) {
    auto p = parse(c.json);
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_NE(p.error().message.find(c.message), std::string::npos) << c.json << "\n" << p.error().message;
  }
}

TEST(Schema, WriterRoundTripsEveryBuiltinPath) {
  for (const char* id : {"gemma2-q4k-fused", "gemma2-q4k-dequant-f32", "gemma2-q4k-dequant-f16", "gemma2-f16-native"}) {
    const std::string file = testing::source_path(std::string("kernel_paths/") + id + ".json");
    const KernelPath a = testing::load_path_file(file);
    const std::string text = kernel_path_to_json(a);
    auto b = parse_kernel_path(text, "copy.json");
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(kernel_path_to_json(*b), text) << id;
    // The written document says the same as the file, defaults aside.
    auto original = nlohmann::json::parse(*read_text_file(file));
    auto written = nlohmann::json::parse(text);
    EXPECT_EQ(written["decode"]["steps"].size(), original["decode"]["steps"].size()) << id;
    EXPECT_EQ(written["prefill"]["steps"].size(), original["prefill"]["steps"].size()) << id;
    EXPECT_EQ(written["decode"]["steps"][1]["kernel"], original["decode"]["steps"][1]["kernel"]) << id;
    EXPECT_EQ(written["postLayer"][0]["entry"], "last_row") << id;
    EXPECT_EQ(b->decode.size(), a.decode.size());
    EXPECT_EQ(b->prefill_given, a.prefill_given);
  }
}

TEST(Schema, WriterKeepsConstantsOverridesAndPinnedFiles) {
  auto a = parse(R"({"id": "p", "weightDtype": "f32", "decode": {"steps": [
      {"op": "a", "kernel": "rmsnorm.comp", "constants": {"N": 8, "EPS": 1e-5, "F": false, "X": "N*2",
       "cuda": {"BLOCK": 64}}, "input": []}]},
      "layerOverrides": [{"layers": [1], "steps": [{"op": "b", "kernel": "rmsnorm"}]},
                         {"layers": [2], "prefill": [{"op": "c", "kernel": "rmsnorm"}]}]})");
  ASSERT_TRUE(a.ok()) << a.error().message;
  const std::string text = kernel_path_to_json(*a);
  auto j = nlohmann::json::parse(text);
  const auto& c = j["decode"]["steps"][0]["constants"];
  EXPECT_EQ(c["N"], 8);
  EXPECT_EQ(c["EPS"], 1e-5);
  EXPECT_EQ(c["F"], false);
  EXPECT_EQ(c["X"], "N*2");
  EXPECT_EQ(c["cuda"]["BLOCK"], 64);
  EXPECT_EQ(j["decode"]["steps"][0]["kernel"], "rmsnorm.comp");
  EXPECT_EQ(j["decode"]["steps"][0]["input"], nlohmann::json::array());
  EXPECT_TRUE(j["layerOverrides"][0].contains("steps"));
  EXPECT_FALSE(j["layerOverrides"][1].contains("decode"));
  EXPECT_TRUE(j["layerOverrides"][1].contains("prefill"));
  auto b = parse_kernel_path(text, "copy.json");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->decode[0].pinned_backend, "vulkan");
  EXPECT_EQ(b->decode[0].constants, a->decode[0].constants);
  EXPECT_EQ(b->decode[0].backend_constants, a->decode[0].backend_constants);
  EXPECT_EQ(kernel_path_to_json(*b), text);
}

TEST(Suggest, EditDistanceCountsASwapAsOneEdit) {
  EXPECT_EQ(edit_distance("rmsnorm", "rmsnorm"), 0u);
  EXPECT_EQ(edit_distance("rmsnrom", "rmsnorm"), 1u);
  EXPECT_EQ(edit_distance("prefil", "prefill"), 1u);
  EXPECT_EQ(edit_distance("Q4K", "q4_k"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(Suggest, OnlyCloseNamesAreSuggested) {
  const std::vector<std::string> names = {"constants", "weights", "entry", "input", "output"};
  EXPECT_EQ(did_you_mean("constans", names), " (did you mean 'constants'?)");
  EXPECT_EQ(did_you_mean("outptu", names), " (did you mean 'output'?)");
  EXPECT_EQ(did_you_mean("zzz", names), "");
  EXPECT_EQ(closest_name("entyr", names), "entry");
  EXPECT_EQ(closest_name("banana", names), "");
}

}  // namespace
}  // namespace kp::kpath
