// Parsing kernel path documents. Every problem is collected (not only the
// first), each as "<origin>: <JSON location>: <what was expected>".
#include "kernel_path/schema.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

#include "core/json_keys.h"
#include "kernel_path/suggest.h"

namespace kp::kpath {
namespace {

using nlohmann::json;

const std::vector<std::string> kPathFields = {
    "$comment", "id",     "name",    "description", "activationDtype", "kvDtype",       "weightDtype",
    "preLayer", "decode", "prefill", "postLayer",   "sampling",        "layerOverrides"};
const std::vector<std::string> kPhaseFields = {"$comment", "steps"};
const std::vector<std::string> kStepFields = {"$comment",  "op",      "kernel", "entry",
                                              "constants", "weights", "input",  "output"};
const std::vector<std::string> kOverrideFields = {"$comment", "layers", "decode", "prefill", "steps"};
const std::vector<std::string> kBackends = {"vulkan", "cuda", "cpu"};

std::string child(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : where + "." + std::string(key);
}

std::string index(const std::string& where, size_t i) { return fmt::format("{}[{}]", where, i); }

std::string json_type(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    default: return "a number";
  }
}

class Parser {
 public:
  explicit Parser(std::string origin) : origin_(std::move(origin)) {}

  Result<KernelPath> parse(const std::string& text) {
    json doc;
    try {
      doc = json::parse(text);
    } catch (const json::parse_error& e) {
      // e.what(): "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
      std::string what = e.what();
      if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
      return make_error("{}: not valid JSON: {}", origin_, what);
    }
    KP_TRY_STATUS(check_json_unique_keys(text, origin_));
    KernelPath path;
    path.source = origin_;
    if (!doc.is_object()) {
      error("", fmt::format("expected a kernel path object, got {}", json_type(doc)));
      return finish(std::move(path));
    }
    check_fields(doc, "", kPathFields);

    if (auto id = string_field(doc, "", "id", true)) {
      path.id = *id;
      if (!is_valid_path_id(path.id)) {
        error("id", fmt::format("'{}' is not a valid path id (expected letters, digits, '-', '_' or '.')", path.id));
      }
    }
    path.name = string_field(doc, "", "name", false).value_or("");
    path.description = string_field(doc, "", "description", false).value_or("");

    if (auto a = string_field(doc, "", "activationDtype", false)) {
      if (*a == "f32" || *a == "f16") {
        path.activation_dtype = *parse_dtype(*a);
      } else {
        error("activationDtype", fmt::format("'{}' (expected f32 or f16)", *a));
      }
    }
    path.kv_dtype = path.activation_dtype;
    if (auto k = string_field(doc, "", "kvDtype", false)) {
      if (*k == "f32" || *k == "f16") {
        path.kv_dtype = *parse_dtype(*k);
      } else {
        error("kvDtype", fmt::format("'{}' (expected f32 or f16)", *k));
      }
    }
    if (auto w = string_field(doc, "", "weightDtype", false)) {
      if (*w == "native" || *w == "f32" || *w == "f16") {
        path.weight_dtype = *w;
      } else {
        error("weightDtype",
              fmt::format("'{}' (expected native, f32 or f16)", *w) + did_you_mean(*w, {"native", "f32", "f16"}));
      }
    }

    path.pre_layer = step_list(doc, "preLayer", /*in_layer=*/false);
    if (!doc.contains("decode")) {
      error("", "missing field 'decode' (the steps of one layer: {\"decode\": {\"steps\": [...]}})");
    } else {
      path.decode = phase(doc["decode"], "decode");
    }
    if (doc.contains("prefill")) {
      path.prefill = phase(doc["prefill"], "prefill");
      path.prefill_given = true;
    } else {
      path.prefill = path.decode;
    }
    path.post_layer = step_list(doc, "postLayer", false);
    path.sampling = step_list(doc, "sampling", false);
    if (doc.contains("layerOverrides")) path.layer_overrides = overrides(doc["layerOverrides"]);
    return finish(std::move(path));
  }

 private:
  Result<KernelPath> finish(KernelPath path) {
    if (errors_.empty()) return path;
    return Error{join_names(errors_, "\n")};
  }

  void error(const std::string& where, const std::string& what) {
    errors_.push_back(where.empty() ? fmt::format("{}: {}", origin_, what)
                                    : fmt::format("{}: {}: {}", origin_, where, what));
  }

  void check_fields(const json& obj, const std::string& where, const std::vector<std::string>& allowed) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      const std::string hint = did_you_mean(key, allowed);
      std::vector<std::string> shown;
      for (const auto& a : allowed) {
        if (a != "$comment") shown.push_back(a);
      }
      error(child(where, key),
            fmt::format("unknown field '{}'{}", key,
                        hint.empty() ? fmt::format(" (expected one of: {})", join_names(shown)) : hint));
    }
  }

  std::optional<std::string> string_field(const json& obj, const std::string& where, const char* key, bool required) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) error(where, fmt::format("missing field '{}'", key));
      return std::nullopt;
    }
    if (!it->is_string()) {
      error(child(where, key), fmt::format("expected a string, got {}", json_type(*it)));
      return std::nullopt;
    }
    return it->get<std::string>();
  }

  std::vector<Step> step_list(const json& obj, const char* key, bool in_layer) {
    auto it = obj.find(key);
    if (it == obj.end()) return {};
    return steps(*it, key, in_layer);
  }

  std::vector<Step> steps(const json& arr, const std::string& where, bool in_layer) {
    std::vector<Step> out;
    if (!arr.is_array()) {
      error(where, fmt::format("expected an array of steps, got {}", json_type(arr)));
      return out;
    }
    for (size_t i = 0; i < arr.size(); ++i) {
      if (auto s = step(arr[i], index(where, i), in_layer)) out.push_back(std::move(*s));
    }
    return out;
  }

  // "decode" / "prefill": {"steps": [...]}.
  std::vector<Step> phase(const json& obj, const std::string& where) {
    if (!obj.is_object()) {
      error(where, fmt::format("expected an object {{\"steps\": [...]}}, got {}", json_type(obj)));
      return {};
    }
    check_fields(obj, where, kPhaseFields);
    auto it = obj.find("steps");
    if (it == obj.end()) {
      error(where, "missing field 'steps'");
      return {};
    }
    if (it->is_array() && it->empty()) {
      error(child(where, "steps"), "no steps (a layer needs at least one)");
      return {};
    }
    return steps(*it, child(where, "steps"), /*in_layer=*/true);
  }

  // Weight and slot names: "{L}" is the only template, and only in layer steps.
  bool check_template(const std::string& text, const std::string& where, bool in_layer) {
    size_t pos = 0;
    while ((pos = text.find('{', pos)) != std::string::npos) {
      const size_t end = text.find('}', pos);
      const std::string t = end == std::string::npos ? text.substr(pos) : text.substr(pos, end - pos + 1);
      if (t != "{L}") {
        error(where, fmt::format("unknown template '{}' in '{}' (the only template is {{L}}, the layer)", t, text));
        return false;
      }
      if (!in_layer) {
        error(where, fmt::format("'{}' uses {{L}} outside the layer steps (decode, prefill, layerOverrides)", text));
        return false;
      }
      pos = end + 1;
    }
    if (text.find('}') != std::string::npos && text.find('{') == std::string::npos) {
      error(where, fmt::format("unbalanced '}}' in '{}'", text));
      return false;
    }
    return true;
  }

  // A string or an array of strings; `fallback` when absent.
  std::vector<std::string> names(const json& obj, const std::string& where, const char* key, bool in_layer,
                                 std::vector<std::string> fallback) {
    auto it = obj.find(key);
    if (it == obj.end()) return fallback;
    const std::string w = child(where, key);
    std::vector<std::string> out;
    auto add = [&](const json& j, const std::string& jw) {
      if (!j.is_string() || j.get<std::string>().empty()) {
        error(jw, fmt::format("expected a non-empty name, got {}", j.is_string() ? "\"\"" : json_type(j)));
        return;
      }
      if (check_template(j.get<std::string>(), jw, in_layer)) out.push_back(j.get<std::string>());
    };
    if (it->is_string()) {
      add(*it, w);
    } else if (it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i) add((*it)[i], index(w, i));
    } else {
      error(w, fmt::format("expected a name or an array of names, got {}", json_type(*it)));
    }
    return out;
  }

  // Kernel given as a logical id, a backend file, or a map weight type -> id.
  void kernel(const json& k, const std::string& where, Step& s) {
    if (k.is_string()) {
      const std::string name = k.get<std::string>();
      if (name.empty()) {
        error(where, "expected a kernel id, got \"\"");
      } else if (name.ends_with(".comp")) {
        s.kernel = name;
        s.pinned_backend = "vulkan";
      } else if (name.ends_with(".cu")) {
        s.kernel = name;
        s.pinned_backend = "cuda";
      } else if (auto dot = name.rfind('.'); dot != std::string::npos) {
        error(where, fmt::format("'{}': '{}' files are not kernels kpath runs (expected a logical kernel id such as "
                                 "'{}', or a .comp (Vulkan) or .cu (CUDA) file)",
                                 name, name.substr(dot), name.substr(0, dot)));
      } else {
        s.kernel = name;
      }
      return;
    }
    if (k.is_object()) {
      if (k.empty()) error(where, "expected at least one weight type -> kernel entry");
      for (const auto& [type_name, id] : k.items()) {
        const std::string w = child(where, type_name);
        auto type = format::parse_type(type_name);
        if (!type) {
          std::vector<std::string> known;
          for (uint32_t raw = 0; raw < 64; ++raw) {
            if (auto tt = format::type_traits(raw)) known.emplace_back(tt->name);
          }
          error(w, fmt::format("'{}' is not a GGUF tensor type{}", type_name, did_you_mean(type_name, known)));
          continue;
        }
        if (s.kernel_by_type.count(*type)) {
          error(w, fmt::format("weight type {} is given twice", format::type_name(*type)));
          continue;
        }
        if (!id.is_string() || id.get<std::string>().empty()) {
          error(w, fmt::format("expected a kernel id, got {}", json_type(id)));
          continue;
        }
        if (id.get<std::string>().find('.') != std::string::npos) {
          error(w,
                fmt::format("'{}': a per-type kernel map names logical kernel ids, not files", id.get<std::string>()));
          continue;
        }
        s.kernel_by_type[*type] = id.get<std::string>();
      }
      return;
    }
    error(where, fmt::format("expected a kernel id or an object weight type -> kernel id, got {}", json_type(k)));
  }

  // Constant values are kept as text: numbers as JSON writes them, booleans as
  // true/false, expressions as written.
  std::optional<std::string> constant_value(const json& v, const std::string& where) {
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number()) return v.dump();
    if (v.is_string() && !v.get<std::string>().empty()) return v.get<std::string>();
    error(where, fmt::format("expected a number, boolean or expression string, got {}",
                             v.is_string() ? "\"\"" : json_type(v)));
    return std::nullopt;
  }

  void constants(const json& c, const std::string& where, Step& s) {
    if (!c.is_object()) {
      error(where, fmt::format("expected an object of constant name -> value, got {}", json_type(c)));
      return;
    }
    for (const auto& [name, value] : c.items()) {
      const std::string w = child(where, name);
      if (value.is_object()) {
        if (std::find(kBackends.begin(), kBackends.end(), name) == kBackends.end()) {
          error(w, fmt::format("expected a number, boolean or expression string, or per-backend constants under "
                               "'vulkan', 'cuda' or 'cpu'{}",
                               did_you_mean(name, kBackends)));
          continue;
        }
        auto& backend = s.backend_constants[name];
        for (const auto& [bname, bvalue] : value.items()) {
          if (auto text = constant_value(bvalue, child(w, bname))) backend[bname] = *text;
        }
        continue;
      }
      if (auto text = constant_value(value, w)) s.constants[name] = *text;
    }
  }

  std::optional<Step> step(const json& j, const std::string& where, bool in_layer) {
    if (!j.is_object()) {
      error(where, fmt::format("expected a step object, got {}", json_type(j)));
      return std::nullopt;
    }
    const size_t errors_before = errors_.size();
    check_fields(j, where, kStepFields);
    Step s;
    s.location = where;
    if (auto op = string_field(j, where, "op", true)) {
      if (op->empty()) error(child(where, "op"), "expected a non-empty operation name");
      s.op = *op;
    }
    if (auto k = j.find("kernel"); k == j.end()) {
      error(where, "missing field 'kernel'");
    } else {
      kernel(*k, child(where, "kernel"), s);
    }
    if (auto e = string_field(j, where, "entry", false)) {
      if (e->empty()) error(child(where, "entry"), "expected an entry point name");
      s.entry = *e;
    }
    if (auto c = j.find("constants"); c != j.end()) constants(*c, child(where, "constants"), s);
    s.weights = names(j, where, "weights", in_layer, {});
    s.inputs = names(j, where, "input", in_layer, {"hidden_state"});
    s.outputs = names(j, where, "output", in_layer, {"hidden_state"});
    if (errors_.size() != errors_before) return std::nullopt;
    return s;
  }

  std::vector<LayerOverride> overrides(const json& arr) {
    std::vector<LayerOverride> out;
    if (!arr.is_array()) {
      error("layerOverrides", fmt::format("expected an array, got {}", json_type(arr)));
      return out;
    }
    // layer -> location of the override that already replaces its decode / prefill steps
    std::map<uint32_t, std::string> decode_owner, prefill_owner;
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string where = index("layerOverrides", i);
      const json& o = arr[i];
      if (!o.is_object()) {
        error(where, fmt::format("expected an object {{\"layers\": [...], \"steps\": [...]}}, got {}", json_type(o)));
        continue;
      }
      check_fields(o, where, kOverrideFields);
      LayerOverride lo;
      lo.location = where;
      auto layers = o.find("layers");
      if (layers == o.end()) {
        error(where, "missing field 'layers'");
      } else if (!layers->is_array() || layers->empty()) {
        error(child(where, "layers"), "expected a non-empty array of layer numbers");
      } else {
        for (size_t k = 0; k < layers->size(); ++k) {
          const json& l = (*layers)[k];
          if (!l.is_number_unsigned() || l.get<uint64_t>() > 1000000) {
            error(index(child(where, "layers"), k), fmt::format("expected a layer number, got {}", l.dump()));
            continue;
          }
          lo.layers.push_back(l.get<uint32_t>());
        }
      }
      // Each phase accepts an array of steps or {"steps": [...]}.
      auto phase_steps = [&](const char* key) -> std::optional<std::vector<Step>> {
        auto it = o.find(key);
        if (it == o.end()) return std::nullopt;
        if (it->is_object()) return phase(*it, child(where, key));
        return steps(*it, child(where, key), true);
      };
      const bool has_steps = o.contains("steps");
      if (has_steps && (o.contains("decode") || o.contains("prefill"))) {
        error(where, "give either 'steps' (both phases) or 'decode' / 'prefill', not both");
      } else if (has_steps) {
        lo.decode = phase_steps("steps");
        lo.prefill = lo.decode;
        lo.both_phases = true;
      } else {
        lo.decode = phase_steps("decode");
        lo.prefill = phase_steps("prefill");
        if (!lo.decode && !lo.prefill) error(where, "missing field 'steps' (or 'decode' / 'prefill')");
      }
      for (size_t k = 0; k < lo.layers.size(); ++k) {
        const uint32_t l = lo.layers[k];
        const std::string lw = index(child(where, "layers"), k);
        for (auto [given, owner, phase_name] : {std::tuple{lo.decode.has_value(), &decode_owner, "decode"},
                                                std::tuple{lo.prefill.has_value(), &prefill_owner, "prefill"}}) {
          if (!given) continue;
          auto [it, inserted] = owner->emplace(l, where);
          if (!inserted) {
            error(lw, fmt::format("layer {} already has {} steps from {}", l, phase_name, it->second));
          }
        }
      }
      out.push_back(std::move(lo));
    }
    return out;
  }

  std::string origin_;
  std::vector<std::string> errors_;
};

using ojson = nlohmann::ordered_json;

// Writes a constant's text back as the JSON value it came from.
ojson constant_json(const std::string& text) {
  if (text == "true") return true;
  if (text == "false") return false;
  ojson v = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!v.is_discarded() && v.is_number()) return v;
  return text;
}

ojson names_json(const std::vector<std::string>& names) {
  if (names.size() == 1) return names[0];
  return ojson(names);
}

ojson step_json(const Step& s) {
  ojson j = ojson::object();
  j["op"] = s.op;
  if (!s.kernel_by_type.empty()) {
    ojson m = ojson::object();
    for (const auto& [type, id] : s.kernel_by_type) m[std::string(format::type_name(type))] = id;
    j["kernel"] = m;
  } else {
    j["kernel"] = s.kernel;
  }
  if (s.entry != "main") j["entry"] = s.entry;
  if (!s.constants.empty() || !s.backend_constants.empty()) {
    ojson c = ojson::object();
    for (const auto& [name, value] : s.constants) c[name] = constant_json(value);
    for (const auto& [backend, values] : s.backend_constants) {
      ojson b = ojson::object();
      for (const auto& [name, value] : values) b[name] = constant_json(value);
      c[backend] = b;
    }
    j["constants"] = c;
  }
  if (!s.weights.empty()) j["weights"] = names_json(s.weights);
  j["input"] = names_json(s.inputs);
  j["output"] = names_json(s.outputs);
  return j;
}

ojson steps_json(const std::vector<Step>& steps) {
  ojson a = ojson::array();
  for (const auto& s : steps) a.push_back(step_json(s));
  return a;
}

}  // namespace

bool is_valid_path_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

const std::vector<Step>& KernelPath::layer_steps(uint32_t layer, bool prefill_phase) const {
  auto covers = [layer](const LayerOverride& o) {
    return std::find(o.layers.begin(), o.layers.end(), layer) != o.layers.end();
  };
  for (const auto& o : layer_overrides) {
    if (!covers(o)) continue;
    if (prefill_phase && o.prefill) return *o.prefill;
    if (!prefill_phase && o.decode) return *o.decode;
  }
  if (prefill_phase && !prefill_given) {
    for (const auto& o : layer_overrides) {
      if (covers(o) && o.decode) return *o.decode;
    }
  }
  return prefill_phase ? prefill : decode;
}

Result<KernelPath> parse_kernel_path(const std::string& text, const std::string& origin) {
  return Parser(origin).parse(text);
}

std::string kernel_path_to_json(const KernelPath& path) {
  ojson j = ojson::object();
  j["id"] = path.id;
  if (!path.name.empty()) j["name"] = path.name;
  if (!path.description.empty()) j["description"] = path.description;
  j["activationDtype"] = std::string(dtype_name(path.activation_dtype));
  j["kvDtype"] = std::string(dtype_name(path.kv_dtype));
  j["weightDtype"] = path.weight_dtype;
  j["preLayer"] = steps_json(path.pre_layer);
  j["decode"] = ojson{{"steps", steps_json(path.decode)}};
  if (path.prefill_given) j["prefill"] = ojson{{"steps", steps_json(path.prefill)}};
  j["postLayer"] = steps_json(path.post_layer);
  j["sampling"] = steps_json(path.sampling);
  if (!path.layer_overrides.empty()) {
    ojson a = ojson::array();
    for (const auto& o : path.layer_overrides) {
      ojson oj = ojson::object();
      oj["layers"] = o.layers;
      if (o.both_phases && o.decode) {
        oj["steps"] = steps_json(*o.decode);
      } else {
        if (o.decode) oj["decode"] = steps_json(*o.decode);
        if (o.prefill) oj["prefill"] = steps_json(*o.prefill);
      }
      a.push_back(oj);
    }
    j["layerOverrides"] = a;
  }
  return j.dump(2) + "\n";
}

}  // namespace kp::kpath
