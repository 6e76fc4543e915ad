// Generation loops over the reference model: text generation with a sampler
// (kpath run) and greedy evaluation (kpath eval). They only need forward(),
// so another engine can take the model's place behind the same loop.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "model/reference_forward.h"
#include "model/tokenizer.h"
#include "runtime/sampler.h"

namespace kp::runtime {

struct GenerationStats {
  uint32_t n_prompt = 0;      // tokens prefilled
  double prompt_seconds = 0;  // prefill time
  uint32_t n_generated = 0;   // tokens sampled, the EOS that ended the run included
  double gen_seconds = 0;     // sampling and decode time after the prefill
  bool hit_eos = false;
  bool context_full = false;  // stopped because the KV cache was full
};

// Reads the config, dequantizes every weight and makes a model with an
// n_ctx-token KV cache (0: the model's trained context; more is an error).
Result<model::ReferenceModel> load_reference_model(const format::GgufFile& file, uint32_t n_ctx);

// Called with each generated token and its text (tokenizer.piece_text).
using TokenCallback = std::function<void(int32_t id, const std::string& text)>;

// Prefills `prompt` from the model's current position, then samples up to
// n_predict tokens, one decode step each. Stops at EOS (not passed to
// on_token) or when the context is full.
Result<GenerationStats> generate(model::ReferenceModel& model, const model::Tokenizer& tokenizer,
                                 Sampler& sampler, std::span<const int32_t> prompt,
                                 uint32_t n_predict, const TokenCallback& on_token,
                                 bool stop_at_eos = true);

struct GreedyEval {
  std::vector<float> last_logits;      // [n_vocab], after the prompt
  std::vector<int32_t> greedy_tokens;  // n_gen argmax tokens; EOS does not stop
};

// Resets the model, prefills `prompt` and decodes n_gen greedy tokens, each
// fed back alone. Needs prompt.size() + n_gen - 1 <= the model's context.
Result<GreedyEval> eval_greedy(model::ReferenceModel& model, std::span<const int32_t> prompt,
                               uint32_t n_gen);

}  // namespace kp::runtime
