// Generation loops over a kernel path: the same contract as the reference
// engine's generate() / eval_greedy(), but every forward and sampling step is a
// dispatch of the session's executor. Sampling runs on the device (the path's
// sampling steps); per token only the chosen id comes back.
#pragma once

#include <cstdint>
#include <span>

#include "core/result.h"
#include "model/tokenizer.h"
#include "runtime/executor.h"
#include "runtime/reference_engine.h"
#include "runtime/sampler.h"

namespace kp::runtime {

// Draws rand_u for each token from a seeded generator and keeps the history
// window the repetition penalty sees.
class PathSampler {
 public:
  explicit PathSampler(const SamplingParams& params);
  // The input for the next sampling step; `history` is every token so far.
  SamplingInput next(std::span<const int32_t> history);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

// Resets the executor, prefills `prompt`, then samples up to n_predict tokens
// (stopping at EOS, not passed to on_token, or when the context is full).
Result<GenerationStats> generate_on_path(Executor& executor, const model::Tokenizer& tokenizer,
                                         const SamplingParams& params, std::span<const int32_t> prompt,
                                         uint32_t n_predict, const TokenCallback& on_token,
                                         bool stop_at_eos = true);

// Resets the executor, prefills `prompt` and returns its last logits and n_gen
// greedy tokens (argmax on the device; EOS does not stop).
Result<GreedyEval> eval_greedy_on_path(Executor& executor, std::span<const int32_t> prompt, uint32_t n_gen);

}  // namespace kp::runtime
