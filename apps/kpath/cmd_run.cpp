// kpath run: generate text from a prompt, streamed to stdout as it is sampled;
// prompt and generation speed go to stderr. Sampling defaults follow llama.cpp.
#include <fmt/core.h>

#include <cstdio>
#include <optional>
#include <random>
#include <string>

#include "commands.h"
#include "model/tokenizer.h"
#include "runtime/reference_engine.h"
#include "runtime/sampler.h"

namespace kp::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  int64_t n_predict = 128;
  runtime::SamplingParams sampling;
  std::optional<uint64_t> seed;
  std::string backend = "reference";
  int64_t ctx_size = 0;
};

double per_second(uint32_t n, double seconds) { return seconds > 0 ? n / seconds : 0.0; }

Status check_backend(const std::string& backend) {
  if (backend != "reference") {
    return make_error("unknown backend '{}' (available: reference)", backend);
  }
  return {};
}

Status run(RunOptions o) {
  KP_TRY_STATUS(check_backend(o.backend));
  if (o.n_predict < 0) return make_error("-n must be >= 0, got {}", o.n_predict);
  if (o.ctx_size < 0 || o.ctx_size > UINT32_MAX) {
    return make_error("--ctx-size must be >= 0 (0: the model's context), got {}", o.ctx_size);
  }
  o.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  KP_TRY_STATUS(runtime::validate(o.sampling));

  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Tokenizer tokenizer, model::Tokenizer::from_gguf(file));
  KP_TRY(model::ReferenceModel ref,
         runtime::load_reference_model(file, static_cast<uint32_t>(o.ctx_size)));
  const std::vector<int32_t> prompt = tokenizer.encode(o.prompt, tokenizer.add_bos_token());
  if (prompt.empty()) return make_error("the prompt encodes to no tokens");
  if (prompt.size() > ref.n_ctx()) {
    return make_error("the prompt is {} tokens, longer than the context of {} tokens", prompt.size(),
                      ref.n_ctx());
  }

  runtime::Sampler sampler(o.sampling);
  fmt::print(stdout, "{}", o.prompt);
  std::fflush(stdout);
  KP_TRY(runtime::GenerationStats stats,
         runtime::generate(ref, tokenizer, sampler, prompt, static_cast<uint32_t>(o.n_predict),
                           [](int32_t, const std::string& text) {
                             std::fwrite(text.data(), 1, text.size(), stdout);
                             std::fflush(stdout);
                           }));
  fmt::print(stdout, "\n");
  std::fflush(stdout);

  if (stats.context_full) {
    fmt::print(stderr, "kpath: stopped: the context of {} tokens is full\n", ref.n_ctx());
  }
  fmt::print(stderr, "seed: {}\n", o.sampling.seed);
  fmt::print(stderr, "prompt:     {:5} tokens in {:8.3f} s ({:.1f} tokens/s)\n", stats.n_prompt,
             stats.prompt_seconds, per_second(stats.n_prompt, stats.prompt_seconds));
  fmt::print(stderr, "generation: {:5} tokens in {:8.3f} s ({:.1f} tokens/s)\n", stats.n_generated,
             stats.gen_seconds, per_second(stats.n_generated, stats.gen_seconds));
  return {};
}

}  // namespace

void add_run_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<RunOptions>();
  auto* sub = app.add_subcommand("run", "Generate text from a prompt");
  sub->add_option("-m,--model", o->model, "GGUF model (default: the embedded kjv-tiny model)");
  sub->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  sub->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  sub->add_option("--temp", o->sampling.temperature, "Temperature (<= 0: greedy)")->capture_default_str();
  sub->add_option("--top-k", o->sampling.top_k, "Top-k (<= 0: off)")->capture_default_str();
  sub->add_option("--top-p", o->sampling.top_p, "Top-p in [0, 1] (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->sampling.min_p, "Min-p in [0, 1] (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", o->sampling.repeat_last_n,
                  "Tokens of history penalized (0: off, -1: all)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed (default: random)");
  sub->add_option("--backend", o->backend, "Backend: reference")->capture_default_str();
  sub->add_option("--ctx-size", o->ctx_size, "Context size in tokens (0: the model's)")
      ->capture_default_str();
  sub->callback([o, exit_code] {
    const Status st = run(*o);
    *exit_code = st ? 0 : report_error(st.error());
  });
}

}  // namespace kp::cli
