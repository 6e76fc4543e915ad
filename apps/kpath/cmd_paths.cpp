// kpath paths: list, show, validate and diff kernel paths.
//   kpath paths list [--json]
//   kpath paths show ID|FILE [--json] [--steps]
//   kpath paths validate ID|FILE [-m MODEL] [--backend cpu|vulkan|cuda]
//   kpath paths diff A B
// Paths are found by id in kernel_paths/, then --kernel-path-dir, then
// ~/.config/kpath/kernel_paths; a name with '/' or ending in .json is a file.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "kernel_path/describe.h"
#include "kernel_path/plan.h"
#include "kernel_path/select.h"
#include "model/gemma2_config.h"
#include "runtime/backends.h"
#include "runtime/model_values.h"
#include "runtime/session.h"
#include "text_format.h"

namespace kp::cli {
namespace {

using kpath::chain;
using kpath::constants_label;
using kpath::diff_paths;
using kpath::kernel_label;
using kpath::KernelPath;
using kpath::Step;

struct PathsOptions {
  std::vector<std::string> path_dirs;  // --kernel-path-dir
  std::string kernel_dir;              // --kernel-dir
  bool json = false;
  bool steps = false;
  std::string name;  // show / validate: id or file
  std::string model;
  std::string backend = "cpu";
  std::string features;  // --features: comma-separated, instead of asking the device
  int64_t ctx = 0;
  std::string a, b;  // diff
};

kpath::PathLibrary library(const PathsOptions& o) {
  kpath::PathLibrary lib;
  lib.builtin_dir = kpath::default_paths_dir();
  lib.user_dirs = o.path_dirs;
  lib.user_dirs.push_back(kpath::user_paths_dir());
  return lib;
}

// ---- list -----------------------------------------------------------------

Status list_paths(const PathsOptions& o) {
  const kpath::PathLibrary lib = library(o);
  KP_TRY(std::vector<std::string> ids, lib.list_ids());
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::vector<std::vector<std::string>> rows = {{"ID", "STEPS/LAYER", "WEIGHTS", "NAME", "SOURCE"}};
  for (const auto& id : ids) {
    KP_TRY(auto found, lib.find(id));
    KP_TRY(KernelPath p, lib.load(found.first));
    const std::string per_layer = p.prefill.size() == p.decode.size()
                                      ? std::to_string(p.decode.size())
                                      : fmt::format("{} / {}", p.decode.size(), p.prefill.size());
    rows.push_back({p.id, per_layer, p.weight_dtype, p.name, found.second ? "built-in" : found.first});
    out.push_back({{"id", p.id},
                   {"name", p.name},
                   {"description", p.description},
                   {"file", found.first},
                   {"builtin", found.second},
                   {"activationDtype", std::string(kpath::dtype_name(p.activation_dtype))},
                   {"kvDtype", std::string(kpath::dtype_name(p.kv_dtype))},
                   {"weightDtype", p.weight_dtype},
                   {"decodeStepsPerLayer", p.decode.size()},
                   {"prefillStepsPerLayer", p.prefill.size()},
                   {"layerOverrides", p.layer_overrides.size()}});
  }
  if (o.json) {
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{}", format_table(rows));
  }
  return {};
}

// ---- show -----------------------------------------------------------------

void print_section(const std::string& title, const std::vector<Step>& steps, bool detail) {
  if (steps.empty()) {
    fmt::print("{}: none\n", title);
    return;
  }
  fmt::print("{}\n", title);
  if (detail) {
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      rows.push_back({fmt::format("[{}]", i), s.op, kernel_label(s), s.entry,
                      fmt::format("{} -> {}", join(s.inputs, ", "), join(s.outputs, ", ")), join(s.weights, ", "),
                      constants_label(s)});
    }
    fmt::print("{}", indent(format_table(rows), "  "));
  } else {
    fmt::print("{}", indent(chain(steps), "  "));
  }
}

std::string dispatches_title(const std::string& phase, const std::vector<Step>& steps) {
  return fmt::format("{}: {} dispatches per layer", phase, steps.size());
}

Status show_path(const PathsOptions& o) {
  const kpath::PathLibrary lib = library(o);
  KP_TRY(KernelPath p, lib.load(o.name));
  if (o.json) {
    fmt::print("{}", kpath::kernel_path_to_json(p));
    return {};
  }
  fmt::print("{}{}\n", p.id, p.name.empty() ? "" : ": " + p.name);
  if (!p.description.empty()) fmt::print("{}", indent(wrap(p.description, 96), "  "));
  fmt::print("  file:        {}\n", p.source);
  fmt::print("  weights:     {}\n",
             p.weight_dtype == "native"
                 ? std::string("native (as stored in the model)")
                 : fmt::format("{} (matrices converted once at load; norms stay f32)", p.weight_dtype));
  fmt::print("  activations: {}, KV cache: {}\n\n", kpath::dtype_name(p.activation_dtype),
             kpath::dtype_name(p.kv_dtype));
  print_section(fmt::format("preLayer: {} step{}", p.pre_layer.size(), p.pre_layer.size() == 1 ? "" : "s"), p.pre_layer,
                true);
  print_section(dispatches_title("decode", p.decode), p.decode, o.steps);
  if (p.prefill_given) {
    print_section(dispatches_title("prefill", p.prefill), p.prefill, o.steps);
  } else {
    fmt::print("prefill: the decode steps\n");
  }
  print_section(fmt::format("postLayer: {} steps", p.post_layer.size()), p.post_layer, o.steps);
  print_section(fmt::format("sampling: {} steps", p.sampling.size()), p.sampling, o.steps);
  for (const auto& ov : p.layer_overrides) {
    std::vector<std::string> layers;
    for (auto l : ov.layers) layers.push_back(std::to_string(l));
    const std::string which = fmt::format("layers {}", join(layers, ", "));
    if (ov.both_phases && ov.decode) {
      print_section(fmt::format("{} (both phases): {} dispatches", which, ov.decode->size()), *ov.decode, o.steps);
      continue;
    }
    if (ov.decode)
      print_section(fmt::format("{}, decode: {} dispatches", which, ov.decode->size()), *ov.decode, o.steps);
    if (ov.prefill) {
      print_section(fmt::format("{}, prefill: {} dispatches", which, ov.prefill->size()), *ov.prefill, o.steps);
    }
  }
  return {};
}

// ---- validate -------------------------------------------------------------

Status validate(const PathsOptions& o) {
  const kpath::PathLibrary lib = library(o);
  KP_TRY(KernelPath path, lib.load(o.name));
  KP_TRY(kpath::Registry registry, runtime::load_registry(o.kernel_dir));
  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Gemma2Config config, model::load_gemma2_config(file));
  if (o.ctx < 0 || o.ctx > config.n_ctx) {
    return make_error("--ctx-size {}: expected 0 (the default) to the model's context length {}", o.ctx, config.n_ctx);
  }

  kpath::ValidateOptions vo;
  uint32_t max_workgroup_size = 1024;  // the device's, when it can be opened
  vo.backend = o.backend;
  if (o.backend != "cpu" && o.backend != "vulkan" && o.backend != "cuda") {
    return make_error("--backend {}: expected cpu, vulkan or cuda", o.backend);
  }
  if (!o.features.empty()) {
    for (const auto& f : split(o.features, ',')) {
      if (f.empty()) continue;
      if (!backend::kDeviceFeatures.count(f)) {
        return make_error("--features: unknown feature '{}' (known: {})", f, fmt::join(backend::kDeviceFeatures, ", "));
      }
      vo.device_features.insert(f);
    }
  } else {
    // The device's own features when it can be opened; otherwise every feature
    // the implementations ask for, so that only the device check is skipped.
    runtime::BackendRequest request;
    request.name = o.backend;
    auto opened = runtime::open_backend(request);
    if (opened.ok()) {
      vo.device_features = opened->backend->info().features;
      max_workgroup_size = opened->backend->info().max_workgroup_size;
    } else {
      for (const auto& [id, k] : registry.kernels()) {
        if (auto impl = k.impls.find(o.backend); impl != k.impls.end()) {
          vo.device_features.insert(impl->second.features.begin(), impl->second.features.end());
        }
      }
      fmt::print(stderr, "kpath: note: no {} device ({}); device features are not checked (--features sets them)\n",
                 o.backend, opened.error().message);
    }
  }
  vo.ctx = o.ctx != 0 ? o.ctx : std::min<int64_t>(config.n_ctx, 4096);
  vo.model = runtime::model_values(config);
  vo.model.max_workgroup_size = max_workgroup_size;
  vo.resolve_weight = [](const std::string& name) { return model::resolve_weight_name(name); };
  KP_TRY(kpath::Plan plan, kpath::validate_path(path, registry, file, vo));

  // Dispatches of one decode token by section; the layers' counts differ only with layer overrides.
  std::map<std::string, size_t> per_section;
  std::map<int32_t, size_t> per_layer;
  for (const auto& s : plan.decode) {
    ++per_section[s.phase_section];
    if (s.layer >= 0) ++per_layer[s.layer];
  }
  std::string layers = fmt::format("{} in {} layers", per_section["layer"], per_layer.size());
  if (!per_layer.empty() && per_section["layer"] == per_layer.size() * per_layer.begin()->second) {
    layers = fmt::format("{} layers x {}", per_layer.size(), per_layer.begin()->second);
  }
  fmt::print("ok: {}: {} dispatches per decode token\n", path.id, plan.decode.size());
  fmt::print("  preLayer {} + {} + postLayer {} + sampling {} ({}, {} backend, {} weights, context {})\n",
             per_section["preLayer"], layers, per_section["postLayer"], per_section["sampling"], file.name(),
             o.backend, plan.weights.size(), vo.ctx);
  return {};
}

// ---- diff -----------------------------------------------------------------

Status diff(const PathsOptions& o) {
  const kpath::PathLibrary lib = library(o);
  KP_TRY(KernelPath a, lib.load(o.a));
  KP_TRY(KernelPath b, lib.load(o.b));
  fmt::print("--- {} ({})\n+++ {} ({})\n", a.id, a.source, b.id, b.source);
  const std::string text = diff_paths(a, b);
  fmt::print("{}", text.empty() ? "no differences in the steps or settings\n" : text);
  return {};
}

}  // namespace

void add_paths_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<PathsOptions>();
  auto* sub = app.add_subcommand("paths", "List, show, validate and compare kernel paths");
  sub->require_subcommand(1);
  sub->fallthrough();  // the options below may follow the subcommand
  sub->add_option("--kernel-path-dir", o->path_dirs, "Directory of custom kernel paths (repeatable)")
      ->check(existing_dir());
  auto run = [exit_code](Status st) { *exit_code = st ? 0 : report_error(st.error()); };

  auto* list = sub->add_subcommand("list", "List the kernel paths: built-in, then custom");
  list->add_flag("--json", o->json, "Print JSON");
  list->callback([o, run] { run(list_paths(*o)); });

  auto* show = sub->add_subcommand("show", "Show a kernel path: its chain of steps, dispatches, settings");
  show->add_option("path", o->name, "Path id or file")->required();
  show->add_flag("--json", o->json, "Print the path as a JSON path file");
  show->add_flag("--steps", o->steps, "List every step (kernel, entry, slots, weights, constants)");
  show->callback([o, run] { run(show_path(*o)); });

  auto* val = sub->add_subcommand("validate", "Check a kernel path against the registry, a model and a backend");
  val->add_option("path", o->name, "Path id or file")->required();
  val->add_option("-m,--model", o->model, "GGUF model (default: the embedded kjv-tiny model)");
  val->add_option("--backend", o->backend, "Backend whose implementations are checked: cpu, vulkan, cuda")
      ->capture_default_str();
  val->add_option("--features", o->features,
                  "Device features, comma-separated (default: ask the device, e.g. f16,subgroups,int_dot)");
  val->add_option("--ctx-size", o->ctx, "Context size in tokens (0: min(model's, 4096))")->capture_default_str();
  val->add_option("--kernel-dir", o->kernel_dir, "Directory of custom kernels")->check(existing_dir());
  val->callback([o, run] { run(validate(*o)); });

  auto* dif = sub->add_subcommand("diff", "Compare two kernel paths section by section");
  dif->add_option("a", o->a, "Path id or file")->required();
  dif->add_option("b", o->b, "Path id or file")->required();
  dif->callback([o, run] { run(diff(*o)); });
}

}  // namespace kp::cli
