// The four built-in kernel paths on the Vulkan backend (lavapipe in CI)
// against the CPU backend on the same weights: last-position logits within
// 1e-3 (f32 activations and weights) or 1e-2 (f16 weights), the same greedy
// tokens for the f32 paths, and nothing from the validation layers.
#include <gtest/gtest.h>

#include "../support/path_runs.h"
#include "backend/vulkan/vulkan_backend.h"
#include "vulkan_env.h"

namespace kp::test {
namespace {

class VulkanPath : public testing::TestWithParam<PathCase> {};

TEST_P(VulkanPath, MatchesTheCpuBackend) {
  KP_REQUIRE_VULKAN();
  const PathCase& c = GetParam();
  auto model = format::GgufFile::open(model_file(c.model));
  ASSERT_TRUE(model.ok()) << model.error().message;
  // The short prompts and the one crossing the sliding window; 12 greedy tokens
  // keep lavapipe's share of the suite small.
  const auto prompts = golden_prompts({0, 4});
  auto cpu = open_path(*model, "cpu", c.path);
  ASSERT_TRUE(cpu.ok()) << cpu.error().message;
  auto want = run_session(**cpu, prompts, 12);
  ASSERT_TRUE(want.ok()) << want.error().message;

  const bool validation = vulkan_test::env().validation;
  auto gpu = open_path(*model, "vulkan", c.path, validation);
  ASSERT_TRUE(gpu.ok()) << gpu.error().message;
  EXPECT_EQ((*gpu)->backend().info().backend, "vulkan");
  auto got = run_session(**gpu, prompts, 12);
  ASSERT_TRUE(got.ok()) << got.error().message;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_LE(rel_l2(got->last_logits[i], want->last_logits[i]), c.vs_cpu) << "prompt " << i;
    if (c.f32) {
      EXPECT_EQ(got->greedy_tokens[i], want->greedy_tokens[i]) << "prompt " << i;
    }
  }
  if (validation) {
    auto* vk = dynamic_cast<backend::VulkanBackend*>(&(*gpu)->backend());
    ASSERT_NE(vk, nullptr);
    std::string messages;
    for (const auto& m : vk->validation_messages()) messages += "\n  " + m;
    EXPECT_EQ(vk->validation_message_count(), 0u) << messages;
  }
}

// The built-in paths whose kernels all have Vulkan implementations.
std::vector<PathCase> vulkan_path_cases() {
  std::vector<PathCase> out;
  for (const PathCase& c : builtin_path_cases()) {
    if (c.vulkan) out.push_back(c);
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(BuiltinPaths, VulkanPath, testing::ValuesIn(vulkan_path_cases()), case_name);

}  // namespace
}  // namespace kp::test
