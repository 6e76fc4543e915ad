// kpath verify: a kernel path against a reference, step by step (the path on
// --backend and the same steps on the CPU backend, each step on identical
// inputs), or over a text (--text: perplexity, KL divergence and top-1
// agreement against the f32 reference forward or a reference path).
#include <fmt/core.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "measure_flags.h"
#include "model/tokenizer.h"
#include "runtime/verify.h"
#include "text_format.h"
#include "verify_text.h"

namespace kp::cli {
namespace {

constexpr const char* kDefaultPrompt = "In the beginning God created the heaven and the earth.";

struct VerifyCliOptions {
  std::string model;
  EngineOptions engine;
  std::string reference_path;
  std::string prompt = kDefaultPrompt;
  int64_t n_decode = 1;
  std::optional<double> tolerance;
  bool free_running = false;
  bool json = false;
  std::string text_file;
  int64_t chunks = 0;
};

std::string sci(double v) { return std::isfinite(v) ? fmt::format("{:.2e}", v) : std::string("inf"); }

nlohmann::ordered_json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

std::string layer_text(int32_t layer) { return layer >= 0 ? std::to_string(layer) : "-"; }

std::string table(const runtime::VerifyReport& r) {
  std::vector<std::vector<std::string>> rows{
      {"#", "phase", "section", "layer", "op", "kernel", "entry", "slot", "rel err", "max abs", "tol", ""}};
  for (const auto& s : r.steps) {
    std::string mark;
    if (r.first_over && *r.first_over == s.index) {
      mark = "<- first drift";
    } else if (s.over) {
      mark = "over";
    }
    rows.push_back({std::to_string(s.index), s.phase, s.section, layer_text(s.layer), s.op, s.kernel, s.entry, s.slot,
                    sci(s.rel_error), sci(s.max_abs), s.dtype == kpath::SlotDType::I32 ? "exact" : sci(s.tolerance),
                    mark});
  }
  return format_table(rows);
}

nlohmann::ordered_json report_json(const runtime::VerifyReport& r, runtime::Session& tested,
                                   const runtime::Session& reference, const VerifyCliOptions& o,
                                   const std::vector<int32_t>& prompt) {
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  for (const auto& s : r.steps) {
    steps.push_back({{"index", s.index},
                     {"phase", s.phase},
                     {"section", s.section},
                     {"layer", s.layer},
                     {"op", s.op},
                     {"kernel", s.kernel},
                     {"entry", s.entry},
                     {"location", s.location},
                     {"slot", s.slot},
                     {"dtype", kpath::dtype_name(s.dtype)},
                     {"rel_error", number_or_null(s.rel_error)},
                     {"max_abs", number_or_null(s.max_abs)},
                     {"tolerance", s.tolerance},
                     {"over", s.over}});
  }
  const auto& info = tested.backend().info();
  return {{"model", o.model.empty() ? kEmbeddedModelName : o.model},
          {"path", tested.path().id},
          {"path_source", tested.path().source},
          {"backend", info.backend},
          {"device", info.name},
          {"reference", {{"backend", "cpu"}, {"path", reference.path().id}, {"path_source", reference.path().source}}},
          {"inputs", o.free_running ? "free-running" : "copied from the reference before each step"},
          {"prompt_tokens", prompt},
          {"decoded_tokens", r.decoded},
          {"first_drift", r.first_over ? nlohmann::ordered_json(*r.first_over) : nlohmann::ordered_json(nullptr)},
          {"ok", !r.first_over.has_value()},
          {"steps", std::move(steps)}};
}

// Step mode. Returns the exit code (1 when a step drifts).
Result<int> run_steps(const VerifyCliOptions& o) {
  if (o.engine.kernel_path.find(',') != std::string::npos) {
    return make_error("--kernel-path: step-by-step verify takes one path (a list is for --text)");
  }
  if (o.n_decode < 0 || o.n_decode > 4096) return make_error("-n must be between 0 and 4096, got {}", o.n_decode);
  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Tokenizer tokenizer, model::Tokenizer::from_gguf(file));
  const std::vector<int32_t> prompt = tokenizer.encode(o.prompt, tokenizer.add_bos_token());
  if (prompt.empty()) return make_error("-p: the prompt encodes to no tokens");
  const auto ctx = static_cast<uint32_t>(prompt.size() + static_cast<size_t>(o.n_decode));
  const auto batch = static_cast<int64_t>(prompt.size());
  KP_TRY(auto tested, open_session(file, engine_for(o.engine, o.engine.backend, o.engine.kernel_path, ctx, batch), true));
  const std::string ref_path = o.reference_path.empty() ? path_argument(*tested) : o.reference_path;
  auto reference = open_session(file, reference_engine(o.engine, ref_path, ctx, batch), true);
  if (!reference.ok()) {
    return make_error("the reference (path '{}' on the CPU backend): {}", ref_path, reference.error().message);
  }
  runtime::VerifyOptions vo;
  vo.prompt = prompt;
  vo.n_decode = static_cast<uint32_t>(o.n_decode);
  vo.inject_inputs = !o.free_running;
  vo.tolerance = o.tolerance;
  KP_TRY(runtime::VerifyReport report, runtime::verify_steps(tested->executor(), (*reference)->executor(), vo));

  if (o.json) {
    const std::string out = report_json(report, *tested, **reference, o, prompt).dump(1) + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    const auto& info = tested->backend().info();
    fmt::print("path {} on {} ({}), against path {} on the CPU backend\n", tested->path().id, info.backend, info.name,
               (*reference)->path().id);
    fmt::print("{} prompt tokens, {} decode step(s); {}\n\n", prompt.size(), o.n_decode,
               o.free_running ? "free-running: each side runs on its own outputs"
                              : "each step runs on the reference's inputs");
    fmt::print("{}", table(report));
  }
  std::fflush(stdout);
  if (report.first_over) {
    const runtime::StepCheck& s = report.steps[*report.first_over];
    fmt::print(stderr, "kpath: step {} drifts: {} '{}' ({}) kernel {}.{}, slot {}: rel error {} > tolerance {}\n",
               s.index, s.phase, s.op, s.location, s.kernel, s.entry, s.slot, sci(s.rel_error), sci(s.tolerance));
    return 1;
  }
  if (!o.json) fmt::print("\nall {} steps within tolerance\n", report.steps.size());
  return 0;
}

Result<int> run_verify(const VerifyCliOptions& o) {
  KP_TRY_STATUS(check_measure_options(o.engine, "verify"));
  if (o.tolerance && !(*o.tolerance >= 0 && std::isfinite(*o.tolerance))) {
    return make_error("--tolerance must be a number >= 0, got {}", *o.tolerance);
  }
  if (o.text_file.empty()) return run_steps(o);
  TextVerifyOptions t;
  t.model = o.model;
  t.engine = o.engine;
  t.kernel_paths = split(o.engine.kernel_path, ',');
  t.reference_path = o.reference_path;
  t.text_file = o.text_file;
  t.ctx_size = o.engine.ctx_size == 0 ? 512 : o.engine.ctx_size;
  t.chunks = o.chunks;
  t.json = o.json;
  KP_TRY_STATUS(verify_text(t));
  return 0;
}

}  // namespace

void add_verify_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<VerifyCliOptions>();
  auto* sub = app.add_subcommand(
      "verify",
      "Check a kernel path against the CPU reference, step by step, or over a text (--text: perplexity, KL divergence)");
  sub->footer(
      "Step by step: the path runs on --backend and, step for step, the same path (or --reference-path) runs on the "
      "CPU backend's reference kernels. Before each step the reference's input slots are copied into the tested session, so each step is "
      "judged on identical inputs (--free-running: no copy, errors accumulate). The error of a step is the relative L2 "
      "error ||t - r|| / ||r|| of its worst output slot. Default tolerances: f32 outputs 1e-4, f16 outputs 1e-2, "
      "token ids exact. The first step past its tolerance is marked and the exit code is 1.\n"
      "With --text FILE: perplexity of each path over the text in chunks of -c tokens (0: 512), only the second "
      "half of each chunk scored, as llama.cpp's perplexity tool does; against the f32 reference forward (or "
      "--reference-path on the CPU backend): mean KL divergence and top-1 agreement. --kernel-path then takes a "
      "comma-separated list. Step by step, the context is the prompt plus the decode steps, the prompt one batch.");
  sub->add_option("-m,--model", o->model, "GGUF model (default: the embedded kjv-tiny model)");
  add_engine_options(*sub, o->engine, /*allow_reference=*/false);
  sub->add_option("--reference-path", o->reference_path,
                  "Reference path on the CPU backend (default: the path under test; with --text: the f32 reference)");
  sub->add_option("-p,--prompt", o->prompt, "Prompt text for the step-by-step check")->capture_default_str();
  sub->add_option("-n,--n-decode", o->n_decode, "Decode steps after the prompt")->capture_default_str();
  sub->add_option("--tolerance", o->tolerance, "Relative L2 error allowed per step (f32 and f16 outputs)");
  sub->add_flag("--free-running", o->free_running, "Do not copy the reference's inputs before each step");
  sub->add_flag("--json", o->json, "JSON on stdout");
  sub->add_option("--text", o->text_file, "Text file: perplexity, KL divergence and top-1 agreement");
  sub->add_option("--chunks", o->chunks, "--text: chunks to run (0: all)")->capture_default_str();
  sub->callback([o, exit_code] {
    auto r = run_verify(*o);
    *exit_code = r.ok() ? *r : report_error(r.error());
  });
}

}  // namespace kp::cli
