// Soak: 1,000 short generations in one process on the CPU backend, with no
// growth in memory. The resident set is measured (/proc/self/statm) after a
// warm-up that runs every prompt once (so every prefill size has recorded its
// command list and every buffer exists) and again at the end; what a
// generation leaks shows up 950 times over.
//
// Under AddressSanitizer (the asan preset, which CI runs; LeakSanitizer checks
// at exit) the same 1,000 generations run (about 6.5 minutes on a 2-core
// machine) and the RSS comparison is skipped: ASan's quarantine keeps freed
// memory resident by design (RSS climbs to about 465 MiB and stays there).
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "../support/shared_model.h"
#include "../support/soak.h"

namespace kp::soak {
namespace {

constexpr size_t kWarmup = 50;
const size_t kGenerations = soak_generations(1000, kWarmup + 4);
constexpr uint32_t kTokensPerGeneration = 8;
// Allowed RSS growth after the warm-up: 950 generations leaking 2 KiB each
// would pass it.
constexpr uint64_t kSlackBytes = 2u << 20;

const format::GgufFile& model() { return test::shared_model(std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf"); }

TEST(Soak, ThousandGenerationsOnTheCpuBackendKeepMemoryFlat) {
  auto tok = model::Tokenizer::from_gguf(model());
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& text : soak_prompts()) prompts.push_back(tok->encode(text, true));

  auto session = open_session(model(), "cpu");
  ASSERT_TRUE(session.ok()) << session.error().message;
  runtime::Executor& ex = (*session)->executor();

  uint64_t after_warmup = 0;
  std::vector<uint64_t> checkpoints;  // RSS after each further quarter
  for (size_t g = 0; g < kGenerations; ++g) {
    Sampling sampling;
    sampling.seed = g;
    sampling.temperature = g % 4 == 0 ? 0.0f : 0.8f;
    auto tokens = generate(ex, prompts[g % prompts.size()], kTokensPerGeneration, sampling);
    ASSERT_TRUE(tokens.ok()) << "generation " << g << ": " << tokens.error().message;
    ASSERT_EQ(tokens->size(), kTokensPerGeneration);
    if (g + 1 == kWarmup) after_warmup = resident_bytes();
    if (g + 1 > kWarmup && (g + 1 - kWarmup) % ((kGenerations - kWarmup) / 4) == 0) {
      checkpoints.push_back(resident_bytes());
    }
  }
  std::string trail;
  for (const uint64_t r : checkpoints) {
    trail += ' ';  // not " " + ...: gcc 12 -O3 reports a false -Wrestrict
    trail += std::to_string(r / 1024);
  }
  std::printf("soak: %zu generations of %u tokens (cpu); RSS after %zu warm-up generations %.2f MiB, then KiB:%s\n",
              kGenerations, kTokensPerGeneration, kWarmup, mib(after_warmup), trail.c_str());
  RecordProperty("rss_after_warmup_kib", static_cast<int>(after_warmup / 1024));
  RecordProperty("rss_end_kib", static_cast<int>(checkpoints.back() / 1024));
  if (kAddressSanitizer) return;  // RSS holds ASan's quarantine; LeakSanitizer checks at exit
  EXPECT_LE(checkpoints.back(), after_warmup + kSlackBytes)
      << "RSS grew from " << mib(after_warmup) << " MiB to " << mib(checkpoints.back()) << " MiB over "
      << kGenerations - kWarmup << " generations";
}

}  // namespace
}  // namespace kp::soak
