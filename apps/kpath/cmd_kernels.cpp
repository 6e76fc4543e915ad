// kpath kernels: the kernel registry.
//   kpath kernels list [--json]      id, entries, backends implementing it
//   kpath kernels show ID [--json]   bindings, constants, entries, and per
//                                    backend: file, constants, grids, features
// --kernel-dir DIR adds custom kernels (DIR/registry.json, DIR/<backend>/registry.json).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "kernel_path/registry.h"
#include "kernel_path/suggest.h"
#include "runtime/session.h"
#include "text_format.h"

namespace kp::cli {
namespace {

using kpath::BindingKind;
using kpath::KernelDesc;
using kpath::KernelImpl;
using ojson = nlohmann::ordered_json;

struct KernelsOptions {
  std::string kernel_dir;
  bool json = false;
  std::string id;
};

std::string kind_name(BindingKind k) {
  switch (k) {
    case BindingKind::In: return "in";
    case BindingKind::Out: return "out";
    case BindingKind::InOut: return "inout";
    case BindingKind::Weight: return "weight";
  }
  return "?";
}

std::vector<std::string> entry_names(const KernelDesc& k) {
  std::vector<std::string> out;
  for (const auto& [name, e] : k.entries) out.push_back(name);
  return out;
}

std::vector<std::string> backend_names(const KernelDesc& k) {
  std::vector<std::string> out;
  for (const auto& [name, impl] : k.impls) out.push_back(name);
  return out;
}

std::string shape_label(const std::vector<std::string>& shape) { return fmt::format("[{}]", join(shape, ", ")); }

// "f32", "kv (the path's kvDtype)", or the accepted weight types.
std::string type_label(const kpath::BindingDesc& b) {
  if (b.kind == BindingKind::Weight) {
    std::vector<std::string> types;
    for (auto t : b.weight_types) types.emplace_back(format::type_name(t));
    return join(types, ", ");
  }
  return b.dtype == "kv" ? "kv (the path's kvDtype)" : b.dtype;
}

ojson constants_json(const std::vector<kpath::ConstantDesc>& constants) {
  ojson a = ojson::array();
  for (const auto& c : constants) {
    a.push_back({{"name", c.name},
                 {"type", std::string(kpath::const_type_name(c.type))},
                 {"default", c.default_expr},
                 {"description", c.description}});
  }
  return a;
}

ojson kernel_json(const KernelDesc& k) {
  ojson j;
  j["id"] = k.id;
  j["description"] = k.description;
  j["origin"] = k.origin;
  if (!k.reference.empty()) j["reference"] = k.reference;
  ojson bindings = ojson::array();
  for (const auto& b : k.bindings) {
    ojson bj = {{"name", b.name}, {"kind", kind_name(b.kind)}, {"shape", b.shape}};
    if (b.kind == BindingKind::Weight) {
      std::vector<std::string> types;
      for (auto t : b.weight_types) types.emplace_back(format::type_name(t));
      bj["types"] = types;
    } else {
      bj["dtype"] = b.dtype;
    }
    if (!b.inplace_of.empty()) bj["inplace"] = b.inplace_of;
    if (!b.description.empty()) bj["description"] = b.description;
    bindings.push_back(bj);
  }
  j["bindings"] = bindings;
  j["constants"] = constants_json(k.constants);
  ojson entries = ojson::object();
  for (const auto& [name, e] : k.entries) {
    ojson ej = {{"description", e.description}};
    if (!e.shapes.empty()) {
      ojson shapes = ojson::object();
      for (const auto& [b, s] : e.shapes) shapes[b] = s;
      ej["shapes"] = shapes;
    }
    entries[name] = ej;
  }
  j["entries"] = entries;
  ojson impls = ojson::object();
  for (const auto& [backend, impl] : k.impls) {
    ojson ij;
    ij["file"] = impl.file.empty() ? ojson() : ojson(impl.file);
    ij["constants"] = constants_json(impl.constants);
    ij["features"] = impl.features;
    ojson ies = ojson::object();
    for (const auto& [name, e] : impl.entries) {
      ojson ej = {{"function", e.function}};
      if (!e.grid.empty()) ej["grid"] = e.grid;
      if (!e.block.empty()) ej["block"] = e.block;
      ies[name] = ej;
    }
    ij["entries"] = ies;
    impls[backend] = ij;
  }
  j["implementations"] = impls;
  return j;
}

Status list_kernels(const KernelsOptions& o) {
  KP_TRY(kpath::Registry registry, runtime::load_registry(o.kernel_dir));
  if (o.json) {
    ojson a = ojson::array();
    for (const auto& [id, k] : registry.kernels()) {
      a.push_back({{"id", id},
                   {"description", k.description},
                   {"entries", entry_names(k)},
                   {"backends", backend_names(k)},
                   {"origin", k.origin}});
    }
    fmt::print("{}\n", a.dump(2));
    return {};
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "ENTRIES", "BACKENDS"}};
  for (const auto& [id, k] : registry.kernels()) {
    const auto backends = backend_names(k);
    rows.push_back({id, join(entry_names(k), ", "), backends.empty() ? "(none)" : join(backends, ", ")});
  }
  fmt::print("{}", format_table(rows));
  return {};
}

void print_constants(const std::vector<kpath::ConstantDesc>& constants, const std::string& prefix) {
  if (constants.empty()) {
    fmt::print("{}none\n", prefix);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : constants) {
    rows.push_back({c.name, std::string(kpath::const_type_name(c.type)), "= " + c.default_expr, c.description});
  }
  fmt::print("{}", indent(format_table(rows), prefix));
}

Status show_kernel(const KernelsOptions& o) {
  KP_TRY(kpath::Registry registry, runtime::load_registry(o.kernel_dir));
  const KernelDesc* k = registry.find(o.id);
  if (k == nullptr) {
    std::vector<std::string> ids;
    for (const auto& [id, d] : registry.kernels()) ids.push_back(id);
    const std::string hint = kpath::did_you_mean(o.id, ids);
    return make_error("unknown kernel '{}'{}", o.id, hint.empty() ? " (`kpath kernels list` shows them)" : hint);
  }
  if (o.json) {
    fmt::print("{}\n", kernel_json(*k).dump(2));
    return {};
  }
  fmt::print("{}: {}\n", k->id, k->description);
  fmt::print("  declared in {}\n", k->origin);
  if (!k->reference.empty()) fmt::print("  CPU reference: the code of '{}'\n", k->reference);

  fmt::print("bindings (in order):\n");
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < k->bindings.size(); ++i) {
    const auto& b = k->bindings[i];
    std::string note = b.description;
    if (!b.inplace_of.empty()) note = "may be the slot of '" + b.inplace_of + "'" + (note.empty() ? "" : "; " + note);
    rows.push_back({std::to_string(i), b.name, kind_name(b.kind), shape_label(b.shape), type_label(b), note});
  }
  fmt::print("{}", indent(format_table(rows), "  "));

  fmt::print("constants (logical):\n");
  print_constants(k->constants, "  ");

  fmt::print("entries:\n");
  rows.clear();
  for (const auto& [name, e] : k->entries) {
    std::vector<std::string> shapes;
    for (const auto& [b, s] : e.shapes) shapes.push_back(b + " " + shape_label(s));
    rows.push_back({name, e.description, shapes.empty() ? "" : "shapes: " + join(shapes, ", ")});
  }
  fmt::print("{}", indent(format_table(rows), "  "));

  fmt::print("implementations:\n");
  if (k->impls.empty()) fmt::print("  none\n");
  for (const auto& [backend, impl] : k->impls) {
    fmt::print("  {}: {}\n", backend, impl.file.empty() ? std::string("compiled in") : impl.file);
    fmt::print("    features: {}\n", impl.features.empty() ? std::string("none") : join(impl.features, ", "));
    fmt::print("    constants:\n");
    print_constants(impl.constants, "      ");
    for (const auto& [name, e] : impl.entries) {
      std::string line = fmt::format("    entry {}", name);
      if (!e.function.empty() && e.function != name) line += ": function " + e.function;
      if (!e.grid.empty()) line += ", grid [" + join(e.grid, ", ") + "]";
      if (!e.block.empty()) line += ", block [" + join(e.block, ", ") + "]";
      fmt::print("{}\n", line);
    }
  }
  return {};
}

}  // namespace

void add_kernels_command(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<KernelsOptions>();
  auto* sub = app.add_subcommand("kernels", "List and describe the kernels of the registry");
  sub->require_subcommand(1);
  sub->fallthrough();  // the options below may follow the subcommand
  sub->add_option("--kernel-dir", o->kernel_dir, "Directory of custom kernels")->check(existing_dir());
  auto run = [exit_code](Status st) { *exit_code = st ? 0 : report_error(st.error()); };

  auto* list = sub->add_subcommand("list", "List every kernel: entries and the backends implementing it");
  list->add_flag("--json", o->json, "Print JSON");
  list->callback([o, run] { run(list_kernels(*o)); });

  auto* show = sub->add_subcommand("show", "Describe a kernel: bindings, constants, entries, implementations");
  show->add_option("id", o->id, "Kernel id")->required();
  show->add_flag("--json", o->json, "Print JSON");
  show->callback([o, run] { run(show_kernel(*o)); });
}

}  // namespace kp::cli
