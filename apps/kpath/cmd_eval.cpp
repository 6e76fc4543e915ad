// kpath eval: run prompts given as token ids and print, per prompt, the logits
// after the last prompt token and the greedy continuation (EOS does not stop
// it), as JSON on stdout: {"cases":[{"tokens","last_logits","greedy_tokens"}]}.
// The output has the shape of the goldens in tests/data, so it can be compared
// with them directly.
#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "engine_options.h"
#include "runtime/path_engine.h"
#include "runtime/reference_engine.h"

namespace kp::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string prompt_tokens;
  int64_t n_gen = 0;
  EngineOptions engine;
};

struct Prompt {
  size_t line = 0;  // 1-based line in the file, for errors
  std::vector<int32_t> tokens;
};

// One prompt per non-blank line, token ids separated by spaces or tabs.
Result<std::vector<Prompt>> parse_prompt_tokens(const std::string& path, const std::string& text,
                                                uint32_t n_vocab) {
  std::vector<Prompt> prompts;
  size_t line_no = 0;
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Prompt p{line_no, {}};
    for (size_t i = 0; i < line.size();) {
      if (line[i] == ' ' || line[i] == '\t') {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      const std::string_view word = line.substr(i, j - i);
      i = j;
      int64_t id = 0;
      const auto [ptr, ec] = std::from_chars(word.data(), word.data() + word.size(), id);
      if (ec != std::errc() || ptr != word.data() + word.size()) {
        return make_error("{}:{}: '{}' is not a token id", path, line_no, word);
      }
      if (id < 0 || id >= static_cast<int64_t>(n_vocab)) {
        return make_error("{}:{}: token id {} is out of range (the vocabulary has {} tokens)", path,
                          line_no, id, n_vocab);
      }
      p.tokens.push_back(static_cast<int32_t>(id));
    }
    if (!p.tokens.empty()) prompts.push_back(std::move(p));
  }
  if (prompts.empty()) return make_error("{}: no prompts (expected one line of token ids per prompt)", path);
  return prompts;
}

Status eval(EvalOptions o) {
  KP_TRY_STATUS(check_engine_options(o.engine));
  if (o.n_gen < 0 || o.n_gen > 1'000'000) return make_error("--n-gen must be between 0 and 1000000, got {}", o.n_gen);
  KP_TRY(std::string text, read_text_file(o.prompt_tokens));
  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Gemma2Config cfg, model::load_gemma2_config(file));
  KP_TRY(std::vector<Prompt> prompts, parse_prompt_tokens(o.prompt_tokens, text, cfg.n_vocab));

  // The last greedy token is never fed back: prompt + n_gen - 1 positions.
  uint64_t longest = 0;
  for (const Prompt& p : prompts) {
    longest = std::max<uint64_t>(longest, p.tokens.size() + static_cast<uint64_t>(o.n_gen) - (o.n_gen > 0 ? 1 : 0));
  }
  if (o.engine.ctx_size == 0) o.engine.ctx_size = static_cast<int64_t>(std::min<uint64_t>(cfg.n_ctx, std::max<uint64_t>(longest, 4096)));
  const uint64_t n_ctx = static_cast<uint64_t>(o.engine.ctx_size);
  for (const Prompt& p : prompts) {
    const uint64_t needed = p.tokens.size() + static_cast<uint64_t>(o.n_gen) - (o.n_gen > 0 ? 1 : 0);
    if (needed > n_ctx) {
      return make_error("{}:{}: a prompt of {} tokens with --n-gen {} needs {} positions, more than "
                        "the context of {} tokens",
                        o.prompt_tokens, p.line, p.tokens.size(), o.n_gen, needed, n_ctx);
    }
  }

  nlohmann::ordered_json cases = nlohmann::ordered_json::array();
  auto add_case = [&](const Prompt& p, runtime::GreedyEval r) {
    cases.push_back({{"tokens", p.tokens}, {"last_logits", r.last_logits}, {"greedy_tokens", r.greedy_tokens}});
  };
  if (o.engine.is_reference()) {
    KP_TRY(model::ReferenceModel ref, runtime::load_reference_model(file, static_cast<uint32_t>(n_ctx)));
    for (const Prompt& p : prompts) {
      KP_TRY(runtime::GreedyEval r, runtime::eval_greedy(ref, p.tokens, static_cast<uint32_t>(o.n_gen)));
      add_case(p, std::move(r));
    }
  } else {
    KP_TRY(std::unique_ptr<runtime::Session> session, open_session(file, o.engine));
    for (const Prompt& p : prompts) {
      KP_TRY(runtime::GreedyEval r,
             runtime::eval_greedy_on_path(session->executor(), p.tokens, static_cast<uint32_t>(o.n_gen)));
      add_case(p, std::move(r));
    }
  }
  const std::string out = nlohmann::ordered_json{{"cases", std::move(cases)}}.dump() + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return {};
}

}  // namespace

void add_eval_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<EvalOptions>();
  auto* sub = app.add_subcommand("eval", "Print last-position logits and greedy tokens for token-id prompts (JSON)");
  sub->add_option("-m,--model", o->model, "GGUF model (default: the embedded kjv-tiny model)");
  sub->add_option("--prompt-tokens", o->prompt_tokens, "File: one prompt per line, space-separated token ids")
      ->required();
  sub->add_option("--n-gen", o->n_gen, "Greedy tokens to generate per prompt (EOS does not stop)")
      ->capture_default_str();
  add_engine_options(*sub, o->engine, /*allow_reference=*/true);
  sub->callback([o, exit_code] {
    const Status st = eval(*o);
    *exit_code = st ? 0 : report_error(st.error());
  });
}

}  // namespace kp::cli
