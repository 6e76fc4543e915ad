// Choosing the kernel path: --kernel-path > runtime config > model preset >
// auto-selection (select.h), and finding paths by id in the built-in and
// user directories.
#include "kernel_path/select.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "core/dirs.h"
#include "core/json_keys.h"
#include "core/mapped_file.h"
#include "kernel_path/suggest.h"

namespace kp::kpath {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct PathFile {
  std::string id;
  std::string file;
  bool builtin = false;
};

bool looks_like_file(const std::string& s) { return s.find('/') != std::string::npos || s.ends_with(".json"); }

Result<json> read_json(const std::string& file) {
  KP_TRY(std::string text, read_text_file(file));
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return make_error("{}: not valid JSON: {}", file, what);
  }
  KP_TRY_STATUS(check_json_unique_keys(text, file));
  return doc;
}

// The id of a path file, read without checking the rest of it.
Result<std::string> read_id(const std::string& file) {
  KP_TRY(json doc, read_json(file));
  auto it = doc.is_object() ? doc.find("id") : doc.end();
  if (!doc.is_object() || it == doc.end() || !it->is_string()) {
    return make_error("{}: not a kernel path (expected an object with a string 'id')", file);
  }
  return it->get<std::string>();
}

std::vector<std::string> json_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".json") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Every path file of the library with its id: built-ins first, then user
// directories in order. Ids are unique; a user path cannot take a built-in id.
Result<std::vector<PathFile>> scan(const PathLibrary& lib) {
  if (!fs::is_directory(lib.builtin_dir)) {
    return make_error("{}: the built-in kernel path directory does not exist", lib.builtin_dir);
  }
  std::vector<PathFile> out;
  std::map<std::string, size_t> by_id;
  auto add = [&](const std::string& file, bool builtin) -> Status {
    KP_TRY(std::string id, read_id(file));
    if (auto it = by_id.find(id); it != by_id.end()) {
      const PathFile& other = out[it->second];
      if (other.builtin && !builtin) {
        return make_error(
            "{}: id '{}' is the id of a built-in kernel path ({}); give the custom path an id of its "
            "own",
            file, id, other.file);
      }
      return make_error("{}: id '{}' is also the id of {}", file, id, other.file);
    }
    by_id[id] = out.size();
    out.push_back(PathFile{id, file, builtin});
    return {};
  };
  for (const auto& f : json_files(lib.builtin_dir)) KP_TRY_STATUS(add(f, true));
  for (const auto& dir : lib.user_dirs) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& f : json_files(dir)) KP_TRY_STATUS(add(f, false));
  }
  return out;
}

Result<KernelPath> load_file(const std::string& file) {
  KP_TRY(std::string text, read_text_file(file));
  return parse_kernel_path(text, file);
}

// A runtime config's choice: a path id or file, or nothing (fall through).
struct ConfigChoice {
  std::string path;
  std::string legacy;  // "q4kStrategy \"dequant_f32\"" when mapped from the old flags
  std::vector<std::string> warnings;
};

Status check_keys(const json& obj, const std::string& file, const std::string& where,
                  const std::vector<std::string>& allowed) {
  for (const auto& [key, value] : obj.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::vector<std::string> shown;
    for (const auto& a : allowed) {
      if (a != "$comment") shown.push_back(a);
    }
    const std::string hint = did_you_mean(key, allowed);
    return make_error("{}: {}{}: unknown key '{}'{}", file, where, where.empty() ? key : "." + key, key,
                      hint.empty() ? fmt::format(" (expected one of: {})", join_names(shown)) : hint);
  }
  return {};
}

// Maps the deprecated q4kStrategy / fusedFFNQ4K flags to a kernel path
// (docs/kernel-paths.md, "Migration from q4kStrategy").
Status map_legacy(const json& inference, const std::string& file, ConfigChoice& c) {
  std::optional<std::string> strategy;
  std::optional<bool> fused_ffn;
  if (auto it = inference.find("q4kStrategy"); it != inference.end()) {
    if (!it->is_string()) return make_error("{}: inference.q4kStrategy: expected a string", file);
    strategy = it->get<std::string>();
  }
  if (auto it = inference.find("fusedFFNQ4K"); it != inference.end()) {
    if (!it->is_boolean()) return make_error("{}: inference.fusedFFNQ4K: expected true or false", file);
    fused_ffn = it->get<bool>();
  }
  if (!strategy && !fused_ffn) return {};
  const std::string flag = strategy ? "q4kStrategy" : "fusedFFNQ4K";
  const std::string s = strategy.value_or("fused_q4k");
  if (s == "fused_q4k") {
    if (fused_ffn == false) {
      return make_error(
          "{}: inference: q4kStrategy \"fused_q4k\" with fusedFFNQ4K false has no built-in kernel path "
          "(gemma2-q4k-fused fuses gate, up and GELU); copy gemma2-q4k-fused, split its ffn_gate_up "
          "step, and set inference.kernelPath to the copy",
          file);
    }
    c.path = "gemma2-q4k-fused";
  } else if (s == "dequant_f32") {
    c.path = "gemma2-q4k-dequant-f32";
  } else if (s == "dequant_f16") {
    c.path = "gemma2-q4k-dequant-f16";
  } else {
    return make_error("{}: inference.q4kStrategy: '{}' (expected fused_q4k, dequant_f32 or dequant_f16){}", file, s,
                      did_you_mean(s, {"fused_q4k", "dequant_f32", "dequant_f16"}));
  }
  c.legacy = strategy ? fmt::format("q4kStrategy \"{}\"", s) : fmt::format("fusedFFNQ4K {}", *fused_ffn);
  c.warnings.push_back(fmt::format("{}: {} is deprecated; use inference.kernelPath = \"{}\"{}", file, flag, c.path,
                                   c.path == "gemma2-q4k-dequant-f16"
                                       ? " (not recommended: gemma2-q4k-fused is faster and "
                                         "gemma2-q4k-dequant-f32 more accurate)"
                                       : ""));
  if (fused_ffn && s != "fused_q4k") {
    c.warnings.push_back(fmt::format("{}: fusedFFNQ4K only applies to q4kStrategy \"fused_q4k\"; ignored", file));
  }
  return {};
}

Result<ConfigChoice> read_config(const std::string& file) {
  KP_TRY(json doc, read_json(file));
  if (!doc.is_object()) return make_error("{}: expected a runtime config object", file);
  KP_TRY_STATUS(check_keys(doc, file, "", {"$comment", "inference"}));
  ConfigChoice c;
  auto inf = doc.find("inference");
  if (inf == doc.end()) return c;
  if (!inf->is_object()) return make_error("{}: inference: expected an object", file);
  KP_TRY_STATUS(check_keys(*inf, file, "inference", {"$comment", "kernelPath", "q4kStrategy", "fusedFFNQ4K"}));
  if (auto kp = inf->find("kernelPath"); kp != inf->end()) {
    if (!kp->is_string() || kp->get<std::string>().empty()) {
      return make_error("{}: inference.kernelPath: expected a kernel path id or file", file);
    }
    if (inf->contains("q4kStrategy") || inf->contains("fusedFFNQ4K")) {
      return make_error("{}: inference: give kernelPath or the deprecated q4kStrategy / fusedFFNQ4K, not both", file);
    }
    c.path = kp->get<std::string>();
    // A relative file is relative to the config file.
    if (looks_like_file(c.path) && fs::path(c.path).is_relative()) {
      c.path = (fs::path(file).parent_path() / c.path).lexically_normal().string();
    }
    return c;
  }
  KP_TRY_STATUS(map_legacy(*inf, file, c));
  return c;
}

// Why `path` cannot run on the device ("" if it can), judged from the
// registry: every kernel needs an implementation for the backend and the
// device features that implementation lists.
std::string unusable_reason(const KernelPath& path, const SelectionInput& in) {
  if (in.registry == nullptr) return "";
  std::set<format::GgmlType> types = in.weight_types;
  if (types.empty()) types.insert(in.dominant_type);
  std::vector<const std::vector<Step>*> lists = {&path.pre_layer, &path.decode, &path.prefill, &path.post_layer,
                                                 &path.sampling};
  for (const auto& o : path.layer_overrides) {
    if (o.decode) lists.push_back(&*o.decode);
    if (o.prefill) lists.push_back(&*o.prefill);
  }
  auto check = [&](const std::string& id) -> std::string {
    const KernelDesc* k = in.registry->find(id);
    if (k == nullptr) return "";  // validation names unknown kernels
    auto impl = k->impls.find(in.backend);
    if (impl == k->impls.end()) return fmt::format("kernel '{}' has no {} implementation", id, in.backend);
    for (const auto& f : impl->second.features) {
      if (!in.device_features.count(f)) {
        return fmt::format("kernel '{}' ({}) needs the device feature '{}'", id, in.backend, f);
      }
    }
    return "";
  };
  for (const auto* steps : lists) {
    for (const auto& s : *steps) {
      if (!s.pinned_backend.empty()) {
        if (s.pinned_backend != in.backend) return fmt::format("step '{}' runs only on {}", s.op, s.pinned_backend);
        continue;
      }
      if (s.kernel_by_type.empty()) {
        if (auto why = check(s.kernel); !why.empty()) return why;
        continue;
      }
      for (const auto& [type, id] : s.kernel_by_type) {
        if (!types.count(type)) continue;
        if (auto why = check(id); !why.empty()) return why;
      }
    }
  }
  return "";
}

// The preset's path ids for the model's dominant weight type, in order of
// preference (empty when the preset does not exist or names no path for that
// type). `kernelPath` is a path id, or an object whose keys are GGUF type
// names (-> a path id or a list of them) and backend names (-> such an object
// for that backend alone, consulted first).
Result<std::vector<std::string>> preset_choice(const PathLibrary& lib, const SelectionInput& in,
                                               std::string* preset_file) {
  const std::string file = (fs::path(lib.builtin_dir) / "presets" / (in.architecture + ".json")).string();
  *preset_file = file;
  if (!fs::exists(file)) return std::vector<std::string>{};
  KP_TRY(json doc, read_json(file));
  if (!doc.is_object()) return make_error("{}: expected a model preset object", file);
  KP_TRY_STATUS(check_keys(doc, file, "", {"$comment", "id", "inference"}));
  auto inf = doc.find("inference");
  if (inf == doc.end()) return std::vector<std::string>{};
  if (!inf->is_object()) return make_error("{}: inference: expected an object", file);
  KP_TRY_STATUS(check_keys(*inf, file, "inference", {"$comment", "kernelPath"}));
  auto kp = inf->find("kernelPath");
  if (kp == inf->end()) return std::vector<std::string>{};
  if (kp->is_string()) return std::vector<std::string>{kp->get<std::string>()};
  if (!kp->is_object()) {
    return make_error("{}: inference.kernelPath: expected a path id or an object weight type -> path id(s)", file);
  }
  static const std::set<std::string> kBackends = {"cpu", "vulkan", "cuda"};
  // The ids an object names for the dominant type; every entry is checked.
  auto ids_in = [&](const json& table, const std::string& where) -> Result<std::vector<std::string>> {
    std::vector<std::string> found;
    for (const auto& [key, value] : table.items()) {
      if (kBackends.count(key)) continue;  // the top level's backend tables
      auto type = format::parse_type(key);
      if (!type) {
        return make_error("{}: {}.{}: not a GGUF tensor type or a backend (cpu, vulkan, cuda)", file, where, key);
      }
      std::vector<std::string> ids;
      if (value.is_string()) {
        ids.push_back(value.get<std::string>());
      } else if (value.is_array() && !value.empty()) {
        for (const auto& id : value) {
          if (!id.is_string()) return make_error("{}: {}.{}: expected path ids", file, where, key);
          ids.push_back(id.get<std::string>());
        }
      } else {
        return make_error("{}: {}.{}: expected a path id or a non-empty list of path ids", file, where, key);
      }
      if (*type == in.dominant_type) found = std::move(ids);
    }
    return found;
  };
  for (const auto& [key, value] : kp->items()) {
    if (!kBackends.count(key)) continue;
    if (!value.is_object()) return make_error("{}: inference.kernelPath.{}: expected an object", file, key);
    KP_TRY(auto ids, ids_in(value, "inference.kernelPath." + key));
    if (key == in.backend && !ids.empty()) return ids;
  }
  return ids_in(*kp, "inference.kernelPath");
}

}  // namespace

std::string_view choice_source_name(ChoiceSource s) {
  switch (s) {
    case ChoiceSource::kCli: return "--kernel-path";
    case ChoiceSource::kRuntimeConfig: return "runtime config";
    case ChoiceSource::kModelPreset: return "model preset";
    case ChoiceSource::kAuto: return "auto";
  }
  return "?";
}

Result<std::vector<std::string>> PathLibrary::list_ids() const {
  KP_TRY(std::vector<PathFile> files, scan(*this));
  std::vector<std::string> ids;
  for (const auto& f : files) ids.push_back(f.id);
  return ids;
}

Result<std::pair<std::string, bool>> PathLibrary::find(const std::string& id) const {
  KP_TRY(std::vector<PathFile> files, scan(*this));
  std::vector<std::string> ids;
  for (const auto& f : files) {
    if (f.id == id) return std::pair{f.file, f.builtin};
    ids.push_back(f.id);
  }
  const std::string hint = did_you_mean(id, ids);
  return make_error("unknown kernel path '{}'{}", id,
                    hint.empty() ? fmt::format(" (known: {})", join_names(ids)) : hint);
}

Result<KernelPath> PathLibrary::load(const std::string& id_or_file) const {
  if (looks_like_file(id_or_file)) return load_file(id_or_file);
  KP_TRY(auto found, find(id_or_file));
  return load_file(found.first);
}

Result<Selection> select_path(const PathLibrary& lib, const SelectionInput& in) {
  Selection sel;
  if (!in.cli_kernel_path.empty()) {
    KP_TRY(sel.path, lib.load(in.cli_kernel_path));
    sel.source = ChoiceSource::kCli;
    sel.detail = "--kernel-path " + in.cli_kernel_path;
    return sel;
  }
  if (!in.config_file.empty()) {
    KP_TRY(ConfigChoice c, read_config(in.config_file));
    if (!c.path.empty()) {
      auto loaded = lib.load(c.path);
      if (!loaded.ok()) {
        return make_error("{}: inference{}: {}", in.config_file, c.legacy.empty() ? ".kernelPath" : "",
                          loaded.error().message);
      }
      sel.path = std::move(*loaded);
      sel.source = ChoiceSource::kRuntimeConfig;
      sel.detail = "runtime config " + in.config_file + (c.legacy.empty() ? "" : " (" + c.legacy + ")");
      sel.warnings = std::move(c.warnings);
      return sel;
    }
  }
  std::string preset_file;
  KP_TRY(std::vector<std::string> preset, preset_choice(lib, in, &preset_file));
  if (!preset.empty()) {
    // The first path of the preset's list that the device can run.
    std::vector<std::string> skipped;
    for (const auto& id : preset) {
      auto loaded = lib.load(id);
      if (!loaded.ok()) return make_error("{}: {}", preset_file, loaded.error().message);
      const std::string why = unusable_reason(*loaded, in);
      if (!why.empty()) {
        skipped.push_back(fmt::format("{} skipped: {}", id, why));
        continue;
      }
      sel.path = std::move(*loaded);
      sel.source = ChoiceSource::kModelPreset;
      sel.detail = fmt::format("preset {} for {} weights{}", in.architecture, format::type_name(in.dominant_type),
                               skipped.empty() ? "" : " (" + join_names(skipped, "; ") + ")");
      return sel;
    }
    return make_error("{}: no path of the preset for {} weights runs on this device: {}", preset_file,
                      format::type_name(in.dominant_type), join_names(skipped, "; "));
  }

  // Auto-selection: the fused path for the k-quants and Q8_0, native F16 for
  // F16, dequantized f32 otherwise; each falls back to dequantized f32 when
  // the device cannot run it.
  if (in.architecture != "gemma2") {
    return make_error("no kernel path for architecture '{}' (kpath's paths are for gemma2)", in.architecture);
  }
  std::vector<std::string> candidates;
  switch (in.dominant_type) {
    case format::GgmlType::Q4_K:
    case format::GgmlType::Q6_K:
    case format::GgmlType::Q8_0: candidates = {"gemma2-q4k-fused", "gemma2-q4k-dequant-f32"}; break;
    case format::GgmlType::F16: candidates = {"gemma2-f16-native", "gemma2-q4k-dequant-f32"}; break;
    default: candidates = {"gemma2-q4k-dequant-f32"}; break;
  }
  std::vector<std::string> skipped;
  for (const auto& id : candidates) {
    KP_TRY(KernelPath p, lib.load(id));
    const std::string why = unusable_reason(p, in);
    if (!why.empty()) {
      skipped.push_back(fmt::format("{} skipped: {}", id, why));
      continue;
    }
    sel.path = std::move(p);
    sel.source = ChoiceSource::kAuto;
    sel.detail = fmt::format("auto: {} weights{}", format::type_name(in.dominant_type),
                             skipped.empty() ? "" : " (" + join_names(skipped, "; ") + ")");
    return sel;
  }
  return make_error("no built-in kernel path runs on this device for {} weights: {}",
                    format::type_name(in.dominant_type), join_names(skipped, "; "));
}

std::string default_paths_dir() {
#ifdef KP_SOURCE_DIR
  return std::string(KP_SOURCE_DIR) + "/kernel_paths";
#else
  return "kernel_paths";
#endif
}

std::string user_paths_dir() { return kp::user_config_dir() + "/kernel_paths"; }

}  // namespace kp::kpath
