// Shared fixtures of the kernel path tests: the fixture models, the built-in
// registry with the CPU implementations, and validation options for a model.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "core/check.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "kernel_path/plan.h"
#include "kernel_path/registry.h"
#include "kernel_path/schema.h"
#include "model/gemma2_config.h"
#include "runtime/model_values.h"

namespace kp::kpath::testing {

inline std::string source_path(const std::string& rel) { return std::string(KP_SOURCE_DIR) + "/" + rel; }
inline std::string data_path(const std::string& rel) { return std::string(KP_TEST_DATA) + "/" + rel; }

// The default model and the two fixture copies.
inline std::string q4_k_m_model() { return source_path("models/kjv-tiny-q4_k_m.gguf"); }
inline std::string q4_k_model() { return data_path("kjv-tiny-q4_k.gguf"); }
inline std::string f16_model() { return data_path("kjv-tiny-f16.gguf"); }

struct LoadedModel {
  format::GgufFile file;
  model::Gemma2Config config;
};

// Opens a fixture model once per test binary.
inline const LoadedModel& load_model(const std::string& path) {
  static std::map<std::string, std::unique_ptr<LoadedModel>> cache;
  auto& slot = cache[path];
  if (!slot) {
    auto file = format::GgufFile::open(path);
    KP_CHECK(file.ok(), "fixture model opens");
    auto config = model::load_gemma2_config(*file);
    KP_CHECK(config.ok(), "fixture model is Gemma 2");
    slot = std::make_unique<LoadedModel>(LoadedModel{std::move(*file), *config});
  }
  return *slot;
}

// kernels/registry.json + the backend registries + the CPU implementations.
inline const Registry& builtin_registry() {
  static const Registry registry = [] {
    auto r = Registry::load_builtin(source_path("kernels"));
    KP_CHECK(r.ok(), "built-in registry loads");
    backend::register_cpu_kernels(*r);
    return std::move(*r);
  }();
  return registry;
}

inline ValidateOptions options_for(const LoadedModel& m, const std::string& backend = "cpu") {
  ValidateOptions o;
  o.backend = backend;
  o.ctx = 1024;
  o.model = runtime::model_values(m.config);
  o.resolve_weight = [](const std::string& name) { return model::resolve_weight_name(name); };
  return o;
}

inline KernelPath load_path_file(const std::string& file) {
  auto text = read_text_file(file);
  KP_CHECK(text.ok(), "path file reads");
  auto p = parse_kernel_path(*text, file);
  if (!p.ok()) ADD_FAILURE() << p.error().message;
  KP_CHECK(p.ok(), "path file parses");
  return std::move(*p);
}

}  // namespace kp::kpath::testing
