// A session: a model on a backend, running the kernel path chosen for it.
// It ties the layers together: the GGUF model and its config (model), the
// registry and the path (kernel_path), the backend, and the executor.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"
#include "format/gguf.h"
#include "kernel_path/plan.h"
#include "kernel_path/registry.h"
#include "kernel_path/select.h"
#include "model/gemma2_config.h"
#include "runtime/backends.h"
#include "runtime/executor.h"

namespace kp::runtime {

struct SessionOptions {
  BackendRequest backend;
  std::string kernel_path;                // --kernel-path (id or file)
  std::string config_file;                // --config
  std::string kernel_dir;                 // --kernel-dir (custom kernels)
  std::vector<std::string> path_dirs;     // --kernel-path-dir
  uint32_t ctx = 0;                       // 0: min(model's context, 4096)
  int64_t max_batch = 2048;  // -b: most prompt tokens per prefill call (the logical batch)
  int64_t max_ubatch = 0;    // -ub: prompt tokens per prefill dispatch; 0: the device's prefill_batch
};

class Session {
 public:
  // `model` must outlive the session.
  static Result<std::unique_ptr<Session>> open(const format::GgufFile& model, const SessionOptions& options);
  // The same on a backend the caller opened (options.backend is not used).
  static Result<std::unique_ptr<Session>> open(const format::GgufFile& model, const SessionOptions& options,
                                               OpenedBackend backend);

  Executor& executor() { return *executor_; }
  backend::Backend& backend() { return *backend_; }
  const model::Gemma2Config& config() const { return config_; }
  const kpath::KernelPath& path() const { return selection_.path; }
  const kpath::Selection& selection() const { return selection_; }
  const std::string& backend_why() const { return backend_why_; }
  const kpath::Registry& registry() const { return registry_; }
  const kpath::Plan& plan() const { return plan_; }

 private:
  model::Gemma2Config config_;
  kpath::Registry registry_;
  kpath::Selection selection_;
  kpath::Plan plan_;
  std::unique_ptr<backend::Backend> backend_;
  std::string backend_why_;
  std::unique_ptr<Executor> executor_;
};

// The most common matrix type of a model (decides presets and auto-selection).
format::GgmlType dominant_weight_type(const format::GgufFile& model);

// Registry with the built-in kernels, the CPU implementations and an optional user directory.
Result<kpath::Registry> load_registry(const std::string& kernel_dir);

}  // namespace kp::runtime
