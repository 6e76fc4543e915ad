// `kpath paths` and `kpath kernels` end to end: the built binary on the
// built-in paths, the fixtures and the invalid path files.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>

#include "kernel_path/schema.h"
#include "path_test_support.h"

namespace kp::kpath {
namespace {

struct CommandResult {
  int code = -1;
  std::string out;  // stdout and stderr together
};

// Runs kpath with user path directories pointed at an empty place.
CommandResult kpath(const std::string& args, bool with_stderr = true) {
  const std::string cmd = fmt::format("XDG_CONFIG_HOME=/nonexistent-kpath-test '{}' {}{}", KP_BINARY, args,
                                      with_stderr ? " 2>&1" : " 2>/dev/null");
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(CliPaths, ValidateBuiltinPathsOnTheEmbeddedModel) {
  CommandResult r = kpath("paths validate gemma2-q4k-fused");
  EXPECT_EQ(r.code, 0) << r.out;
  // preLayer 1 + 6 layers x 13 + postLayer 3 + sampling 2
  EXPECT_EQ(r.out.rfind("ok: gemma2-q4k-fused: 84 dispatches per decode token\n", 0), 0u) << r.out;
  r = kpath("paths validate gemma2-q4k-dequant-f32 --backend cpu");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("ok: gemma2-q4k-dequant-f32: 96 dispatches per decode token\n", 0), 0u) << r.out;
  r = kpath("paths validate " + testing::source_path("kernel_paths/gemma2-f16-native.json") + " -m " +
            testing::f16_model());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("ok: gemma2-f16-native: 84 dispatches per decode token\n", 0), 0u) << r.out;
}

TEST(CliPaths, ValidatePrintsTheErrorsAndFails) {
  const std::string file = testing::data_path("invalid_paths/several_errors.json");
  CommandResult r = kpath("paths validate " + file);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("kpath: " + file +
                       ": decode.steps[0].kernel: unknown kernel 'rmsnrom' (did you mean "
                       "'rmsnorm'?)\n" +
                       file + ": decode.steps[4].input[1]: slot 'q' is f32"),
            std::string::npos)
      << r.out;
  r = kpath("paths validate gemma2-f16-native");  // the embedded model is Q4_K_M
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("decode.steps[1].kernel: tensor blk.0.attn_q.weight is Q4_K but the step names kernels for "
                       "F32, F16"),
            std::string::npos)
      << r.out;
}

TEST(CliPaths, ListShowsTheBuiltinPaths) {
  CommandResult r = kpath("paths list");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* id : {"gemma2-q4k-fused", "gemma2-q4k-fused-max", "gemma2-q4k-dequant-f32", "gemma2-q4k-dequant-f16",
                         "gemma2-f16-native", "gemma2-q4k-x8", "gemma2-q4k-x8-max", "gemma2-q4k-x8-h16"}) {
    EXPECT_NE(r.out.find(id), std::string::npos) << id;
  }
  r = kpath("paths list --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 8u);
  EXPECT_EQ(j[0]["id"], "gemma2-f16-native");
  EXPECT_EQ(j[0]["builtin"], true);
  EXPECT_EQ(j[3]["id"], "gemma2-q4k-fused-max");
  EXPECT_EQ(j[3]["decodeStepsPerLayer"], 8);
  EXPECT_EQ(j[4]["id"], "gemma2-q4k-fused");
  EXPECT_EQ(j[4]["decodeStepsPerLayer"], 13);
  EXPECT_EQ(j[5]["id"], "gemma2-q4k-x8-h16");
  EXPECT_EQ(j[5]["decodeStepsPerLayer"], 13);
  EXPECT_EQ(j[6]["id"], "gemma2-q4k-x8-max");
  EXPECT_EQ(j[6]["decodeStepsPerLayer"], 8);
  EXPECT_EQ(j[7]["id"], "gemma2-q4k-x8");
  EXPECT_EQ(j[7]["decodeStepsPerLayer"], 13);
  EXPECT_EQ(j[2]["decodeStepsPerLayer"], 15);
  EXPECT_EQ(j[2]["weightDtype"], "f32");
}

TEST(CliPaths, ShowDrawsTheChainAndJsonIsAPathFile) {
  CommandResult r = kpath("paths show gemma2-q4k-fused");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("decode: 13 dispatches per layer\n"
                       "  input_norm → q_proj → k_proj → v_proj → rope_q → rope_k →\n"
                       "  attention → o_proj → attn_residual → post_attn_norm →\n"
                       "  ffn_gate_up → down_proj → ffn_residual\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("prefill: 13 dispatches per layer\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("postLayer: 3 steps\n  final_norm → lm_head → final_softcap\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sampling: 2 steps\n  repeat_penalty → sample\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weights:     native"), std::string::npos) << r.out;

  r = kpath("paths show gemma2-q4k-dequant-f16 --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto p = parse_kernel_path(r.out, "shown.json");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->id, "gemma2-q4k-dequant-f16");
  EXPECT_EQ(p->weight_dtype, "f16");
  EXPECT_EQ(p->decode.size(), 15u);

  r = kpath("paths show gemma2-q4k-fusd");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("kpath: unknown kernel path 'gemma2-q4k-fusd' (did you mean 'gemma2-q4k-fused'?)"),
            std::string::npos)
      << r.out;
}

TEST(CliPaths, DiffListsChangedSteps) {
  CommandResult r = kpath("paths diff gemma2-q4k-fused gemma2-q4k-dequant-f32");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("weightDtype: native -> f32\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  - ffn_gate_up:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  + activation: gelu_mul, ffn_gate, ffn_up -> ffn_h\n"), std::string::npos) << r.out;
  r = kpath("paths diff gemma2-q4k-fused " + testing::source_path("kernel_paths/gemma2-q4k-fused.json"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("no differences"), std::string::npos) << r.out;
}

TEST(CliKernels, ListAndShow) {
  CommandResult r = kpath("kernels list --json", false);
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  bool found = false;
  for (const auto& k : j) {
    if (k["id"] != "matmul_q4k") continue;
    found = true;
    EXPECT_EQ(k["entries"], (nlohmann::json{"gemm", "main"}));
    const auto backends = k["backends"].get<std::vector<std::string>>();
    EXPECT_NE(std::find(backends.begin(), backends.end(), "cpu"), backends.end());
    EXPECT_NE(std::find(backends.begin(), backends.end(), "cuda"), backends.end());
  }
  EXPECT_TRUE(found);
  r = kpath("kernels list");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("ID", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("rmsnorm "), std::string::npos) << r.out;

  r = kpath("kernels show rmsnorm");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("  0  x  in      [T, N]  f32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  2  y  out     [T, N]  f32  may be the slot of 'x'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("EPS  f32  = model.rms_eps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("last_row  only row T-1; y is [1, N]  shapes: y [1, N]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  cuda: " + testing::source_path("kernels/cuda/rmsnorm.cu")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  cpu: compiled in"), std::string::npos) << r.out;

  r = kpath("kernels show rmsnrom");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("kpath: unknown kernel 'rmsnrom' (did you mean 'rmsnorm'?)"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kp::kpath
