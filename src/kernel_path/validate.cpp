// validate_path: expands a kernel path over the model's layers for both phases
// and checks every step against the registry, the model and the device
// (validate_step.cpp). Slots get their dtype and [rows, cols] from the steps
// that write them; rows are T (the batch rows) or a number.
#include <algorithm>
#include <cctype>

#include "kernel_path/suggest.h"
#include "kernel_path/validate_internal.h"

namespace kp::kpath {
namespace detail {

void ErrorList::add(const std::string& where, const std::string& what) {
  std::string line =
      where.empty() ? fmt::format("{}: {}", origin_, what) : fmt::format("{}: {}: {}", origin_, where, what);
  if (seen_.insert(line).second) lines_.push_back(std::move(line));
}

void ErrorList::add_once(const std::string& key, const std::string& where, const std::string& what) {
  if (keys_.insert(key).second) add(where, what);
}

std::string ErrorList::joined() const { return join_names(lines_, "\n"); }

std::string dim_text(const Dim& d) {
  if (!d.is_t) return std::to_string(d.value);
  return d.value == 1 ? "T" : fmt::format("{}T", d.value);
}

std::string shape_text(const Dim& rows, const Dim& cols) {
  return fmt::format("[{}, {}]", dim_text(rows), dim_text(cols));
}

Validator::Validator(const KernelPath& path, const Registry& registry, const format::GgufFile& model,
                     const ValidateOptions& options)
    : path_(path),
      registry_(registry),
      model_(model),
      options_(options),
      errors_(path.source.empty() ? path.id : path.source) {
  for (const auto& [id, k] : registry.kernels()) kernel_ids_.push_back(id);
}

Result<Plan> Validator::run() {
  plan_.path = &path_;
  plan_.backend = options_.backend;
  plan_.model = options_.model;
  plan_.ctx = options_.ctx;
  if (options_.ctx < 1) errors_.add("", fmt::format("the context size must be at least 1 (got {})", options_.ctx));
  if (options_.history < 1) {
    errors_.add("", fmt::format("the token history must hold at least 1 row (got {})", options_.history));
  }
  if (!errors_.empty()) return Error{errors_.joined()};
  check_overrides();
  expand_phase(/*prefill=*/false, plan_.decode);
  expand_phase(/*prefill=*/true, plan_.prefill);
  if (!errors_.empty()) return Error{errors_.joined()};
  for (const auto& [name, slot] : slots_) plan_.slots[name] = slot.info;
  return std::move(plan_);
}

void Validator::check_overrides() {
  const uint32_t n_layer = options_.model.n_layer;
  for (const auto& o : path_.layer_overrides) {
    for (size_t k = 0; k < o.layers.size(); ++k) {
      if (o.layers[k] >= n_layer) {
        errors_.add(fmt::format("{}.layers[{}]", o.location, k),
                    n_layer == 0 ? fmt::format("layer {} does not exist (the model has no layers)", o.layers[k])
                                 : fmt::format("layer {} does not exist (the model has {} layers, 0..{})", o.layers[k],
                                               n_layer, n_layer - 1));
      }
    }
  }
}

void Validator::expand_phase(bool prefill, std::vector<PlannedStep>& out) {
  PhaseState phase;
  phase.prefill = prefill;
  expand_section(path_.pre_layer, "preLayer", -1, phase, out);
  for (uint32_t l = 0; l < options_.model.n_layer; ++l) {
    expand_section(path_.layer_steps(l, prefill), "layer", static_cast<int32_t>(l), phase, out);
  }
  expand_section(path_.post_layer, "postLayer", -1, phase, out);
  expand_section(path_.sampling, "sampling", -1, phase, out);
  check_phase_end(phase);
}

void Validator::expand_section(const std::vector<Step>& steps, const std::string& section, int32_t layer,
                               PhaseState& phase, std::vector<PlannedStep>& out) {
  for (const auto& step : steps) {
    if (auto planned = plan_step(step, section, layer, phase)) out.push_back(std::move(*planned));
  }
}

void Validator::check_phase_end(const PhaseState& phase) {
  if (!phase.written.count("logits")) {
    errors_.add("postLayer",
                "no step writes the slot 'logits' (the steps after the layers end with the "
                "logits of the last position, [1, n_vocab])");
  }
  if (!phase.read.count("token_ids")) {
    errors_.add("preLayer",
                "no step reads the slot 'token_ids' (the host writes the batch's token ids there; "
                "the embedding reads them)");
  }
}

std::string Validator::substitute(const std::string& text, int32_t layer) const {
  std::string out = text;
  if (layer < 0) return out;
  for (size_t p = out.find("{L}"); p != std::string::npos; p = out.find("{L}", p)) {
    const std::string l = std::to_string(layer);
    out.replace(p, 3, l);
    p += l.size();
  }
  return out;
}

std::optional<WeightRef> Validator::weight(const std::string& tmpl, const std::string& where, int32_t layer) {
  const std::string name = substitute(tmpl, layer);
  const std::string at = layer >= 0 && name != tmpl ? fmt::format(" at layer {}", layer) : "";
  std::string tensor = name;
  if (options_.resolve_weight) {
    auto r = options_.resolve_weight(name);
    if (!r.ok()) {
      errors_.add_once(where + "|resolve", where, fmt::format("'{}'{}: {}", tmpl, at, r.error().message));
      return std::nullopt;
    }
    tensor = *r;
  }
  const format::GgufTensorInfo* t = model_.tensor(tensor);
  if (t == nullptr) {
    std::vector<std::string> names;
    for (const auto& info : model_.tensors()) names.push_back(info.name);
    errors_.add_once(where + "|missing", where,
                     fmt::format("'{}'{} is the tensor '{}', which {} does not contain{}", tmpl, at, tensor,
                                 model_.name(), did_you_mean(tensor, names)));
    return std::nullopt;
  }
  WeightRef w;
  w.tensor = tensor;
  w.cols = static_cast<int64_t>(t->cols());
  w.rows = static_cast<int64_t>(t->rows());
  w.type = t->type;
  // weightDtype f32 / f16: every matrix (2-D) not already in a kernel-readable
  // float type is converted once at load; norms (1-D) stay as stored.
  const bool matrix = t->dims.size() >= 2;
  format::GgmlType target = t->type;
  if (matrix && path_.weight_dtype == "f32") {
    target = format::GgmlType::F32;
  } else if (matrix && path_.weight_dtype == "f16" && t->type != format::GgmlType::F32) {
    target = format::GgmlType::F16;
  }
  if (target != t->type && !format::traits(t->type).supported) {
    errors_.add_once(where + "|convert", where,
                     fmt::format("tensor '{}' is {}, which kpath cannot convert to {} (weightDtype {})", tensor,
                                 format::type_name(t->type), format::type_name(target), path_.weight_dtype));
    return std::nullopt;
  }
  w.type = target;
  return w;
}

bool Validator::ensure_host_slot(const std::string& name) {
  SlotInfo info;
  info.name = name;
  info.host_written = true;
  info.dtype = SlotDType::I32;
  info.cols = 1;
  std::string origin;
  if (name == "token_ids") {
    info.rows = Dim{1, true};
    origin = "the host-written token ids";
  } else if (name == "positions") {
    info.rows = Dim{1, true};
    origin = "the host-written positions";
  } else if (name == "history") {
    info.rows = Dim{options_.history, false};
    origin = "the host-written token history";
  } else {
    return false;
  }
  if (!slots_.count(name)) slots_[name] = SlotState{info, true, origin};
  return true;
}

int64_t Validator::cache_layer(const std::string& name) {
  std::string_view rest;
  if (name.starts_with("k_cache.")) {
    rest = std::string_view(name).substr(8);
  } else if (name.starts_with("v_cache.")) {
    rest = std::string_view(name).substr(8);
  } else {
    return -1;
  }
  if (rest.empty() || rest.size() > 6 || (rest.size() > 1 && rest[0] == '0')) return -1;
  int64_t layer = 0;
  for (char c : rest) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    layer = layer * 10 + (c - '0');
  }
  return layer;
}

}  // namespace detail

Result<Plan> validate_path(const KernelPath& path, const Registry& registry, const format::GgufFile& model,
                           const ValidateOptions& options) {
  return detail::Validator(path, registry, model, options).run();
}

}  // namespace kp::kpath
