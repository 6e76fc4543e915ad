#include "kernel_path/registry.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>

#include "core/json_keys.h"
#include "core/mapped_file.h"

namespace kp::kpath {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

Status check_keys(const json& obj, const std::string& where, std::initializer_list<const char*> allowed) {
  if (!obj.is_object()) return make_error("{}: expected an object", where);
  for (const auto& [key, _] : obj.items()) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || key == a;
    if (!ok) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return make_error("{}: unknown field '{}' (expected one of: {})", where, key, list);
    }
  }
  return {};
}

Result<std::string> get_string(const json& obj, const char* key, const std::string& where, bool required,
                               const std::string& fallback = "") {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return make_error("{}: missing field '{}'", where, key);
    return fallback;
  }
  if (it->is_number()) return it->dump();
  if (!it->is_string()) return make_error("{}.{}: expected a string", where, key);
  return it->get<std::string>();
}

Result<std::vector<std::string>> get_string_list(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end()) return out;
  if (!it->is_array()) return make_error("{}.{}: expected an array", where, key);
  for (size_t i = 0; i < it->size(); ++i) {
    const json& e = (*it)[i];
    if (e.is_string()) {
      out.push_back(e.get<std::string>());
    } else if (e.is_number_integer()) {
      out.push_back(e.dump());
    } else {
      return make_error("{}.{}[{}]: expected a string", where, key, i);
    }
  }
  return out;
}

Result<std::vector<ConstantDesc>> parse_constants(const json& obj, const std::string& where) {
  std::vector<ConstantDesc> out;
  auto it = obj.find("constants");
  if (it == obj.end()) return out;
  if (!it->is_array()) return make_error("{}.constants: expected an array", where);
  std::set<std::string> seen;
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string w = fmt::format("{}.constants[{}]", where, i);
    const json& c = (*it)[i];
    KP_TRY_STATUS(
        check_keys(c, w, {"name", "type", "default", "description", "min", "max", "multipleOf", "equals", "pow2"}));
    ConstantDesc d;
    KP_TRY(d.name, get_string(c, "name", w, true));
    KP_TRY(std::string type, get_string(c, "type", w, true));
    if (type == "u32") d.type = ConstType::U32;
    else if (type == "i32") d.type = ConstType::I32;
    else if (type == "f32") d.type = ConstType::F32;
    else if (type == "bool") d.type = ConstType::Bool;
    else return make_error("{}.type: '{}' is not a constant type (expected u32, i32, f32 or bool)", w, type);
    auto def = c.find("default");
    if (def == c.end()) return make_error("{}: missing field 'default'", w);
    if (def->is_boolean()) d.default_expr = def->get<bool>() ? "1" : "0";
    else if (def->is_number() || def->is_string()) d.default_expr = def->is_string() ? def->get<std::string>() : def->dump();
    else return make_error("{}.default: expected a number, boolean or expression string", w);
    KP_TRY(d.description, get_string(c, "description", w, false));
    for (auto [key, field] : {std::pair{"min", &d.min}, std::pair{"max", &d.max},
                              std::pair{"multipleOf", &d.multiple_of}, std::pair{"equals", &d.equals}}) {
      auto r = c.find(key);
      if (r == c.end()) continue;
      if (r->is_number_integer()) {
        *field = r->dump();
      } else if (r->is_string()) {
        *field = r->get<std::string>();
      } else {
        return make_error("{}.{}: expected an integer or an expression string", w, key);
      }
    }
    if (auto r = c.find("pow2"); r != c.end()) {
      if (!r->is_boolean()) return make_error("{}.pow2: expected true or false", w);
      d.pow2 = r->get<bool>();
    }
    if (!seen.insert(d.name).second) return make_error("{}: constant '{}' declared twice", w, d.name);
    out.push_back(std::move(d));
  }
  return out;
}

Result<KernelDesc> parse_kernel(const std::string& id, const json& k, const std::string& where) {
  KP_TRY_STATUS(check_keys(k, where, {"description", "bindings", "constants", "entries", "reference"}));
  KernelDesc d;
  d.id = id;
  KP_TRY(d.description, get_string(k, "description", where, false));
  KP_TRY(d.reference, get_string(k, "reference", where, false));
  auto b = k.find("bindings");
  if (b == k.end() || !b->is_array() || b->empty()) {
    return make_error("{}.bindings: expected a non-empty array of bindings", where);
  }
  std::set<std::string> names;
  for (size_t i = 0; i < b->size(); ++i) {
    const std::string w = fmt::format("{}.bindings[{}]", where, i);
    const json& bj = (*b)[i];
    KP_TRY_STATUS(check_keys(bj, w, {"name", "kind", "shape", "dtype", "types", "inplace", "description"}));
    BindingDesc bd;
    KP_TRY(bd.name, get_string(bj, "name", w, true));
    KP_TRY(std::string kind, get_string(bj, "kind", w, true));
    if (kind == "in") bd.kind = BindingKind::In;
    else if (kind == "out") bd.kind = BindingKind::Out;
    else if (kind == "inout") bd.kind = BindingKind::InOut;
    else if (kind == "weight") bd.kind = BindingKind::Weight;
    else return make_error("{}.kind: '{}' (expected in, out, inout or weight)", w, kind);
    KP_TRY(bd.shape, get_string_list(bj, "shape", w));
    if (bd.shape.size() != 2) return make_error("{}.shape: expected [rows, cols]", w);
    KP_TRY(bd.dtype, get_string(bj, "dtype", w, false));
    KP_TRY(bd.inplace_of, get_string(bj, "inplace", w, false));
    KP_TRY(bd.description, get_string(bj, "description", w, false));
    KP_TRY(std::vector<std::string> types, get_string_list(bj, "types", w));
    if (bd.kind == BindingKind::Weight) {
      if (types.empty()) return make_error("{}.types: a weight binding lists the tensor types it accepts", w);
      for (const auto& t : types) {
        auto gt = format::parse_type(t);
        if (!gt) return make_error("{}.types: '{}' is not a GGUF tensor type", w, t);
        bd.weight_types.push_back(*gt);
      }
    } else {
      if (bd.dtype != "f32" && bd.dtype != "f16" && bd.dtype != "i32" && bd.dtype != "kv") {
        return make_error("{}.dtype: '{}' (expected f32, f16, i32 or kv)", w, bd.dtype);
      }
    }
    if (!names.insert(bd.name).second) return make_error("{}: binding '{}' declared twice", w, bd.name);
    d.bindings.push_back(std::move(bd));
  }
  for (const auto& bd : d.bindings) {
    if (!bd.inplace_of.empty() && !names.count(bd.inplace_of)) {
      return make_error("{}: binding '{}' is in place of unknown binding '{}'", where, bd.name, bd.inplace_of);
    }
  }
  KP_TRY(d.constants, parse_constants(k, where));
  auto e = k.find("entries");
  if (e == k.end()) {
    d.entries["main"] = EntryDesc{"main", "", {}};
  } else {
    if (!e->is_object() || e->empty()) return make_error("{}.entries: expected an object of entry points", where);
    for (const auto& [name, ej] : e->items()) {
      const std::string w = fmt::format("{}.entries.{}", where, name);
      KP_TRY_STATUS(check_keys(ej, w, {"description", "shapes"}));
      EntryDesc ed;
      ed.name = name;
      KP_TRY(ed.description, get_string(ej, "description", w, false));
      if (auto s = ej.find("shapes"); s != ej.end()) {
        if (!s->is_object()) return make_error("{}.shapes: expected an object", w);
        for (const auto& [bn, shape] : s->items()) {
          if (!names.count(bn)) return make_error("{}.shapes: unknown binding '{}'", w, bn);
          KP_TRY(ed.shapes[bn], get_string_list(*s, bn.c_str(), w + ".shapes"));
        }
      }
      d.entries[name] = std::move(ed);
    }
  }
  return d;
}

}  // namespace

std::string_view dtype_name(SlotDType t) {
  switch (t) {
    case SlotDType::F32: return "f32";
    case SlotDType::F16: return "f16";
    case SlotDType::I32: return "i32";
  }
  return "?";
}

std::optional<SlotDType> parse_dtype(std::string_view s) {
  if (s == "f32") return SlotDType::F32;
  if (s == "f16") return SlotDType::F16;
  if (s == "i32") return SlotDType::I32;
  return std::nullopt;
}

std::string_view const_type_name(ConstType t) {
  switch (t) {
    case ConstType::U32: return "u32";
    case ConstType::I32: return "i32";
    case ConstType::F32: return "f32";
    case ConstType::Bool: return "bool";
  }
  return "?";
}

std::string const_value_string(const ConstValue& v) {
  return std::visit(
      [](auto x) -> std::string {
        using X = decltype(x);
        if constexpr (std::is_same_v<X, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<X, float>) {
          return fmt::format("{}", x);
        } else {
          return std::to_string(x);
        }
      },
      v);
}

Status Registry::add_logical_json(const std::string& text, const std::string& origin) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return make_error("{}: not valid JSON", origin);
  KP_TRY_STATUS(check_json_unique_keys(text, origin));
  KP_TRY_STATUS(check_keys(doc, origin, {"$comment", "version", "kernels"}));
  auto ks = doc.find("kernels");
  if (ks == doc.end() || !ks->is_object()) return make_error("{}: missing object 'kernels'", origin);
  for (const auto& [id, k] : ks->items()) {
    const std::string where = fmt::format("{}: kernels.{}", origin, id);
    if (kernels_.count(id)) return make_error("{}: kernel '{}' is already defined in {}", where, id, kernels_[id].origin);
    KP_TRY(KernelDesc d, parse_kernel(id, k, where));
    d.origin = origin;
    if (!d.reference.empty()) {
      const KernelDesc* ref = find(d.reference);
      if (ref == nullptr) return make_error("{}.reference: unknown kernel '{}'", where, d.reference);
      if (ref->bindings.size() != d.bindings.size()) {
        return make_error("{}.reference: '{}' has {} bindings, this kernel {}", where, d.reference,
                          ref->bindings.size(), d.bindings.size());
      }
    }
    kernels_[id] = std::move(d);
  }
  return {};
}

Status Registry::add_backend_json(const std::string& text, const std::string& origin, const std::string& base_dir) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return make_error("{}: not valid JSON", origin);
  KP_TRY_STATUS(check_json_unique_keys(text, origin));
  KP_TRY_STATUS(check_keys(doc, origin, {"$comment", "backend", "kernels"}));
  KP_TRY(std::string backend, get_string(doc, "backend", origin, true));
  if (backend != "vulkan" && backend != "cuda" && backend != "cpu") {
    return make_error("{}.backend: '{}' (expected vulkan or cuda)", origin, backend);
  }
  auto ks = doc.find("kernels");
  if (ks == doc.end() || !ks->is_object()) return make_error("{}: missing object 'kernels'", origin);
  for (const auto& [id, k] : ks->items()) {
    const std::string where = fmt::format("{}: kernels.{}", origin, id);
    auto it = kernels_.find(id);
    if (it == kernels_.end()) return make_error("{}: no logical kernel '{}' in the registry", where, id);
    KP_TRY_STATUS(check_keys(k, where, {"file", "constants", "features", "entries", "description"}));
    KernelImpl impl;
    impl.backend = backend;
    KP_TRY(std::string file, get_string(k, "file", where, true));
    impl.file = (fs::path(base_dir) / file).lexically_normal().string();
    impl.source_dir = fs::path(impl.file).parent_path().string();
    if (!fs::exists(impl.file)) return make_error("{}.file: '{}' does not exist", where, impl.file);
    KP_TRY(impl.constants, parse_constants(k, where));
    for (const auto& c : impl.constants) {
      for (const auto& lc : it->second.constants) {
        if (lc.name == c.name) return make_error("{}.constants: '{}' is already a constant of the kernel", where, c.name);
      }
    }
    KP_TRY(impl.features, get_string_list(k, "features", where));
    auto es = k.find("entries");
    if (es == k.end() || !es->is_object()) return make_error("{}.entries: expected an object", where);
    for (const auto& [entry, ej] : es->items()) {
      const std::string w = fmt::format("{}.entries.{}", where, entry);
      if (!it->second.entries.count(entry)) {
        return make_error("{}: kernel '{}' has no entry '{}'", w, id, entry);
      }
      KP_TRY_STATUS(check_keys(ej, w, {"function", "grid", "block", "overlap", "workspace"}));
      KernelImpl::Entry e;
      KP_TRY(e.function, get_string(ej, "function", w, false, entry));
      KP_TRY(e.grid, get_string_list(ej, "grid", w));
      KP_TRY(e.block, get_string_list(ej, "block", w));
      if (auto o = ej.find("overlap"); o != ej.end()) {
        if (!o->is_boolean()) return make_error("{}.overlap: expected true or false", w);
        if (backend != "cuda") return make_error("{}.overlap: only CUDA entries can overlap their predecessor", w);
        e.overlap = o->get<bool>();
      }
      if (ej.contains("workspace")) {
        if (backend != "cuda") return make_error("{}.workspace: only CUDA entries have a workspace", w);
        KP_TRY(e.workspace, get_string(ej, "workspace", w, false, ""));
      }
      if (e.grid.empty() || e.grid.size() > 3) return make_error("{}.grid: expected 1 to 3 expressions", w);
      if (backend == "cuda" && (e.block.empty() || e.block.size() > 3)) {
        return make_error("{}.block: expected 1 to 3 expressions", w);
      }
      impl.entries[entry] = std::move(e);
    }
    it->second.impls[backend] = std::move(impl);
  }
  return {};
}

void Registry::add_impl(const std::string& kernel_id, KernelImpl impl) {
  auto it = kernels_.find(kernel_id);
  if (it != kernels_.end()) it->second.impls[impl.backend] = std::move(impl);
}

const KernelDesc* Registry::find(std::string_view id) const {
  auto it = kernels_.find(id);
  return it == kernels_.end() ? nullptr : &it->second;
}

Status Registry::add_dir(const std::string& dir) {
  const fs::path root(dir);
  if (!fs::is_directory(root)) return make_error("{}: not a directory", dir);
  const fs::path logical = root / "registry.json";
  if (fs::exists(logical)) {
    KP_TRY(std::string text, read_text_file(logical.string()));
    KP_TRY_STATUS(add_logical_json(text, logical.string()));
  }
  for (const char* backend : {"vulkan", "cuda"}) {
    const fs::path impls = root / backend / "registry.json";
    if (!fs::exists(impls)) continue;
    KP_TRY(std::string text, read_text_file(impls.string()));
    KP_TRY_STATUS(add_backend_json(text, impls.string(), (root / backend).string()));
  }
  return {};
}

Result<Registry> Registry::load_builtin(const std::string& kernels_dir) {
  Registry r;
  r.kernels_dir_ = kernels_dir;
  KP_TRY_STATUS(r.add_dir(kernels_dir));
  if (r.kernels_.empty()) return make_error("{}: no kernels/registry.json found", kernels_dir);
  return r;
}

std::string default_kernels_dir() {
#ifdef KP_SOURCE_DIR
  return std::string(KP_SOURCE_DIR) + "/kernels";
#else
  return "kernels";
#endif
}

}  // namespace kp::kpath
