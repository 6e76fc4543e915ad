// Options shared by the commands that run a model (run, eval, verify, bench):
// backend and device, kernel path choice, custom kernels, context size.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "runtime/session.h"

namespace kp::cli {

struct EngineOptions {
  std::string backend = "auto";  // reference | cpu | vulkan | cuda | auto
  int device = -1;
  std::string kernel_path;
  std::string config_file;
  std::string kernel_dir;
  std::vector<std::string> path_dirs;
  bool vulkan_validation = false;
  bool vulkan_checkpoints = false;
  bool sync_each_dispatch = false;
  int64_t ctx_size = 0;
  int64_t batch_size = 2048;  // -b: logical batch
  int64_t ubatch_size = 0;    // -ub (--ubatch-size): rows per prefill dispatch; 0: the device's default
  unsigned threads = 0;                // cpu backend; 0: one per physical core
  bool cpu_reference_kernels = false;  // cpu backend: the reference loops (verify's reference)

  bool is_reference() const { return backend == "reference"; }
};

// Registers --backend, --device, --kernel-path, --config, --kernel-dir,
// --kernel-path-dir, --vulkan-validation, --ctx-size, --batch-size, --ubatch-size and --threads.
void add_engine_options(CLI::App& sub, EngineOptions& o, bool allow_reference);

// Checks the values (one error naming the flag) before any work.
Status check_engine_options(const EngineOptions& o);

// Opens a session for `model`; prints the chosen path, where the choice came
// from, deprecation warnings and the device to stderr unless quiet.
Result<std::unique_ptr<runtime::Session>> open_session(const format::GgufFile& model, const EngineOptions& o,
                                                       bool quiet = false);
// The lines open_session prints.
void print_session(runtime::Session& session);

}  // namespace kp::cli
