// Shared by the soak and reproducibility tests (tests/reliability, and the
// Vulkan soak in tests/vulkan): short seeded generations driven directly
// through a session's executor, and the process's resident memory.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "model/tokenizer.h"
#include "runtime/executor.h"
#include "runtime/session.h"

namespace kp::soak {

// True when built with AddressSanitizer (gcc and clang spell it differently):
// its allocator keeps freed memory in a quarantine, so RSS is not comparable.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// Resident set size in bytes: /proc/self/statm's second field, in pages.
inline uint64_t resident_bytes() {
  std::ifstream in("/proc/self/statm");
  uint64_t pages_total = 0, pages_resident = 0;
  in >> pages_total >> pages_resident;
  return pages_resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// Generations a soak runs: `fallback`, or KP_SOAK_GENERATIONS when set to a
// number above `min` (a longer run by hand: KP_SOAK_GENERATIONS=1000).
inline size_t soak_generations(size_t fallback, size_t min) {
  const char* v = std::getenv("KP_SOAK_GENERATIONS");
  if (v == nullptr) return fallback;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 10);
  return (end != v && *end == '\0' && n > min && n <= 1000000) ? static_cast<size_t>(n) : fallback;
}

inline double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

// Verses of different lengths: prefill runs with several batch sizes.
inline const std::vector<std::string>& soak_prompts() {
  static const std::vector<std::string> prompts = {
      "In the beginning God created the heaven and the earth.",
      "Jesus wept.",
      "And God said, Let there be light: and there was light.",
      "The LORD is my shepherd; I shall not want.",
      "For God so loved the world,",
      "Blessed are the",
  };
  return prompts;
}

struct Sampling {
  float temperature = 0.8f;  // 0: greedy
  uint32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  uint64_t seed = 1;
};

// Resets the executor, prefills `prompt` and samples `n` tokens on the
// device (EOS does not stop): the path's own sampling steps with a uniform
// draw per token from a generator seeded with `sampling.seed`.
inline Result<std::vector<int32_t>> generate(runtime::Executor& executor, std::span<const int32_t> prompt,
                                             uint32_t n, const Sampling& sampling) {
  std::mt19937_64 rng(sampling.seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  runtime::SamplingInput s;
  s.temperature = sampling.temperature;
  s.top_k = sampling.top_k;
  s.top_p = sampling.top_p;
  s.min_p = sampling.min_p;
  std::vector<int32_t> out;
  executor.reset();
  KP_TRY_STATUS(executor.forward(prompt));
  s.rand_u = uniform(rng);
  KP_TRY(int32_t id, executor.sample(s));
  out.push_back(id);
  while (out.size() < n) {
    s.rand_u = uniform(rng);
    KP_TRY(id, executor.decode_and_sample(id, s));
    out.push_back(id);
  }
  return out;
}

// A session on `backend` with a small context (prompt + generation fit).
inline Result<std::unique_ptr<runtime::Session>> open_session(const format::GgufFile& model,
                                                              const std::string& backend) {
  runtime::SessionOptions o;
  o.backend.name = backend;
  o.ctx = 64;
  o.max_batch = 32;
  return runtime::Session::open(model, o);
}

}  // namespace kp::soak
