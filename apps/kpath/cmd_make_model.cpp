// kpath make-model --like gemma2-2b|gemma2-9b|tiny --type TYPE [--seed S] [--threads N] OUT.gguf
//
// Writes a synthetic Gemma 2 model with the real shapes, metadata and a
// SentencePiece-style vocabulary, random weights of realistic scale, in one of
// the quantize mixes (model/make_model.h). The same seed gives the same file.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "model/make_model.h"

namespace kp::cli {
namespace {

struct MakeModelOptions {
  std::string like;
  std::string type = "q4_k_m";
  uint64_t seed = 0;
  int threads = 0;
  std::string output;
};

int run_make_model(const MakeModelOptions& opt) {
  const std::optional<model::SyntheticShape> shape = model::synthetic_shape(opt.like);
  if (!shape) {
    return report_error(make_error("--like '{}': expected one of {}", opt.like, model::synthetic_shape_names()));
  }
  const std::optional<model::QuantMix> mix = model::parse_quant_mix(opt.type);
  if (!mix) {
    return report_error(make_error("--type '{}': expected one of {}", opt.type, model::quant_mix_names()));
  }
  if (opt.threads < 0) return report_error(make_error("--threads {}: expected 0 (all) or more", opt.threads));
  model::MakeModelOptions m;
  m.shape = *shape;
  m.mix = *mix;
  m.seed = opt.seed;
  m.n_threads = opt.threads;
  m.on_tensor = [](size_t i, size_t n, const std::string& name, format::GgmlType type) {
    fmt::print("[{:4}/{}] {:<36} {}\n", i + 1, n, name, format::type_name(type));
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  const Status s = model::make_model(m, opt.output);
  if (!s) return report_error(s.error());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::error_code ec;
  const auto size = std::filesystem::file_size(opt.output, ec);
  fmt::print("{}: synthetic {} {}, seed {}, {:.1f} MiB in {:.1f} s\n", opt.output, opt.like,
             model::quant_mix_name(*mix), opt.seed, static_cast<double>(size) / (1 << 20), seconds);
  return 0;
}

}  // namespace

void add_make_model_command(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<MakeModelOptions>();
  auto* sub = app.add_subcommand("make-model", "Write a synthetic Gemma 2 GGUF model with real shapes");
  sub->add_option("--like", opt->like, "Shapes: " + model::synthetic_shape_names())->required();
  sub->add_option("-t,--type", opt->type, "Type mix: " + model::quant_mix_names() + " (default q4_k_m)");
  sub->add_option("--seed", opt->seed, "Seed of the random weights (default 0)")->check(seed_range());
  sub->add_option("--threads", opt->threads, "Worker threads (default: all hardware threads)");
  sub->add_option("output", opt->output, "Output GGUF file")->required();
  sub->callback([opt, exit_code] { *exit_code = run_make_model(*opt); });
}

}  // namespace kp::cli
