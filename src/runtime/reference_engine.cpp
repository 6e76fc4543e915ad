// Generation loops over the reference model (see reference_engine.h).
#include "runtime/reference_engine.h"

#include <chrono>
#include <memory>
#include <utility>

namespace kp::runtime {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<model::ReferenceModel> load_reference_model(const format::GgufFile& file, uint32_t n_ctx) {
  KP_TRY(model::Gemma2Config cfg, model::load_gemma2_config(file));
  if (n_ctx == 0) n_ctx = cfg.n_ctx;
  if (n_ctx > cfg.n_ctx) {
    return make_error("context size {} exceeds the model's trained context of {} tokens", n_ctx,
                      cfg.n_ctx);
  }
  KP_TRY(model::DenseWeights weights, model::load_dense_weights(file, cfg));
  return model::ReferenceModel(cfg, std::make_shared<const model::DenseWeights>(std::move(weights)),
                               n_ctx);
}

Result<GenerationStats> generate(model::ReferenceModel& model, const model::Tokenizer& tokenizer,
                                 Sampler& sampler, std::span<const int32_t> prompt,
                                 uint32_t n_predict, const TokenCallback& on_token,
                                 bool stop_at_eos) {
  GenerationStats stats;
  if (prompt.empty()) return make_error("generate: the prompt has no tokens");
  std::vector<int32_t> history(prompt.begin(), prompt.end());

  const auto t_prompt = std::chrono::steady_clock::now();
  KP_TRY(std::vector<float> logits, model.forward(history, /*all_logits=*/false));
  stats.n_prompt = static_cast<uint32_t>(prompt.size());
  stats.prompt_seconds = seconds_since(t_prompt);

  const auto t_gen = std::chrono::steady_clock::now();
  for (uint32_t i = 0; i < n_predict; ++i) {
    const int32_t id = sampler.sample(logits, history);
    history.push_back(id);
    ++stats.n_generated;
    if (stop_at_eos && id == tokenizer.eos_id()) {
      stats.hit_eos = true;
      break;
    }
    on_token(id, tokenizer.piece_text(id));
    if (i + 1 == n_predict) break;
    if (model.pos() >= model.n_ctx()) {
      stats.context_full = true;
      break;
    }
    KP_TRY(logits, model.forward({id}, /*all_logits=*/false));
  }
  stats.gen_seconds = seconds_since(t_gen);
  return stats;
}

Result<GreedyEval> eval_greedy(model::ReferenceModel& model, std::span<const int32_t> prompt,
                               uint32_t n_gen) {
  if (prompt.empty()) return make_error("eval: the prompt has no tokens");
  model.reset();
  GreedyEval out;
  KP_TRY(out.last_logits, model.forward(std::vector<int32_t>(prompt.begin(), prompt.end()), false));
  std::vector<float> logits = out.last_logits;
  for (uint32_t i = 0; i < n_gen; ++i) {
    const int32_t id = argmax(logits);
    out.greedy_tokens.push_back(id);
    if (i + 1 < n_gen) {
      KP_TRY(logits, model.forward({id}, false));
    }
  }
  return out;
}

}  // namespace kp::runtime
