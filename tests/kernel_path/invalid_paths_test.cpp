// Every file in tests/data/invalid_paths/ is a kernel path with one defect
// (several_errors.json has three). Each must be rejected, by the parser or by
// validation against kjv-tiny-q4_k_m on the CPU backend, with an error that
// names the file, the JSON location and what was expected.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "path_test_support.h"

namespace kp::kpath {
namespace {

using testing::data_path;

struct Expected {
  std::string file;     // in tests/data/invalid_paths/
  std::string message;  // a distinctive part of the error, after "<file>: "
  size_t lines = 1;     // error lines reported (0: not checked)
};

const std::vector<Expected>& expectations() {
  static const std::vector<Expected> cases = {
      // Parsing.
      {"not_json", "not valid JSON: parse error at line 5, column 1"},
      {"unknown_top_field", "prefil: unknown field 'prefil' (did you mean 'prefill'?)"},
      {"unknown_step_field", "decode.steps[9].constans: unknown field 'constans' (did you mean 'constants'?)"},
      {"missing_op", "decode.steps[2]: missing field 'op'"},
      {"missing_kernel", "postLayer[1]: missing field 'kernel'"},
      {"bad_activation_dtype", "activationDtype: 'bf16' (expected f32 or f16)"},
      {"bad_weight_dtype", "weightDtype: 'q8_0' (expected native, f32 or f16)"},
      {"bad_type_key", "decode.steps[1].kernel.Q4K: 'Q4K' is not a GGUF tensor type (did you mean 'Q4_K'?)"},
      {"wgsl_kernel",
       "decode.steps[0].kernel: 'rmsnorm.wgsl': '.wgsl' files are not kernels kpath runs (expected a "
       "logical kernel id such as 'rmsnorm', or a .comp (Vulkan) or .cu (CUDA) file)"},
      {"bad_backend_constants",
       "decode.steps[1].constants.metal: expected a number, boolean or expression string, "
       "or per-backend constants under 'vulkan', 'cuda' or 'cpu'"},
      {"layer_template_outside_layers", "postLayer[0].weights: 'blk.{L}.attn_norm' uses {L} outside the layer steps"},
      {"unknown_template", "decode.steps[1].weights: unknown template '{layer}' in 'blk.{layer}.attn_q'"},
      {"override_steps_and_decode",
       "layerOverrides[0]: give either 'steps' (both phases) or 'decode' / 'prefill', "
       "not both"},
      {"override_twice", "layerOverrides[1].layers[0]: layer 2 already has decode steps from layerOverrides[0]"},
      {"missing_id", "missing field 'id'"},
      {"steps_not_array", "decode.steps: expected an array of steps, got an object"},
      {"input_number", "decode.steps[4].input: expected a name or an array of names, got a number"},
      {"bad_id", "id: 'my path' is not a valid path id"},
      {"duplicate_decode",
       "decode: key 'decode' appears twice in one object (line 32, column 3; first at line 8, column 3)"},
      {"duplicate_entry",
       "postLayer[0].entry: key 'entry' appears twice in one object (line 24, column 68; first at line 24, "
       "column 47)"},
      {"empty_decode_steps", "decode.steps: no steps (a layer needs at least one)"},
      // Constants against their rules, the model and the device.
      {"constant_workgroup_zero",
       "decode.steps[0].constants.vulkan.WG_SIZE: constant WG_SIZE of kernel 'rmsnorm' (vulkan) = 0 is below its "
       "minimum 1"},
      {"constant_workgroup_huge",
       "decode.steps[0].constants.vulkan.WG_SIZE: constant WG_SIZE of kernel 'rmsnorm' (vulkan) = 1073741824 is above "
       "its maximum 1024 (device.max_workgroup_size)"},
      {"constant_workgroup_not_pow2",
       "decode.steps[0].constants.vulkan.WG_SIZE: constant WG_SIZE of kernel 'rmsnorm' (vulkan) = 96 is not a power "
       "of two"},
      {"constant_cuda_block",
       "decode.steps[0].constants.cuda.BLOCK: constant BLOCK of kernel 'rmsnorm' (cuda) = 48 is not a multiple of "
       "32"},
      {"constant_dimension_contradicts",
       "decode.steps[2].constants.N: constant N of kernel 'matmul_q4k' (cpu) = 100 contradicts the model and the "
       "step's shapes: it must equal 128 (N)"},
      {"constant_head_count",
       "decode.steps[6].constants.N_HEAD: constant N_HEAD of kernel 'attention' (cpu) = 2 contradicts the model and "
       "the step's shapes: it must equal 4 (model.n_head)"},
      // Kernels, entries, implementations.
      {"unknown_kernel", "decode.steps[0].kernel: unknown kernel 'rmsnrom' (did you mean 'rmsnorm'?)"},
      {"unknown_kernel_in_map", "decode.steps[7].kernel.Q4_K: unknown kernel 'matmul_q4' (did you mean 'matmul_q4k'?)"},
      {"unknown_entry", "decode.steps[0].entry: kernel 'rmsnorm' has no entry 'last' (it has: last_row, main)"},
      {"unknown_entry_in_map",
       "decode.steps[1].entry: kernel 'matmul_q4k' (for Q4_K weights) has no entry 'gem' (did "
       "you mean 'gemm'?)",
       2},
      {"pinned_file_other_backend",
       "decode.steps[0].kernel: 'rmsnorm.cu' is a cuda kernel file, so this step runs "
       "only on cuda, not on the cpu backend"},
      {"pinned_file_unknown",
       "decode.steps[0].kernel: no cuda implementation in the registry uses the file "
       "'rms_norm.cu' (did you mean 'rmsnorm.cu'?)"},
      {"map_without_weights",
       "decode.steps[4].kernel: a per-type kernel map chooses by the type of the step's first "
       "weight, but the step has no weights"},
      // Constants.
      {"unknown_constant",
       "decode.steps[9].constants.EPSILON: kernel 'rmsnorm' (cpu) declares no constant 'EPSILON' "
       "(it declares: N, EPS)"},
      {"constant_wrong_type", "decode.steps[0].constants.EPS: expected f32, got true"},
      {"constant_bad_expression",
       "decode.steps[6].constants.SOFTCAP: expression 'model.attn_softcapping': unknown "
       "symbol 'model.attn_softcapping'"},
      {"backend_constant_unknown",
       "decode.steps[0].constants.cpu.ROWS: kernel 'rmsnorm' (cpu) declares no constant "
       "'ROWS'"},
      {"cuda_constant_wrong_type",
       "decode.steps[0].constants.cuda.BLOCK: expected an unsigned 32-bit integer, got "
       "1.5"},
      // Weights.
      {"weight_unresolved",
       "decode.steps[1].weights[0]: 'layer.{L}.self_attn.q_projection' at layer 0: weight "
       "'layer.0.self_attn.q_projection': not a Gemma 2 weight name"},
      {"weight_missing_tensor",
       "postLayer[0].weights[0]: 'blk.7.attn_norm' is the tensor 'blk.7.attn_norm.weight', "
       "which "},
      {"type_not_in_map",
       "decode.steps[3].kernel: tensor blk.2.attn_v.weight is Q6_K but the step names kernels for "
       "Q4_K"},
      {"type_not_accepted",
       "decode.steps[1].weights[0]: tensor blk.0.attn_q.weight is Q4_K but kernel 'matmul_f16' "
       "binding 'w' accepts F16"},
      {"too_few_weights",
       "decode.steps[10].weights: kernel 'ffn_gate_up_q4k' takes 2 weights (gate, up), the step "
       "gives 1"},
      // Slots, shapes, dtypes.
      {"read_before_write",
       "decode.steps[1].input[0]: slot 'normd' is read before any step writes it (did you mean "
       "'normed'?)"},
      {"shape_mismatch",
       "decode.steps[11].weights[0]: tensor blk.0.ffn_down.weight is [256, 768] but kernel "
       "'matmul_q4k' binding 'w' needs [N, K] with K = 256 (from input[0] 'normed')"},
      // The slot given as positions is also the one rope writes in place of x.
      {"dtype_mismatch",
       "decode.steps[4].input[1]: slot 'q' is f32 but kernel 'rope_neox' binding 'positions' needs "
       "i32",
       2},
      {"too_few_inputs", "decode.steps[5].input: kernel 'rope_neox' takes 2 inputs (x, positions), the step gives 1"},
      {"too_few_outputs",
       "decode.steps[6].output: kernel 'attention' takes 3 outputs (o, k_cache, v_cache), the step "
       "gives 1"},
      // ... and then no step writes q.
      {"not_in_place",
       "decode.steps[1].output[0]: kernel 'matmul_q4k' cannot write slot 'normed' in place of its "
       "input 'x' (binding 'y' is not declared in place)",
       2},
      {"kv_dtype_f16",
       "decode.steps[6].output[1]: slot 'k_cache.{L}' is f16 (the path's kvDtype) but kernel "
       "'attention' binding 'k_cache' needs f32",
       2},
      {"activation_f16",
       "preLayer[0].output[0]: kernel 'embed_q6k' writes f32 activations to slot 'hidden_state' but "
       "the path's activationDtype is f16",
       0},
      {"logits_all_rows",
       "postLayer[1].output[0]: slot 'logits' holds the last position only, [1, n_vocab], but "
       "kernel 'matmul_q6k' binding 'y' writes [T, 4096]",
       2},
      {"slot_reshaped",
       "decode.steps[2].output[0]: slot 'q' is [T, 256] (written by decode.steps[1]) but kernel "
       "'matmul_q4k' binding 'y' writes [T, 128]",
       2},
      {"bound_twice",
       "decode.steps[6].output[2]: slot 'k_cache.{L}' is bound to both 'k_cache' and 'v_cache' of "
       "kernel 'attention'"},
      {"no_logits", "postLayer: no step writes the slot 'logits'"},
      {"cache_layer_out_of_range",
       "decode.steps[6].output[1]: slot 'k_cache.9' is the KV cache of layer 9, but the "
       "model has 6 layers"},
      {"override_layer_out_of_range",
       "layerOverrides[0].layers[0]: layer 6 does not exist (the model has 6 layers, "
       "0..5)"},
      {"several_errors", "decode.steps[0].kernel: unknown kernel 'rmsnrom' (did you mean 'rmsnorm'?)", 4},
  };
  return cases;
}

// Parses and validates one file; the error text, or "" if it is accepted.
std::string rejection(const std::string& file) {
  auto text = read_text_file(file);
  if (!text.ok()) return "cannot read: " + text.error().message;
  auto path = parse_kernel_path(*text, file);
  if (!path.ok()) return path.error().message;
  const auto& m = testing::load_model(testing::q4_k_m_model());
  auto plan = validate_path(*path, testing::builtin_registry(), m.file, testing::options_for(m));
  return plan.ok() ? std::string() : plan.error().message;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = text.find('\n', start);
    out.push_back(text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

class InvalidPath : public ::testing::TestWithParam<Expected> {};

TEST_P(InvalidPath, IsRejectedWithItsMessage) {
  const Expected& e = GetParam();
  const std::string file = data_path("invalid_paths/" + e.file + ".json");
  const std::string error = rejection(file);
  ASSERT_FALSE(error.empty()) << file << " was accepted";
  EXPECT_NE(error.find(file + ": " + e.message), std::string::npos) << "error:\n" << error;
  const auto lines = lines_of(error);
  for (const auto& line : lines) EXPECT_EQ(line.rfind(file + ": ", 0), 0u) << "line without the file: " << line;
  if (e.lines != 0) {
    EXPECT_EQ(lines.size(), e.lines) << "error:\n" << error;
  }
}

INSTANTIATE_TEST_SUITE_P(Files, InvalidPath, ::testing::ValuesIn(expectations()),
                         [](const ::testing::TestParamInfo<Expected>& p) { return p.param.file; });

TEST(InvalidPaths, EveryFileHasAnExpectationAndThereAreAtLeastThirty) {
  std::set<std::string> expected;
  for (const auto& e : expectations()) expected.insert(e.file);
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(data_path("invalid_paths"))) {
    files.insert(entry.path().stem().string());
  }
  EXPECT_EQ(files, expected);
  EXPECT_GE(files.size(), 30u);
}

TEST(InvalidPaths, SeveralErrorsAreAllReportedInPathOrder) {
  const std::string file = data_path("invalid_paths/several_errors.json");
  const auto lines = lines_of(rejection(file));
  // Three defects; the second also makes rope write q in place of the wrong input.
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], file + ": decode.steps[0].kernel: unknown kernel 'rmsnrom' (did you mean 'rmsnorm'?)");
  EXPECT_EQ(lines[1], file +
                          ": decode.steps[4].input[1]: slot 'q' is f32 but kernel 'rope_neox' binding "
                          "'positions' needs i32");
  EXPECT_EQ(lines[2], file +
                          ": decode.steps[4].output[0]: kernel 'rope_neox' cannot write slot 'q' in place of its "
                          "input 'positions' (binding 'y' may only replace 'x')");
  EXPECT_EQ(lines[3].rfind(file + ": postLayer[1].weights[0]: 'lm_heads': weight 'lm_heads': not a Gemma 2 weight "
                                  "name",
                           0),
            0u)
      << lines[3];
}

}  // namespace
}  // namespace kp::kpath
