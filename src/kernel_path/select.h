// Choosing the kernel path for a run: --kernel-path (an id or a file) >
// runtime config ({"inference": {"kernelPath": ...}}, legacy q4kStrategy /
// fusedFFNQ4K mapped with a deprecation warning) > model preset
// (kernel_paths/presets/<arch>.json, by weight type) > auto-selection from the
// model's weight types and the device's features.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "format/ggml_type.h"
#include "kernel_path/registry.h"
#include "kernel_path/schema.h"

namespace kp::kpath {

enum class ChoiceSource { kCli, kRuntimeConfig, kModelPreset, kAuto };
std::string_view choice_source_name(ChoiceSource s);  // "--kernel-path", "runtime config", "model preset", "auto"

struct PathLibrary {
  std::string builtin_dir;               // kernel_paths/ of the installation
  std::vector<std::string> user_dirs;    // --kernel-path-dir, then ~/.config/kpath/kernel_paths
  // Every path id found (built-ins first; a user path may not reuse a built-in id).
  Result<std::vector<std::string>> list_ids() const;
  // Loads by id (searched in builtin then user dirs) or by file path (contains '/' or ends in .json).
  Result<KernelPath> load(const std::string& id_or_file) const;
  // The file that defines `id`, and whether it is a built-in path.
  Result<std::pair<std::string, bool>> find(const std::string& id) const;
};

struct SelectionInput {
  std::string cli_kernel_path;           // --kernel-path, may be empty
  std::string config_file;               // --config, may be empty
  std::string architecture = "gemma2";   // general.architecture
  format::GgmlType dominant_type = format::GgmlType::Q4_K;  // most common matrix type of the model
  std::set<std::string> device_features;
  // With a registry, auto-selection skips a path whose kernels have no
  // implementation for `backend` or need device features the device lacks
  // (for per-type kernel maps, only the kernels of `weight_types`, or of
  // dominant_type when it is empty). Without one, the first candidate is taken.
  const Registry* registry = nullptr;
  std::string backend;
  std::set<format::GgmlType> weight_types;
};

struct Selection {
  KernelPath path;
  ChoiceSource source = ChoiceSource::kAuto;
  std::string detail;                    // e.g. "preset gemma2 for Q4_K weights", "runtime config my.json"
  std::vector<std::string> warnings;     // deprecation warnings to print
};

Result<Selection> select_path(const PathLibrary& lib, const SelectionInput& in);

std::string default_paths_dir();      // <source>/kernel_paths
std::string user_paths_dir();         // kp::user_config_dir() + "/kernel_paths" (core/dirs.h)

}  // namespace kp::kpath
