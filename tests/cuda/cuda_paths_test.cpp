// The four built-in kernel paths on the CUDA backend against the CPU backend
// on the same weights, with the Vulkan test's bounds: last-position logits
// within 1e-3 (f32) or 1e-2 (f16 weights), greedy tokens equal for the f32
// paths. Skipped where there is no CUDA device.
#include <gtest/gtest.h>

#include "../support/path_runs.h"

namespace kp::test {
namespace {

class CudaPath : public testing::TestWithParam<PathCase> {};

TEST_P(CudaPath, MatchesTheCpuBackend) {
  const PathCase& c = GetParam();
  auto model = format::GgufFile::open(model_file(c.model));
  ASSERT_TRUE(model.ok()) << model.error().message;
  {
    runtime::BackendRequest probe;
    probe.name = "cuda";
    auto be = runtime::open_backend(probe);
    if (!be.ok()) GTEST_SKIP() << "no CUDA device: " << be.error().message;
  }
  auto gpu = open_path(*model, "cuda", c.path);
  ASSERT_TRUE(gpu.ok()) << gpu.error().message;
  const auto prompts = golden_prompts({0, 1, 2, 3, 4});
  auto cpu = open_path(*model, "cpu", c.path);
  ASSERT_TRUE(cpu.ok()) << cpu.error().message;
  auto want = run_session(**cpu, prompts, 48);
  ASSERT_TRUE(want.ok()) << want.error().message;
  auto got = run_session(**gpu, prompts, 48);
  ASSERT_TRUE(got.ok()) << got.error().message;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_LE(rel_l2(got->last_logits[i], want->last_logits[i]), c.vs_cpu) << "prompt " << i;
    if (c.f32) {
      EXPECT_EQ(got->greedy_tokens[i], want->greedy_tokens[i]) << "prompt " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BuiltinPaths, CudaPath, testing::ValuesIn(builtin_path_cases()), case_name);

}  // namespace
}  // namespace kp::test
