#include "engine_options.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdint>

#include "commands.h"
#include "text_format.h"

namespace kp::cli {

void add_engine_options(CLI::App& sub, EngineOptions& o, bool allow_reference) {
  const std::string backends = allow_reference ? "auto, cpu, vulkan, cuda or reference (the f32 oracle, no path)"
                                               : "auto, cpu, vulkan or cuda";
  sub.add_option("--backend", o.backend, "Backend: " + backends)->capture_default_str();
  sub.add_option("--device", o.device, "Device index of the backend (see kpath devices)");
  sub.add_option("--kernel-path", o.kernel_path, "Kernel path: a built-in or user id, or a JSON file");
  sub.add_option("--config", o.config_file, "Runtime config JSON ({\"inference\": {\"kernelPath\": ...}})");
  sub.add_option("--kernel-dir", o.kernel_dir, "Directory of custom kernels (registry.json and sources)")
      ->check(existing_dir());
  sub.add_option("--kernel-path-dir", o.path_dirs, "Directory of user kernel paths (repeatable)")
      ->check(existing_dir());
  sub.add_flag("--vulkan-validation", o.vulkan_validation, "Enable the Vulkan validation layers");
  sub.add_flag("--vulkan-checkpoints", o.vulkan_checkpoints,
               "Mark each Vulkan dispatch so a device loss names its step (NVIDIA; slower)");
  sub.add_flag("--sync-each-dispatch", o.sync_each_dispatch,
               "Wait for the device after every dispatch, so a device fault names its step (Vulkan, CUDA; slow)");
  sub.add_option("-c,--ctx-size", o.ctx_size, "Context size in tokens (0: min(model's, 4096))")
      ->capture_default_str();
  sub.add_option("-b,--batch-size", o.batch_size,
                 "Logical batch: most prompt tokens per prefill call; each dispatch takes min(-b, -ub)")
      ->capture_default_str();
  sub.add_option("--ubatch-size", o.ubatch_size,
                 "Physical batch (also -ub): prompt tokens per prefill dispatch (0: the device's default, 512 on "
                 "GPUs, 256 on CPUs and software devices)")
      ->capture_default_str();
  sub.add_option("-t,--threads", o.threads, "Threads of the cpu backend (default: one per physical core)");
}

Status check_engine_options(const EngineOptions& o) {
  static const char* kNames[] = {"auto", "cpu", "vulkan", "cuda", "reference"};
  if (std::find(std::begin(kNames), std::end(kNames), o.backend) == std::end(kNames)) {
    return make_error("--backend: unknown backend '{}' (expected auto, cpu, vulkan, cuda or reference)", o.backend);
  }
  if (o.ctx_size < 0 || o.ctx_size > INT32_MAX) {
    return make_error("--ctx-size must be between 0 and {}, got {}", INT32_MAX, o.ctx_size);
  }
  if (o.batch_size < 1 || o.batch_size > 65536) {
    return make_error("--batch-size must be between 1 and 65536, got {}", o.batch_size);
  }
  if (o.ubatch_size < 0 || o.ubatch_size > 65536) {
    return make_error("--ubatch-size must be between 0 and 65536, got {}", o.ubatch_size);
  }
  if (o.device < -1) return make_error("--device must be >= 0, got {}", o.device);
  if (o.threads > 1024) return make_error("--threads must be between 1 and 1024, got {}", o.threads);
  if (o.is_reference() && (!o.kernel_path.empty() || !o.kernel_dir.empty() || !o.config_file.empty())) {
    return make_error("--backend reference runs the f32 oracle and takes no kernel path, config or kernel dir");
  }
  return {};
}

Result<std::unique_ptr<runtime::Session>> open_session(const format::GgufFile& model, const EngineOptions& o,
                                                       bool quiet) {
  runtime::SessionOptions so;
  so.backend.name = o.backend;
  so.backend.device = o.device;
  so.backend.vulkan_validation = o.vulkan_validation;
  so.backend.vulkan_checkpoints = o.vulkan_checkpoints;
  so.backend.sync_each_dispatch = o.sync_each_dispatch;
  so.backend.threads = o.threads;
  so.backend.cpu_reference_kernels = o.cpu_reference_kernels;
  so.kernel_path = o.kernel_path;
  so.config_file = o.config_file;
  so.kernel_dir = o.kernel_dir;
  so.path_dirs = o.path_dirs;
  so.ctx = static_cast<uint32_t>(o.ctx_size);
  so.max_batch = o.batch_size;
  so.max_ubatch = o.ubatch_size;
  KP_TRY(std::unique_ptr<runtime::Session> s, runtime::Session::open(model, so));
  if (!quiet) print_session(*s);
  return s;
}

void print_session(runtime::Session& s) {
  for (const std::string& w : s.selection().warnings) fmt::print(stderr, "kpath: warning: {}\n", w);
  const auto& info = s.backend().info();
  const kpath::Selection& sel = s.selection();
  const bool detail = !sel.detail.empty() && sel.source != kpath::ChoiceSource::kCli;
  fmt::print(stderr, "kernel path: {} (chosen by {}{}{})\n", s.path().id, kpath::choice_source_name(sel.source),
             detail ? ": " : "", detail ? sel.detail : "");
  fmt::print(stderr, "backend:     {} on {} ({})\n", info.backend, info.name, s.backend_why());
  fmt::print(stderr, "weights:     {} on the device, context {} tokens\n", human_bytes(s.executor().weight_bytes()),
             s.executor().ctx());
}


}  // namespace kp::cli
