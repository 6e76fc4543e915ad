// Soak on Vulkan (lavapipe on a CPU-only machine): short generations in one
// process with no growth in memory, as tests/reliability/soak_test.cpp does on
// the CPU backend. 80 generations instead of 1,000: on lavapipe a generation
// takes over a second (300 took 6.5 minutes on a 2-core machine), and a leak
// per generation (descriptor sets, staging buffers, command buffers: tens of
// KiB each) shows up 60 times over after the warm-up, well past the 1 MiB
// slack (RSS was flat to the KiB over 250 generations when this was written).
// KP_SOAK_GENERATIONS=1000 runs the full count (about half an hour there).
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
const size_t kGenerations = soak_generations(80, kWarmup + 4);
constexpr uint32_t kTokensPerGeneration = 8;
constexpr uint64_t kSlackBytes = 1u << 20;

TEST(VulkanSoak, ShortGenerationsKeepMemoryFlat) {
  KP_REQUIRE_VULKAN();
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
  for (size_t g = 0; g < kGenerations; ++g) {
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
              kGenerations, kTokensPerGeneration, (*session)->backend_why().c_str(), kWarmup, mib(after_warmup),
              mib(end));
  if (kAddressSanitizer) return;  // RSS holds ASan's quarantine; LeakSanitizer checks at exit
  EXPECT_LE(end, after_warmup + kSlackBytes)
      << "RSS grew from " << mib(after_warmup) << " MiB to " << mib(end) << " MiB over "
      << kGenerations - kWarmup << " generations";
}

}  // namespace
}  // namespace kp::soak
