// Soak on Vulkan (lavapipe on a CPU-only machine): short generations in one
// process with no growth in memory, as tests/reliability/soak_test.cpp does on
// the CPU backend. On lavapipe a generation takes over a second (300 took 6.5
// minutes on a 2-core machine), so CI runs 30 generations after a warm-up of
// 20 (VulkanSoak.*): a leak per generation (descriptor sets, staging buffers,
// command buffers: tens of KiB each) passes the 1 MiB slack within them (RSS
// was flat to the KiB over 250 generations when this was written). The longer
// soak (VulkanSoakSlow.*: 80 generations, or KP_SOAK_GENERATIONS=1000 for
// about half an hour there) carries the `slow` label and runs by hand:
//   ctest --test-dir build/release -L slow
// Without the validation layer, whose own bookkeeping grows with every
// submission and would hide the backend's.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "../support/soak.h"
#include "vulkan_env.h"

namespace kp::soak {
namespace {

constexpr size_t kWarmup = 20;
constexpr uint32_t kTokensPerGeneration = 8;

// `generations` seeded generations (the first kWarmup unmeasured) on one
// Vulkan session; RSS may grow by at most `slack` after the warm-up.
void soak_vulkan(size_t generations, uint64_t slack) {
  auto file = format::GgufFile::open(std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf");
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto tok = model::Tokenizer::from_gguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& text : soak_prompts()) prompts.push_back(tok->encode(text, true));

  auto session = open_session(*file, "vulkan");
  ASSERT_TRUE(session.ok()) << session.error().message;
  runtime::Executor& ex = (*session)->executor();

  uint64_t after_warmup = 0, end = 0;
  for (size_t g = 0; g < generations; ++g) {
    Sampling sampling;
    sampling.seed = g;
    sampling.temperature = g % 4 == 0 ? 0.0f : 0.8f;
    auto tokens = generate(ex, prompts[g % prompts.size()], kTokensPerGeneration, sampling);
    ASSERT_TRUE(tokens.ok()) << "generation " << g << ": " << tokens.error().message;
    if (g + 1 == kWarmup) after_warmup = resident_bytes();
  }
  end = resident_bytes();
  std::printf("soak: %zu generations of %u tokens (vulkan, %s); RSS after %zu warm-up generations %.2f MiB, "
              "at the end %.2f MiB\n",
              generations, kTokensPerGeneration, (*session)->backend_why().c_str(), kWarmup, mib(after_warmup),
              mib(end));
  if (kAddressSanitizer) return;  // RSS holds ASan's quarantine; LeakSanitizer checks at exit
  EXPECT_LE(end, after_warmup + slack)
      << "RSS grew from " << mib(after_warmup) << " MiB to " << mib(end) << " MiB over "
      << generations - kWarmup << " generations";
}

TEST(VulkanSoak, ShortGenerationsKeepMemoryFlat) {
  KP_REQUIRE_VULKAN();
  soak_vulkan(kWarmup + 30, 1u << 20);
}

TEST(VulkanSoakSlow, GenerationsKeepMemoryFlat) {
  KP_REQUIRE_VULKAN();
  soak_vulkan(soak_generations(80, kWarmup + 4), 1u << 20);
}

}  // namespace
}  // namespace kp::soak
