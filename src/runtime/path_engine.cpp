#include "runtime/path_engine.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace kp::runtime {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

PathSampler::PathSampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

SamplingInput PathSampler::next(std::span<const int32_t> history) {
  SamplingInput s;
  s.temperature = params_.temperature;
  s.top_k = params_.top_k > 0 ? static_cast<uint32_t>(params_.top_k) : 0;
  s.top_p = params_.top_p;
  s.min_p = params_.min_p;
  // Drawn for every token, greedy or not, so a run's stream of draws depends only on the seed.
  s.rand_u = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng_);
  if (params_.repeat_penalty != 1.0f && params_.repeat_last_n != 0) {
    s.repeat_penalty = params_.repeat_penalty;
    const size_t n = params_.repeat_last_n < 0
                         ? history.size()
                         : std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
    s.history = history.subspan(history.size() - n);
  }
  return s;
}

Result<GenerationStats> generate_on_path(Executor& executor, const model::Tokenizer& tokenizer,
                                         const SamplingParams& params, std::span<const int32_t> prompt,
                                         uint32_t n_predict, const TokenCallback& on_token,
                                         bool stop_at_eos) {
  GenerationStats stats;
  if (prompt.empty()) return make_error("generate: the prompt has no tokens");
  if (prompt.size() > executor.ctx()) {
    return make_error("the prompt is {} tokens, longer than the context of {} tokens", prompt.size(),
                      executor.ctx());
  }
  PathSampler sampler(params);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  executor.reset();

  const auto t_prompt = std::chrono::steady_clock::now();
  KP_TRY_STATUS(executor.forward(prompt));
  stats.n_prompt = static_cast<uint32_t>(prompt.size());
  if (n_predict == 0) {
    stats.prompt_seconds = seconds_since(t_prompt);
    return stats;
  }
  KP_TRY(int32_t id, executor.sample(sampler.next(history)));
  stats.prompt_seconds = seconds_since(t_prompt);

  const auto t_gen = std::chrono::steady_clock::now();
  for (uint32_t i = 0;; ++i) {
    history.push_back(id);
    ++stats.n_generated;
    if (stop_at_eos && id == tokenizer.eos_id()) {
      stats.hit_eos = true;
      break;
    }
    on_token(id, tokenizer.piece_text(id));
    if (i + 1 == n_predict) break;
    if (executor.pos() >= executor.ctx()) {
      stats.context_full = true;
      break;
    }
    KP_TRY(id, executor.decode_and_sample(id, sampler.next(history)));
  }
  stats.gen_seconds = seconds_since(t_gen);
  return stats;
}

Result<GreedyEval> eval_greedy_on_path(Executor& executor, std::span<const int32_t> prompt, uint32_t n_gen) {
  if (prompt.empty()) return make_error("eval: the prompt has no tokens");
  executor.reset();
  GreedyEval out;
  KP_TRY_STATUS(executor.forward(prompt));
  KP_TRY(out.last_logits, executor.logits());
  if (n_gen == 0) return out;
  SamplingInput greedy;  // temperature 0: argmax, no penalty
  KP_TRY(int32_t id, executor.sample(greedy));
  out.greedy_tokens.push_back(id);
  for (uint32_t i = 1; i < n_gen; ++i) {
    KP_TRY(id, executor.decode_and_sample(id, greedy));
    out.greedy_tokens.push_back(id);
  }
  return out;
}

}  // namespace kp::runtime
