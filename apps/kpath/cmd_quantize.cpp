// kpath quantize IN.gguf OUT.gguf --type q4_k_m|q4_k|q6_k|q8_0|f16|bf16|f32 [--threads N]
//
// Rewrites a GGUF model in one of llama.cpp's type mixes (model/quantize_model.h):
// the same metadata (general.file_type set to llama.cpp's number for the mix),
// tensors in llama-quantize's order, 1-D tensors unchanged, matrices converted.
// Prints one line per tensor and the sizes before and after.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "model/quantize_model.h"

namespace kp::cli {
namespace {

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string type;
  int threads = 0;
};

int run_quantize(const QuantizeOptions& opt) {
  const std::optional<model::QuantMix> mix = model::parse_quant_mix(opt.type);
  if (!mix) {
    return report_error(make_error("--type '{}': expected one of {}", opt.type, model::quant_mix_names()));
  }
  if (opt.threads < 0) return report_error(make_error("--threads {}: expected 0 (all) or more", opt.threads));
  model::QuantizeOptions q;
  q.mix = *mix;
  q.n_threads = opt.threads;
  q.on_tensor = [](size_t i, size_t n, const std::string& name, format::GgmlType from, format::GgmlType to) {
    fmt::print("[{:4}/{}] {:<36} {} -> {}\n", i + 1, n, name, format::type_name(from), format::type_name(to));
    std::fflush(stdout);
  };
  const auto start = std::chrono::steady_clock::now();
  const Status s = model::quantize_model(opt.input, opt.output, q);
  if (!s) return report_error(s.error());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::error_code ec;
  const auto in_size = std::filesystem::file_size(opt.input, ec);
  const auto out_size = std::filesystem::file_size(opt.output, ec);
  fmt::print("{}: {} ({:.1f} MiB -> {:.1f} MiB) in {:.1f} s\n", opt.output, model::quant_mix_name(*mix),
             static_cast<double>(in_size) / (1 << 20), static_cast<double>(out_size) / (1 << 20), seconds);
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<QuantizeOptions>();
  auto* sub = app.add_subcommand("quantize", "Convert a GGUF model to another type mix (llama.cpp's mixes)");
  sub->add_option("input", opt->input, "Input GGUF model")->required();
  sub->add_option("output", opt->output, "Output GGUF file")->required();
  sub->add_option("-t,--type", opt->type, "Type mix: " + model::quant_mix_names())->required();
  sub->add_option("--threads", opt->threads, "Worker threads (default: all hardware threads)");
  sub->callback([opt, exit_code] { *exit_code = run_quantize(*opt); });
}

}  // namespace kp::cli
