// kpath run: generate text from a prompt, streamed to stdout as it is sampled;
// the kernel path, the device, and prompt and generation speed go to stderr.
// Sampling defaults follow llama.cpp.
#include <fmt/core.h>

#include <cstdio>
#include <optional>
#include <random>
#include <string>

#include "commands.h"
#include "engine_options.h"
#include "model/tokenizer.h"
#include "runtime/path_engine.h"
#include "runtime/reference_engine.h"
#include "runtime/sampler.h"
#include "runtime/trace.h"

namespace kp::cli {
namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  int64_t n_predict = 128;
  runtime::SamplingParams sampling;
  std::optional<uint64_t> seed;
  EngineOptions engine;
  std::string trace_file;
  bool profile = false;
  bool truncate_prompt = false;
  bool ignore_eos = false;
};

double per_second(uint32_t n, double seconds) { return seconds > 0 ? n / seconds : 0.0; }

void print_token(int32_t, const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// The prompt's tokens, refused or cut to its last ctx - 1 tokens (keeping BOS)
// when longer than the context, as the user chose.
Result<std::vector<int32_t>> fit_prompt(std::vector<int32_t> prompt, uint32_t n_ctx, bool truncate, bool has_bos) {
  if (prompt.empty()) return make_error("the prompt encodes to no tokens");
  if (prompt.size() <= n_ctx) return prompt;
  if (!truncate) {
    return make_error("the prompt is {} tokens, longer than the context of {} tokens (use --ctx-size or "
                      "--truncate-prompt)",
                      prompt.size(), n_ctx);
  }
  const size_t keep = n_ctx > 1 ? n_ctx - 1 : 1;
  std::vector<int32_t> out;
  if (has_bos && keep > 1) out.push_back(prompt.front());
  out.insert(out.end(), prompt.end() - static_cast<std::ptrdiff_t>(keep - out.size()), prompt.end());
  fmt::print(stderr, "kpath: warning: the prompt of {} tokens was cut to its last {} tokens\n", prompt.size(),
             out.size());
  return out;
}

void print_stats(const runtime::GenerationStats& stats, uint32_t n_ctx, uint64_t seed) {
  if (stats.context_full) fmt::print(stderr, "kpath: stopped: the context of {} tokens is full\n", n_ctx);
  fmt::print(stderr, "seed: {}\n", seed);
  fmt::print(stderr, "prompt:     {:5} tokens in {:8.3f} s ({:.1f} tokens/s)\n", stats.n_prompt,
             stats.prompt_seconds, per_second(stats.n_prompt, stats.prompt_seconds));
  fmt::print(stderr, "generation: {:5} tokens in {:8.3f} s ({:.1f} tokens/s)\n", stats.n_generated,
             stats.gen_seconds, per_second(stats.n_generated, stats.gen_seconds));
}

Status run_reference(const RunOptions& o, const format::GgufFile& file, const model::Tokenizer& tokenizer) {
  if (!o.trace_file.empty() || o.profile) {
    return make_error("--trace and --profile need a kernel path; the reference backend dispatches nothing");
  }
  KP_TRY(model::ReferenceModel ref, runtime::load_reference_model(file, static_cast<uint32_t>(o.engine.ctx_size)));
  fmt::print(stderr, "backend:     reference (the f32 oracle on the CPU, no kernel path)\n");
  KP_TRY(std::vector<int32_t> prompt, fit_prompt(tokenizer.encode(o.prompt, tokenizer.add_bos_token()), ref.n_ctx(),
                                                 o.truncate_prompt, tokenizer.add_bos_token()));
  runtime::Sampler sampler(o.sampling);
  fmt::print(stdout, "{}", o.prompt);
  std::fflush(stdout);
  auto generated = runtime::generate(ref, tokenizer, sampler, prompt, static_cast<uint32_t>(o.n_predict), print_token,
                                     !o.ignore_eos);
  fmt::print(stdout, "\n");  // ends the streamed text before an error, too
  std::fflush(stdout);
  KP_TRY(runtime::GenerationStats stats, std::move(generated));
  print_stats(stats, ref.n_ctx(), o.sampling.seed);
  return {};
}

Status run_path(const RunOptions& o, const format::GgufFile& file, const model::Tokenizer& tokenizer) {
  KP_TRY(std::unique_ptr<runtime::Session> session, open_session(file, o.engine, /*quiet=*/true));
  runtime::Executor& ex = session->executor();
  KP_TRY(std::vector<int32_t> prompt, fit_prompt(tokenizer.encode(o.prompt, tokenizer.add_bos_token()), ex.ctx(),
                                                 o.truncate_prompt, tokenizer.add_bos_token()));
  print_session(*session);
  const bool tracing = !o.trace_file.empty() || o.profile;
  ex.set_tracing(tracing);
  fmt::print(stdout, "{}", o.prompt);
  std::fflush(stdout);
  auto generated = runtime::generate_on_path(ex, tokenizer, o.sampling, prompt, static_cast<uint32_t>(o.n_predict),
                                             print_token, !o.ignore_eos);
  fmt::print(stdout, "\n");  // ends the streamed text before an error, too
  std::fflush(stdout);
  KP_TRY(runtime::GenerationStats stats, std::move(generated));
  print_stats(stats, ex.ctx(), o.sampling.seed);
  fmt::print(stderr, "dispatches: {} per decoded token\n", ex.decode_dispatches());
  if (tracing) {
    const std::string& device = session->backend().info().name;
    if (!o.trace_file.empty()) {
      KP_TRY_STATUS(runtime::write_trace(o.trace_file, ex.trace(), device));
      fmt::print(stderr, "trace: {} dispatches written to {}\n", ex.trace().size(), o.trace_file);
    }
    if (o.profile) fmt::print(stderr, "\n{}", runtime::profile_table(ex.trace()));
  }
  return {};
}

Status run(RunOptions o) {
  KP_TRY_STATUS(check_engine_options(o.engine));
  if (o.n_predict < 0 || o.n_predict > 1'000'000) {
    return make_error("-n must be between 0 and 1000000, got {}", o.n_predict);
  }
  if (o.prompt.size() > (64u << 20)) return make_error("the prompt is over 64 MiB");
  o.sampling.seed = o.seed ? *o.seed : std::random_device{}();
  KP_TRY_STATUS(runtime::validate(o.sampling));

  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Tokenizer tokenizer, model::Tokenizer::from_gguf(file));
  if (o.engine.is_reference()) return run_reference(o, file, tokenizer);
  return run_path(o, file, tokenizer);
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
  sub->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens of history penalized (0: off, -1: all)")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "Random seed (default: random)")->check(seed_range());
  sub->add_flag("--truncate-prompt", o->truncate_prompt,
                "Keep the prompt's last tokens when it is longer than the context (default: refuse it)");
  sub->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past the end-of-sequence token");
  add_engine_options(*sub, o->engine, /*allow_reference=*/true);
  sub->add_option("--trace", o->trace_file, "Write a Perfetto/Chrome trace of every dispatch to FILE");
  sub->add_flag("--profile", o->profile, "Print device time per op after the run");
  sub->callback([o, exit_code] {
    const Status st = run(*o);
    *exit_code = st ? 0 : report_error(st.error());
  });
}

}  // namespace kp::cli
