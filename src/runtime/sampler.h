// Token sampling from logits, with llama.cpp's semantics and order:
//   repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw.
// The filters see the untempered distribution (temperature comes last, as in
// llama.cpp's default chain). A seeded std::mt19937_64 makes a run reproducible:
// the same seed, logits and history always give the same token.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/result.h"

namespace kp::runtime {

struct SamplingParams {
  float temperature = 0.8f;     // <= 0: greedy (argmax after the penalty)
  int32_t top_k = 40;           // <= 0: off
  float top_p = 0.95f;          // in [0, 1]; 1: off
  float min_p = 0.05f;          // in [0, 1]; 0: off
  float repeat_penalty = 1.0f;  // > 0; 1: off
  int32_t repeat_last_n = 64;   // tokens of history penalized; 0: off, -1: all
  uint64_t seed = 0;
};

// An error naming the parameter if any is outside its range.
Status validate(const SamplingParams& params);

// One candidate token: id and its (possibly penalized / scaled) logit.
struct TokenLogit {
  int32_t id;
  float logit;
};

class Sampler {
 public:
  // params must be valid (validate()); checked.
  explicit Sampler(const SamplingParams& params);

  // Picks the next token. logits: [n_vocab]. history: the tokens so far
  // (prompt and generated), of which the last repeat_last_n are penalized.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // The candidates that survive the penalty and the filters, sorted by logit
  // (descending), with the temperature applied; what sample() draws from.
  // Exposed for tests and for showing the distribution.
  std::vector<TokenLogit> candidates(std::span<const float> logits,
                                     std::span<const int32_t> history) const;

  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

// Index of the largest logit; the lowest index wins a tie. logits non-empty.
int32_t argmax(std::span<const float> logits);

// llama.cpp's repetition penalty, in place: each distinct token among the last
// `last_n` of `history` (-1: all, 0: none) has a positive logit divided by
// `penalty` and a non-positive one multiplied by it.
void apply_repeat_penalty(std::span<float> logits, std::span<const int32_t> history, int32_t last_n,
                          float penalty);

}  // namespace kp::runtime
