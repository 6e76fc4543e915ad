// What kpath verify and kpath bench add to the shared engine options
// (engine_options.h): they measure kernel paths, so the reference backend is
// refused, and they open several sessions that differ from the flags in the
// path, the backend, the context or the batch.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"
#include "engine_options.h"
#include "runtime/session.h"

namespace kp::cli {

inline Status check_measure_options(const EngineOptions& e, const char* command) {
  KP_TRY_STATUS(check_engine_options(e));
  if (e.is_reference()) {
    return make_error("--backend reference has no kernel path to {}; choose auto, cpu, vulkan or cuda", command);
  }
  return {};
}

// `e` with another path, backend, context and prefill batch: `batch` rows per
// prefill dispatch exactly (-b and -ub both), or 0 for e's -b and -ub. The
// device index and Vulkan validation only apply to the backend the flags name.
inline EngineOptions engine_for(const EngineOptions& e, const std::string& backend, const std::string& kernel_path,
                                uint32_t ctx, int64_t batch) {
  EngineOptions o = e;
  if (backend != e.backend) {
    o.device = -1;
    o.vulkan_validation = false;
  }
  o.backend = backend;
  o.kernel_path = kernel_path;
  o.ctx_size = ctx;
  if (batch > 0) {
    o.batch_size = batch;
    o.ubatch_size = batch;
  }
  return o;
}

// The reference a path is checked against: `kernel_path` on the CPU backend's
// reference kernels (its fast SIMD kernels are themselves checked).
inline EngineOptions reference_engine(const EngineOptions& e, const std::string& kernel_path, uint32_t ctx,
                                      int64_t batch) {
  EngineOptions o = engine_for(e, "cpu", kernel_path, ctx, batch);
  o.cpu_reference_kernels = true;
  return o;
}

// The path a session runs, as --kernel-path takes it: its file, else its id.
inline std::string path_argument(const runtime::Session& s) {
  return s.path().source.empty() ? s.path().id : s.path().source;
}

}  // namespace kp::cli
