// Soak: short generations in one process on the CPU backend, with no growth in
// memory. The resident set is measured (/proc/self/statm) after a warm-up that
// runs every prompt several times (so every prefill size has recorded its
// command list and every buffer exists) and again after each further quarter;
// what a generation leaks shows up once per generation after the warm-up.
//
// Two lengths. The short soak (Soak.*) runs in CI: 250 generations after the
// warm-up in the release build, so a leak of 8 KiB a generation passes the
// slack (a leaked buffer, command list or KV cache is far larger), and 50 under
// AddressSanitizer, where LeakSanitizer's check at exit finds one leaked
// allocation as surely after 50 generations as after 1,000. The long
// soak (SoakSlow.*: 1,000 generations, or KP_SOAK_GENERATIONS) carries the
// `slow` label, which the test presets leave out; run it by hand with
//   ctest --test-dir build/release -L slow      (about a minute)
//   ctest --test-dir build/asan -L slow         (about 7 minutes on 2 cores)
//
// Under AddressSanitizer (the asan preset) the RSS comparison is skipped:
// ASan's quarantine keeps freed memory resident by design (RSS climbs to about
// 465 MiB over 1,000 generations and stays there); LeakSanitizer checks at exit
// instead, where a single leaked allocation fails the test.
#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "../support/shared_model.h"
#include "../support/soak.h"

namespace kp::soak {
namespace {

constexpr size_t kWarmup = 50;
constexpr uint32_t kTokensPerGeneration = 8;
// Allowed RSS growth after the warm-up.
constexpr uint64_t kSlackBytes = 2u << 20;

const format::GgufFile& soak_model() { return test::shared_model(std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf"); }

// `generations` seeded generations (the first kWarmup unmeasured) on one CPU
// session; RSS may grow by at most kSlackBytes after the warm-up.
void soak_cpu(size_t generations) {
  auto tok = model::Tokenizer::from_gguf(soak_model());
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& text : soak_prompts()) prompts.push_back(tok->encode(text, true));

  auto session = open_session(soak_model(), "cpu");
  ASSERT_TRUE(session.ok()) << session.error().message;
  runtime::Executor& ex = (*session)->executor();

  uint64_t after_warmup = 0;
  std::vector<uint64_t> checkpoints;  // RSS after each further quarter
  for (size_t g = 0; g < generations; ++g) {
    Sampling sampling;
    sampling.seed = g;
    sampling.temperature = g % 4 == 0 ? 0.0f : 0.8f;
    auto tokens = generate(ex, prompts[g % prompts.size()], kTokensPerGeneration, sampling);
    ASSERT_TRUE(tokens.ok()) << "generation " << g << ": " << tokens.error().message;
    ASSERT_EQ(tokens->size(), kTokensPerGeneration);
    if (g + 1 == kWarmup) after_warmup = resident_bytes();
    if (g + 1 > kWarmup && (g + 1 - kWarmup) % ((generations - kWarmup) / 4) == 0) {
      checkpoints.push_back(resident_bytes());
    }
  }
  ASSERT_FALSE(checkpoints.empty());
  std::string trail;
  for (const uint64_t r : checkpoints) {
    trail += ' ';  // not " " + ...: gcc 12 -O3 reports a false -Wrestrict
    trail += std::to_string(r / 1024);
  }
  std::printf("soak: %zu generations of %u tokens (cpu); RSS after %zu warm-up generations %.2f MiB, then KiB:%s\n",
              generations, kTokensPerGeneration, kWarmup, mib(after_warmup), trail.c_str());
  ::testing::Test::RecordProperty("rss_after_warmup_kib", static_cast<int>(after_warmup / 1024));
  ::testing::Test::RecordProperty("rss_end_kib", static_cast<int>(checkpoints.back() / 1024));
  if (kAddressSanitizer) return;  // RSS holds ASan's quarantine; LeakSanitizer checks at exit
  EXPECT_LE(checkpoints.back(), after_warmup + kSlackBytes)
      << "RSS grew from " << mib(after_warmup) << " MiB to " << mib(checkpoints.back()) << " MiB over "
      << generations - kWarmup << " generations";
}

TEST(Soak, ShortRunOnTheCpuBackendKeepsMemoryFlat) { soak_cpu(kWarmup + (kAddressSanitizer ? 50 : 250)); }

TEST(SoakSlow, ThousandGenerationsOnTheCpuBackendKeepMemoryFlat) {
  soak_cpu(soak_generations(1000, kWarmup + 4));
}

}  // namespace
}  // namespace kp::soak
