// The text forms of a path: the chain drawn as in the seed documentation,
// kernel and constant labels, and the section-by-section diff.
#include "kernel_path/describe.h"

#include <gtest/gtest.h>

#include "path_test_support.h"

namespace kp::kpath {
namespace {

KernelPath builtin(const std::string& id) {
  return testing::load_path_file(testing::source_path("kernel_paths/" + id + ".json"));
}

TEST(Describe, ChainsWrapLikeTheSeedDocumentation) {
  EXPECT_EQ(chain(builtin("gemma2-q4k-fused").decode),
            "input_norm → q_proj → k_proj → v_proj → rope_q → rope_k →\n"
            "attention → o_proj → attn_residual → post_attn_norm →\n"
            "ffn_gate_up → down_proj → ffn_residual\n");
  EXPECT_EQ(chain(builtin("gemma2-q4k-dequant-f32").decode),
            "input_norm → q_proj → k_proj → v_proj → rope_q → rope_k →\n"
            "attention → o_proj → attn_residual → post_attn_norm →\n"
            "gate_proj → up_proj → activation → down_proj → ffn_residual\n");
  EXPECT_EQ(chain(builtin("gemma2-q4k-fused").sampling), "repeat_penalty → sample\n");
  EXPECT_EQ(chain({}), "");
}

TEST(Describe, Labels) {
  const KernelPath fused = builtin("gemma2-q4k-fused");
  EXPECT_EQ(kernel_label(fused.decode[0]), "rmsnorm");
  EXPECT_EQ(kernel_label(fused.decode[1]),
            "{F32: matmul_f32, F16: matmul_f16, Q8_0: matmul_q8_0, Q4_K: matmul_q4k, Q6_K: matmul_q6k}");
  Step s;
  s.kernel = "rmsnorm.comp";
  s.pinned_backend = "vulkan";
  s.constants = {{"EPS", "1e-06"}, {"N", "256"}};
  s.backend_constants["vulkan"] = {{"ROWS_PER_WG", "4"}};
  EXPECT_EQ(kernel_label(s), "rmsnorm.comp (vulkan)");
  EXPECT_EQ(constants_label(s), "EPS=1e-06, N=256, vulkan: {ROWS_PER_WG=4}");
  EXPECT_EQ(constants_label(fused.decode[0]), "");
}

TEST(Describe, DiffOfFusedAndDequantF32) {
  const std::string d = diff_paths(builtin("gemma2-q4k-fused"), builtin("gemma2-q4k-dequant-f32"));
  EXPECT_NE(d.find("weightDtype: native -> f32\n"), std::string::npos) << d;
  EXPECT_NE(d.find("name: Gemma 2 Q4K Fused -> Gemma 2 Q4K Dequant F32\n"), std::string::npos) << d;
  EXPECT_NE(d.find("decode: 13 -> 15 steps\n"), std::string::npos) << d;
  EXPECT_NE(d.find("  - ffn_gate_up: {F32: ffn_gate_up_f32, F16: ffn_gate_up_f16, Q8_0: ffn_gate_up_q8_0, Q4_K: "
                   "ffn_gate_up_q4k, Q6_K: ffn_gate_up_q6k}, normed -> ffn_h, weights layer.{L}.mlp.gate_proj, "
                   "layer.{L}.mlp.up_proj\n"
                   "  + gate_proj: matmul_f32, normed -> ffn_gate, weights layer.{L}.mlp.gate_proj\n"
                   "  + up_proj: matmul_f32, normed -> ffn_up, weights layer.{L}.mlp.up_proj\n"
                   "  + activation: gelu_mul, ffn_gate, ffn_up -> ffn_h\n"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("  ~ q_proj: kernel {F32: matmul_f32, F16: matmul_f16, Q8_0: matmul_q8_0, Q4_K: matmul_q4k, Q6_K: "
                   "matmul_q6k} -> matmul_f32\n"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("prefill: 13 -> 15 steps\n"), std::string::npos) << d;
  EXPECT_NE(d.find("postLayer:\n  ~ lm_head: kernel"), std::string::npos) << d;
  // Steps that are the same are not listed; sampling did not change.
  EXPECT_EQ(d.find("input_norm"), std::string::npos) << d;
  EXPECT_EQ(d.find("sampling"), std::string::npos) << d;
}

TEST(Describe, DiffOfAPathWithItselfIsEmpty) {
  const KernelPath a = builtin("gemma2-f16-native");
  EXPECT_EQ(diff_paths(a, a), "");
  KernelPath b = a;
  b.decode[2].entry = "gemm";
  b.decode[2].constants["K"] = "256";
  EXPECT_EQ(diff_paths(a, b), "decode:\n  ~ k_proj: entry main -> gemm; constants (none) -> K=256\n");
}

}  // namespace
}  // namespace kp::kpath
