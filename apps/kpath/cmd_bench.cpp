// kpath bench: prefill and decode speed of kernel paths on one backend, what
// a decoded token costs (dispatches, weight bytes read) and the bandwidth that
// achieves against the device's own copy bandwidth; as a markdown table like
// llama-bench's, JSON (--json), an SVG chart (--chart) and dated files for
// bench/results/ (--save DIR).
#include <fmt/chrono.h>
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "bench_report.h"
#include "core/atomic_file.h"
#include "commands.h"
#include "measure_flags.h"
#include "model/gemma2_config.h"
#include "text_format.h"

namespace kp::cli {
namespace {

namespace fs = std::filesystem;

struct BenchCliOptions {
  std::string model;
  EngineOptions engine;      // kernel_path: comma-separated; empty: the session's choice
  int64_t n_prompt = 512, n_gen = 128, reps = 5;
  int64_t bandwidth_mib = 256;
  bool json = false;
  int64_t ops = 0;           // --ops N: per-step profile over N decoded tokens (0: none)
  std::string chart;
  std::string save_dir;
};

Status write_file(const std::string& path, const std::string& text) { return write_file_atomic(path, text); }

// The options as a command line (what a person types to repeat the run).
std::string command_line(const BenchCliOptions& o) {
  std::string c = "kpath bench";
  const EngineOptions& e = o.engine;
  if (!o.model.empty()) c += " -m " + o.model;
  if (!e.kernel_path.empty()) c += " --kernel-path " + e.kernel_path;
  c += " --backend " + e.backend;
  if (e.device >= 0) c += fmt::format(" --device {}", e.device);
  if (!e.kernel_dir.empty()) c += " --kernel-dir " + e.kernel_dir;
  for (const auto& d : e.path_dirs) c += " --kernel-path-dir " + d;
  if (!e.config_file.empty()) c += " --config " + e.config_file;
  c += fmt::format(" -p {} -n {} -r {} -b {}", o.n_prompt, o.n_gen, o.reps, e.batch_size);
  if (e.ubatch_size > 0) c += fmt::format(" -ub {}", e.ubatch_size);
  c += fmt::format(" --bandwidth-mib {}", o.bandwidth_mib);
  if (o.ops > 0) c += fmt::format(" --ops {}", o.ops);
  return c;
}

Status check(const BenchCliOptions& o) {
  KP_TRY_STATUS(check_measure_options(o.engine, "bench"));
  if (o.n_prompt < 0 || o.n_prompt > 65536) return make_error("-p must be between 0 and 65536, got {}", o.n_prompt);
  if (o.n_gen < 0 || o.n_gen > 65536) return make_error("-n must be between 0 and 65536, got {}", o.n_gen);
  if (o.n_prompt == 0 && o.n_gen == 0) return make_error("-p and -n are both 0: nothing to measure");
  if (o.reps < 1 || o.reps > 1000) return make_error("-r must be between 1 and 1000, got {}", o.reps);
  if (o.ops < 0 || o.ops > 4096) return make_error("--ops must be between 0 and 4096, got {}", o.ops);
  if (o.bandwidth_mib < 0 || o.bandwidth_mib > 65536) {
    return make_error("--bandwidth-mib must be between 0 and 65536, got {}", o.bandwidth_mib);
  }
  if (!o.save_dir.empty() && !fs::is_directory(o.save_dir)) return make_error("--save {}: not a directory", o.save_dir);
  if (!o.chart.empty()) {
    const fs::path dir = fs::path(o.chart).parent_path();
    if (!dir.empty() && !fs::is_directory(dir)) return make_error("--chart {}: {} is not a directory", o.chart, dir.string());
  }
  return {};
}

std::string model_stem(const std::string& model) {
  return model.empty() ? "kjv-tiny-q4_k_m" : fs::path(model).stem().string();
}

Status bench(const BenchCliOptions& o) {
  KP_TRY_STATUS(check(o));
  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Gemma2Config cfg, model::load_gemma2_config(file));
  const uint64_t ctx = static_cast<uint64_t>(o.n_prompt + std::max(o.n_gen, o.ops));
  if (ctx > cfg.n_ctx) {
    return make_error("-p {} and -n {} need {} positions, more than the model's context of {}", o.n_prompt, o.n_gen,
                      ctx, cfg.n_ctx);
  }
  std::vector<std::string> paths = split(o.engine.kernel_path, ',');
  if (paths.empty()) paths.emplace_back();

  BenchRun run;
  run.model = o.model.empty() ? kEmbeddedModelName : o.model;
  run.date = fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  run.command = command_line(o);
  run.n_prompt = static_cast<uint32_t>(o.n_prompt);
  run.n_gen = static_cast<uint32_t>(o.n_gen);
  run.reps = static_cast<uint32_t>(o.reps);
  run.bandwidth_note = "not requested (--bandwidth-mib 0)";
  runtime::BenchOptions bo{run.n_prompt, run.n_gen, run.reps};
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    auto opened = open_session(file, engine_for(o.engine, o.engine.backend, p, static_cast<uint32_t>(ctx), 0), true);
    if (!opened.ok()) return make_error("{}{}", p.empty() ? "" : "--kernel-path " + p + ": ", opened.error().message);
    runtime::Session& s = **opened;
    const auto& info = s.backend().info();
    if (i == 0) {
      run.batch = static_cast<uint32_t>(s.executor().max_batch());
      run.backend = info.backend;
      run.device = info.name;
      run.driver = info.driver;
    }
    fmt::print(stderr, "bench: {} on {} ({})\n", s.path().id, info.backend, info.name);
    KP_TRY(runtime::ExecutorBench b, runtime::bench_executor(s.executor(), file, bo));
    run.paths.push_back(BenchRun::Path{s.path().id, s.path().source, b, s.backend().peak_memory(), {}});
    if (o.ops > 0) {
      KP_TRY(run.paths.back().ops, runtime::decode_op_profile(s.executor(), file, run.n_prompt,
                                                              static_cast<uint32_t>(o.ops)));
      run.ops_tokens = static_cast<uint32_t>(o.ops);
    }
    if (i == 0 && o.bandwidth_mib > 0) {
      // After the first path's numbers (and peak memory) are taken, on the same device.
      const uint64_t bytes = static_cast<uint64_t>(o.bandwidth_mib) << 20;
      auto bw = s.backend().measure_copy_bandwidth(bytes, 5);
      if (bw.ok()) {
        run.copy_bandwidth = *bw;
        run.bandwidth_note = fmt::format("{} MiB device-to-device copy, best of 5, bytes read + written", o.bandwidth_mib);
      } else {
        run.bandwidth_note = bw.error().message;
      }
    }
  }

  const std::string markdown = bench_markdown(run);
  const std::string json = bench_json(run).dump(1) + "\n";
  if (o.json) {
    std::fwrite(json.data(), 1, json.size(), stdout);
  } else {
    std::fwrite(markdown.data(), 1, markdown.size(), stdout);
  }
  std::fflush(stdout);
  const std::string svg = bench_svg(run);
  if (!o.chart.empty()) KP_TRY_STATUS(write_file(o.chart, svg));
  if (!o.save_dir.empty()) {
    const std::string stem = (fs::path(o.save_dir) / fmt::format("{}-bench-{}-{}", run.date.substr(0, 10), run.backend,
                                                                   model_stem(o.model)))
                                 .string();
    KP_TRY_STATUS(write_file(stem + ".md", "# " + markdown));
    KP_TRY_STATUS(write_file(stem + ".json", json));
    KP_TRY_STATUS(write_file(stem + ".svg", svg));
    fmt::print(stderr, "bench: wrote {}.md, .json and .svg\n", stem);
  }
  return {};
}

}  // namespace

void add_bench_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<BenchCliOptions>();
  auto* sub = app.add_subcommand("bench", "Measure prefill and decode speed of kernel paths (markdown, JSON, SVG)");
  sub->footer(
      "Each path runs one untimed warm-up, then -r repetitions from an empty cache: the -p prompt tokens (fixed "
      "ordinary ids) as prefill in batches of -b, then -n greedy decode steps after them. t/s is the median, with "
      "the standard deviation and min/max in JSON. weights/token: bytes of the distinct weights the decode steps "
      "read (an embedding lookup counts one row). GB/s: weights/token x decode t/s, against the device's copy "
      "bandwidth measured with a device-to-device copy of --bandwidth-mib MiB (bytes read + written). --kernel-path "
      "takes a comma-separated list; the context is -p + -n (--ctx-size is ignored).");
  sub->add_option("-m,--model", o->model, "GGUF model (default: the embedded kjv-tiny model)");
  add_engine_options(*sub, o->engine, /*allow_reference=*/false);
  sub->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens (prefill test; 0: none)")->capture_default_str();
  sub->add_option("-n,--n-gen", o->n_gen, "Generated tokens (decode test; 0: none)")->capture_default_str();
  sub->add_option("-r,--repetitions", o->reps, "Timed repetitions per path")->capture_default_str();
  sub->add_option("--bandwidth-mib", o->bandwidth_mib, "Size of the bandwidth copy (0: do not measure)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "JSON on stdout instead of the table");
  sub->add_option("--ops", o->ops,
                  "Also time each decode step alone over this many tokens decoded after the prompt: device time "
                  "and achieved weight bandwidth per step (0: no)")
      ->capture_default_str();
  sub->add_option("--chart", o->chart, "Write an SVG chart to this file");
  sub->add_option("--save", o->save_dir, "Write <date>-bench-<backend>-<model>.md/.json/.svg into this directory");
  sub->callback([o, exit_code] {
    const Status st = bench(*o);
    *exit_code = st ? 0 : report_error(st.error());
  });
}

}  // namespace kp::cli
