// One step of an expanded path: its kernel (by id, by the first weight's type,
// or by a pinned backend file), entry and implementation, the slots and
// weights bound to the kernel's bindings, shape inference and its constants.
//
// Shapes: a binding's [rows, cols] are symbols or numbers. Symbols unify
// across the step's bindings with the shapes of the slots read and of the
// weights ([rows, cols] = [ne1 * ne2 * ..., ne0]); "CTX" is the context size,
// and "T" the batch rows unless a binding ties it to a number (the steps on
// the last row's logits run with T = 1). Out bindings then give the shapes of
// the slots they write.
#include <algorithm>
#include <filesystem>

#include "kernel_path/constants.h"
#include "kernel_path/suggest.h"
#include "kernel_path/validate_internal.h"

namespace kp::kpath::detail {
namespace {

bool is_literal(const std::string& s) {
  return !s.empty() && s.size() < 12 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct Bound {
  Dim dim;
  std::string from;  // what fixed it: "input[0] 'normed'", "the context size"
};

// Symbol bindings of one step. In `one_row` mode (the sampling steps, which
// always run on a single row) T-relative dims are compared at T = 1.
class Unifier {
 public:
  explicit Unifier(bool one_row) : one_row_(one_row) {}

  bool same(const Dim& a, const Dim& b) const { return one_row_ ? a.eval(1) == b.eval(1) : a == b; }

  void bind(const std::string& name, Dim dim, std::string from) {
    if (one_row_) dim = Dim{dim.eval(1), false};
    symbols_[name] = Bound{dim, std::move(from)};
  }

  // Unifies one dimension expression of a binding with an actual dimension.
  // nullopt if they agree; otherwise the explanation of the expected value
  // (" with K = 256 (from input[0] 'normed')", or "" for a number).
  std::optional<std::string> unify(const std::string& expr, const Dim& actual, const std::string& from) {
    if (is_literal(expr)) {
      if (same(Dim{std::stoll(expr), false}, actual)) return std::nullopt;
      return std::string();
    }
    auto it = symbols_.find(expr);
    if (it == symbols_.end()) {
      bind(expr, actual, from);
      return std::nullopt;
    }
    if (same(it->second.dim, actual)) return std::nullopt;
    return fmt::format(" with {} = {} (from {})", expr, dim_text(it->second.dim), it->second.from);
  }

  // The value of a dimension expression of an output; T defaults to the batch rows.
  std::optional<Dim> eval(const std::string& expr) {
    if (is_literal(expr)) return Dim{std::stoll(expr), false};
    if (auto it = symbols_.find(expr); it != symbols_.end()) return it->second.dim;
    if (expr == "T") {
      bind("T", Dim{1, true}, "the batch rows");
      return symbols_["T"].dim;
    }
    return std::nullopt;
  }

  const std::map<std::string, Bound>& symbols() const { return symbols_; }

 private:
  bool one_row_;
  std::map<std::string, Bound> symbols_;
};

std::string shape_expr(const std::vector<std::string>& shape) {
  return fmt::format("[{}, {}]", shape.at(0), shape.at(1));
}

std::string kind_plural(BindingKind k) {
  switch (k) {
    case BindingKind::In: return "inputs";
    case BindingKind::Weight: return "weights";
    default: return "outputs";
  }
}

// " (did you mean 'gemm'?)", or " (it has: last_row, main)" when nothing is close.
std::string entry_hint(const KernelDesc& k, const std::string& entry) {
  std::vector<std::string> entries;
  for (const auto& [e, d] : k.entries) entries.push_back(e);
  const std::string hint = did_you_mean(entry, entries);
  return hint.empty() ? fmt::format(" (it has: {})", join_names(entries)) : hint;
}

std::string backends_of(const KernelDesc& k) {
  std::vector<std::string> names;
  for (const auto& [b, impl] : k.impls) names.push_back(b);
  return names.empty() ? "no backend implements it" : "implemented for: " + join_names(names);
}

}  // namespace

const KernelDesc* Validator::find_kernel(const std::string& id, const std::string& where) {
  if (const KernelDesc* k = registry_.find(id)) return k;
  const std::string hint = did_you_mean(id, kernel_ids_);
  errors_.add(where, fmt::format("unknown kernel '{}'{}", id,
                                 hint.empty() ? " (`kpath kernels list` shows the registry)" : hint));
  return nullptr;
}

const KernelDesc* Validator::find_pinned(const Step& step) {
  const std::string where = step.location + ".kernel";
  std::vector<const KernelDesc*> matches;
  std::vector<std::string> files;
  for (const auto& [id, k] : registry_.kernels()) {
    auto it = k.impls.find(step.pinned_backend);
    if (it == k.impls.end()) continue;
    const std::string file = std::filesystem::path(it->second.file).filename().string();
    files.push_back(file);
    if (file == step.kernel) matches.push_back(&k);
  }
  if (matches.empty()) {
    errors_.add(where, fmt::format("no {} implementation in the registry uses the file '{}'{}", step.pinned_backend,
                                   step.kernel, did_you_mean(step.kernel, files)));
    return nullptr;
  }
  if (matches.size() > 1) {
    std::vector<std::string> ids;
    for (const auto* k : matches) ids.push_back(k->id);
    errors_.add(where, fmt::format("'{}' implements several kernels ({}); name the kernel id instead", step.kernel,
                                   join_names(ids)));
    return nullptr;
  }
  if (step.pinned_backend != options_.backend) {
    errors_.add(where, fmt::format("'{}' is a {} kernel file, so this step runs only on {}, not on the {} backend",
                                   step.kernel, step.pinned_backend, step.pinned_backend, options_.backend));
    return nullptr;
  }
  return matches[0];
}

const KernelDesc* Validator::choose_kernel(const Step& step, const std::vector<std::optional<WeightRef>>& weights,
                                           bool* failed) {
  const std::string where = step.location + ".kernel";
  if (!step.pinned_backend.empty()) return find_pinned(step);
  if (step.kernel_by_type.empty()) return find_kernel(step.kernel, where);

  // Every kernel of the map must exist and have the step's entry, whichever the model needs.
  for (const auto& [type, id] : step.kernel_by_type) {
    const KernelDesc* k = find_kernel(id, fmt::format("{}.{}", where, format::type_name(type)));
    if (k == nullptr) {
      *failed = true;
    } else if (!k->entries.count(step.entry)) {
      errors_.add(step.location + ".entry",
                  fmt::format("kernel '{}' (for {} weights) has no entry '{}'{}", id, format::type_name(type),
                              step.entry, entry_hint(*k, step.entry)));
      *failed = true;
    }
  }
  if (step.weights.empty()) {
    errors_.add(where,
                "a per-type kernel map chooses by the type of the step's first weight, but the step has "
                "no weights");
    return nullptr;
  }
  if (!weights[0]) return nullptr;  // already reported
  auto it = step.kernel_by_type.find(weights[0]->type);
  if (it == step.kernel_by_type.end()) {
    std::vector<std::string> types;
    for (const auto& [type, id] : step.kernel_by_type) types.emplace_back(format::type_name(type));
    const std::string converted =
        path_.weight_dtype == "native" ? "" : fmt::format(" (weightDtype {})", path_.weight_dtype);
    errors_.add_once(where + "|map", where,
                     fmt::format("tensor {} is {}{} but the step names kernels for {}", weights[0]->tensor,
                                 format::type_name(weights[0]->type), converted, join_names(types)));
    return nullptr;
  }
  return registry_.find(it->second);
}

const KernelImpl* Validator::check_impl(const KernelDesc& kernel, const Step& step) {
  auto it = kernel.impls.find(options_.backend);
  if (it == kernel.impls.end()) {
    errors_.add(step.location + ".kernel", fmt::format("kernel '{}' has no {} implementation ({})", kernel.id,
                                                       options_.backend, backends_of(kernel)));
    return nullptr;
  }
  const KernelImpl& impl = it->second;
  // The CPU backend's compiled-in implementations may list no entries: they run every entry.
  if ((!impl.entries.empty() || options_.backend != "cpu") && !impl.entries.count(step.entry)) {
    std::vector<std::string> entries;
    for (const auto& [e, d] : impl.entries) entries.push_back(e);
    errors_.add(step.location + ".entry",
                fmt::format("kernel '{}' ({}) does not implement entry '{}' (it implements: {})", kernel.id,
                            options_.backend, step.entry, entries.empty() ? "none" : join_names(entries)));
    return nullptr;
  }
  bool ok = true;
  for (const auto& f : impl.features) {
    if (options_.device_features.count(f)) continue;
    std::vector<std::string> offered(options_.device_features.begin(), options_.device_features.end());
    errors_.add(step.location + ".kernel",
                fmt::format("kernel '{}' ({}) needs the device feature '{}', which the device lacks (it offers: {})",
                            kernel.id, options_.backend, f, offered.empty() ? "none" : join_names(offered)));
    ok = false;
  }
  return ok ? &impl : nullptr;
}

bool Validator::check_constants(const KernelDesc& kernel, const KernelImpl* impl, const Step& step,
                                const std::map<std::string, Dim>& symbols, PlannedStep& out) {
  // Constants are compile-time: their expressions see the model values and the
  // step's fixed dimensions, never the batch rows.
  SymbolTable table;
  options_.model.add_to(table);
  for (const auto& [name, dim] : symbols) {
    if (!dim.is_t) table[name] = ExprValue{static_cast<double>(dim.value), true};
  }
  const std::string where = step.location + ".constants";
  auto resolved = resolve_constants(kernel, impl, step.constants, table, where);
  if (!resolved.ok()) {
    errors_.add("", resolved.error().message);
    return false;
  }
  std::map<std::string, std::string> overrides = step.constants;
  if (auto b = step.backend_constants.find(options_.backend); b != step.backend_constants.end()) {
    for (const auto& [name, value] : b->second) overrides[name] = value;
    resolved = resolve_constants(kernel, impl, overrides, table, where + "." + options_.backend);
    if (!resolved.ok()) {
      errors_.add("", resolved.error().message);
      return false;
    }
  }
  bool ok = true;
  // Another backend's values are checked against that backend's implementation.
  for (const auto& [backend, values] : step.backend_constants) {
    if (backend == options_.backend) continue;
    auto other = kernel.impls.find(backend);
    if (other == kernel.impls.end()) continue;
    auto r = resolve_constants(kernel, &other->second, values, table, where + "." + backend);
    if (!r.ok()) {
      errors_.add("", r.error().message);
      ok = false;
    }
  }
  out.constant_overrides = overrides;

  // The dispatch grid must evaluate; checked here at T = 1.
  auto e = impl->entries.find(step.entry);
  if (e == impl->entries.end()) return ok;
  add_constants(*resolved, table);
  for (const auto& [name, dim] : symbols) table[name] = ExprValue{static_cast<double>(dim.eval(1)), true};
  const std::string gw =
      fmt::format("{}: kernel '{}' ({}) entry '{}'", step.location, kernel.id, impl->backend, step.entry);
  for (auto [exprs, what] : {std::pair{&e->second.grid, " grid"}, std::pair{&e->second.block, " block"}}) {
    if (exprs->empty()) continue;
    const std::string where_dims = gw + what;
    auto dims = eval_dims(*exprs, table, where_dims);
    if (!dims.ok()) {
      // eval_dims names `where_dims` for a bad value, not for an expression error.
      const std::string& m = dims.error().message;
      errors_.add("", m.starts_with(where_dims) ? m : where_dims + ": " + m);
      ok = false;
    }
  }
  return ok;
}

std::optional<PlannedStep> Validator::plan_step(const Step& step, const std::string& section, int32_t layer,
                                                PhaseState& phase) {
  const std::string& loc = step.location;
  bool failed = false;
  std::vector<std::string> inputs, outputs;
  for (const auto& s : step.inputs) inputs.push_back(substitute(s, layer));
  for (const auto& s : step.outputs) outputs.push_back(substitute(s, layer));
  std::vector<std::optional<WeightRef>> weights;
  for (size_t i = 0; i < step.weights.size(); ++i) {
    weights.push_back(weight(step.weights[i], fmt::format("{}.weights[{}]", loc, i), layer));
    failed = failed || !weights.back();
  }
  // A step that fails still counts as writing its outputs (shape unknown), so
  // the steps after it are not blamed for reading them.
  auto give_up = [&]() -> std::optional<PlannedStep> {
    for (const auto& s : inputs) phase.read.insert(s);
    for (const auto& s : outputs) {
      phase.written.insert(s);
      if (!slots_.count(s)) {
        SlotState st;
        st.info.name = s;
        st.known = false;
        slots_[s] = st;
      }
    }
    return std::nullopt;
  };

  const KernelDesc* kernel = choose_kernel(step, weights, &failed);
  if (kernel == nullptr) return give_up();
  auto entry = kernel->entries.find(step.entry);
  if (entry == kernel->entries.end()) {
    if (!step.kernel_by_type.empty()) return give_up();  // choose_kernel reported it
    errors_.add(loc + ".entry", fmt::format("kernel '{}' has no entry '{}'{}", kernel->id, step.entry,
                                            entry_hint(*kernel, step.entry)));
    return give_up();
  }
  const KernelImpl* impl = check_impl(*kernel, step);
  failed = failed || impl == nullptr;

  // Bindings by class, in the kernel's order: inputs feed In, outputs feed Out
  // and InOut, weights feed Weight.
  const auto& bindings = kernel->bindings;
  std::vector<size_t> ins, outs, wts;
  for (size_t i = 0; i < bindings.size(); ++i) {
    switch (bindings[i].kind) {
      case BindingKind::In: ins.push_back(i); break;
      case BindingKind::Weight: wts.push_back(i); break;
      default: outs.push_back(i); break;
    }
  }
  bool counts_ok = true;
  for (auto [given, wanted, field] :
       {std::tuple{step.inputs.size(), &ins, "input"}, std::tuple{step.outputs.size(), &outs, "output"},
        std::tuple{step.weights.size(), &wts, "weights"}}) {
    if (given == wanted->size()) continue;
    std::vector<std::string> names;
    for (size_t b : *wanted) names.push_back(bindings[b].name);
    const BindingKind kind = wanted->empty() ? BindingKind::In : bindings[wanted->front()].kind;
    const std::string plural = wanted->empty() ? std::string(field) : kind_plural(kind);
    errors_.add(loc + "." + field,
                fmt::format("kernel '{}' takes {} {}{}, the step gives {}", kernel->id, wanted->size(), plural,
                            names.empty() ? "" : " (" + join_names(names) + ")", given));
    counts_ok = false;
  }
  if (!counts_ok) return give_up();

  // Per binding: the slot or weight bound to it, where it is in the JSON and a label for messages.
  // `written_of` is the name as the path writes it ("k_cache.{L}"): messages use
  // it, so that a problem repeated in every layer is reported once.
  std::vector<std::string> name_of(bindings.size()), written_of(bindings.size()), where_of(bindings.size()),
      label_of(bindings.size());
  for (size_t i = 0; i < ins.size(); ++i) {
    name_of[ins[i]] = inputs[i];
    written_of[ins[i]] = step.inputs[i];
    where_of[ins[i]] = fmt::format("{}.input[{}]", loc, i);
    label_of[ins[i]] = fmt::format("input[{}] '{}'", i, step.inputs[i]);
  }
  for (size_t i = 0; i < outs.size(); ++i) {
    name_of[outs[i]] = outputs[i];
    written_of[outs[i]] = step.outputs[i];
    where_of[outs[i]] = fmt::format("{}.output[{}]", loc, i);
    label_of[outs[i]] = fmt::format("output[{}] '{}'", i, step.outputs[i]);
  }
  for (size_t i = 0; i < wts.size(); ++i) {
    name_of[wts[i]] = weights[i] ? weights[i]->tensor : step.weights[i];
    written_of[wts[i]] = step.weights[i];
    where_of[wts[i]] = fmt::format("{}.weights[{}]", loc, i);
    label_of[wts[i]] = fmt::format("weights[{}] '{}'", i, name_of[wts[i]]);
  }
  auto shape_of = [&](size_t b) -> const std::vector<std::string>& {
    auto s = entry->second.shapes.find(bindings[b].name);
    return s != entry->second.shapes.end() ? s->second : bindings[b].shape;
  };
  auto dtype_of = [&](size_t b) {
    return bindings[b].dtype == "kv" ? path_.kv_dtype : parse_dtype(bindings[b].dtype).value_or(SlotDType::F32);
  };

  Unifier u(section == "sampling");
  u.bind("CTX", Dim{options_.ctx, false}, "the context size");
  if (section == "sampling") u.bind("T", Dim{1, false}, "the sampling steps, which run on one row");

  // Checks a slot bound to binding b against its declared dtype and shape.
  // `tainted`: some binding's shape is unknown (its slot or weight failed
  // earlier), so symbols may be missing; what depends on them is not reported.
  bool tainted = false;
  auto check_slot = [&](size_t b, const SlotState& st) {
    if (!st.known) {
      tainted = true;
      return;
    }
    const SlotDType want = dtype_of(b);
    if (st.info.dtype != want) {
      errors_.add(where_of[b], fmt::format("slot '{}' is {}{} but kernel '{}' binding '{}' needs {}", written_of[b],
                                           dtype_name(st.info.dtype), st.info.persistent ? " (the path's kvDtype)" : "",
                                           kernel->id, bindings[b].name, dtype_name(want)));
      failed = true;
      return;  // one problem per binding
    }
    const auto& shape = shape_of(b);
    const Dim actual[2] = {st.info.rows, Dim{st.info.cols, false}};
    for (int d = 0; d < 2; ++d) {
      if (auto why = u.unify(shape[d], actual[d], label_of[b])) {
        errors_.add(where_of[b], fmt::format("slot '{}' is {} but kernel '{}' binding '{}' needs {}{}", written_of[b],
                                             shape_text(actual[0], actual[1]), kernel->id, bindings[b].name,
                                             shape_expr(shape), *why));
        failed = true;
        break;
      }
    }
  };
  // A KV cache slot is created by its first binding: [CTX, cols] in the path's kvDtype.
  auto ensure_cache = [&](size_t b, int64_t cache) -> bool {
    const std::string& s = name_of[b];
    if (cache >= options_.model.n_layer) {
      errors_.add(where_of[b], fmt::format("slot '{}' is the KV cache of layer {}, but the model has {} layers", s,
                                           cache, options_.model.n_layer));
      failed = true;
      return false;
    }
    if (slots_.count(s)) return true;
    const auto& shape = shape_of(b);
    auto cols = u.eval(shape[1]);
    if (!cols || cols->is_t) {
      failed = true;
      if (tainted) return false;
      errors_.add(where_of[b], fmt::format("cannot infer the columns of the KV cache slot '{}' from kernel '{}' "
                                           "binding '{}' {}",
                                           written_of[b], kernel->id, bindings[b].name, shape_expr(shape)));
      failed = true;
      return false;
    }
    SlotState st;
    st.info = SlotInfo{s, path_.kv_dtype, Dim{options_.ctx, false}, cols->value, /*persistent=*/true, false};
    st.origin = fmt::format("the KV cache of layer {}", cache);
    slots_[s] = st;
    return true;
  };

  // 1. Slots read by In bindings (KV caches below, with the InOut bindings).
  for (size_t b : ins) {
    const std::string& s = name_of[b];
    phase.read.insert(s);
    if (cache_layer(s) >= 0) continue;
    const bool host = ensure_host_slot(s);
    if (!host && !phase.written.count(s)) {
      std::vector<std::string> known(phase.written.begin(), phase.written.end());
      for (const char* h : {"token_ids", "positions", "history"}) known.emplace_back(h);
      errors_.add(where_of[b],
                  fmt::format("slot '{}' is read before any step writes it{}", written_of[b], did_you_mean(s, known)));
      failed = true;
      tainted = true;
      continue;
    }
    check_slot(b, slots_.at(s));
  }
  // 2. Weights: the type the kernel sees must be one the binding accepts.
  for (size_t i = 0; i < wts.size(); ++i) {
    if (!weights[i]) {
      tainted = true;
      continue;
    }
    const size_t b = wts[i];
    const WeightRef& w = *weights[i];
    const auto& types = bindings[b].weight_types;
    if (std::find(types.begin(), types.end(), w.type) == types.end()) {
      std::vector<std::string> names;
      for (auto t : types) names.emplace_back(format::type_name(t));
      // Reported for the first layer only: the template is the same in every layer.
      errors_.add_once(
          where_of[b] + "|type", where_of[b],
          fmt::format("tensor {} is {}{} but kernel '{}' binding '{}' accepts {}", w.tensor, format::type_name(w.type),
                      path_.weight_dtype == "native" ? "" : fmt::format(" (weightDtype {})", path_.weight_dtype),
                      kernel->id, bindings[b].name, join_names(names)));
      failed = true;
    }
    const auto& shape = shape_of(b);
    const Dim actual[2] = {Dim{w.rows, false}, Dim{w.cols, false}};
    for (int d = 0; d < 2; ++d) {
      if (auto why = u.unify(shape[d], actual[d], label_of[b])) {
        errors_.add_once(where_of[b] + "|shape", where_of[b],
                         fmt::format("tensor {} is [{}, {}] but kernel '{}' binding '{}' needs {}{}", w.tensor, w.rows,
                                     w.cols, kernel->id, bindings[b].name, shape_expr(shape), *why));
        failed = true;
        break;
      }
    }
  }
  // 3. KV caches (read by In or InOut bindings) and other InOut slots.
  for (size_t b = 0; b < bindings.size(); ++b) {
    const bool inout = bindings[b].kind == BindingKind::InOut;
    if (!inout && bindings[b].kind != BindingKind::In) continue;
    const std::string& s = name_of[b];
    const int64_t cache = cache_layer(s);
    if (cache >= 0) {
      if (ensure_cache(b, cache)) check_slot(b, slots_.at(s));
    } else if (inout) {
      phase.read.insert(s);
      if (!ensure_host_slot(s) && !phase.written.count(s)) {
        errors_.add(where_of[b], fmt::format("slot '{}' is read (binding '{}' reads and writes it) before any step "
                                             "writes it",
                                             written_of[b], bindings[b].name));
        failed = true;
        tainted = true;
      } else {
        check_slot(b, slots_.at(s));
      }
    }
    if (inout) phase.written.insert(s);
  }
  // 4. Out bindings: the slots they write take the binding's shape and dtype.
  for (size_t b : outs) {
    if (bindings[b].kind != BindingKind::Out) continue;
    const std::string& s = name_of[b];
    const auto& shape = shape_of(b);
    auto rows = u.eval(shape[0]);
    auto cols = u.eval(shape[1]);
    phase.written.insert(s);
    if (!rows || !cols) {
      failed = true;
      if (tainted) continue;
      errors_.add(where_of[b], fmt::format("kernel '{}' binding '{}' {} has a dimension no input or weight of the "
                                           "step determines",
                                           kernel->id, bindings[b].name, shape_expr(shape)));
      continue;
    }
    const SlotDType dtype = dtype_of(b);
    const int64_t cache = cache_layer(s);
    if (cache >= 0 && !ensure_cache(b, cache)) continue;
    ensure_host_slot(s);
    if (auto it = slots_.find(s); it != slots_.end()) {
      const SlotState& st = it->second;
      if (!st.known) continue;
      if (!u.same(st.info.rows, *rows) || !u.same(Dim{st.info.cols, false}, *cols)) {
        errors_.add(where_of[b], fmt::format("slot '{}' is {} ({}) but kernel '{}' binding '{}' writes {}",
                                             written_of[b], shape_text(st.info.rows, Dim{st.info.cols, false}),
                                             st.origin, kernel->id, bindings[b].name, shape_text(*rows, *cols)));
        failed = true;
      } else if (st.info.dtype != dtype) {
        errors_.add(where_of[b],
                    fmt::format("slot '{}' is {} ({}) but kernel '{}' binding '{}' writes {}", written_of[b],
                                dtype_name(st.info.dtype), st.origin, kernel->id, bindings[b].name, dtype_name(dtype)));
        failed = true;
      }
    } else if (cols->is_t) {
      errors_.add(where_of[b], fmt::format("kernel '{}' binding '{}' writes {}: slot columns cannot depend on T",
                                           kernel->id, bindings[b].name, shape_text(*rows, *cols)));
      failed = true;
      continue;
    } else {
      SlotState st;
      st.info = SlotInfo{s, dtype, *rows, cols->value, false, false};
      st.origin = "written by " + loc;
      slots_[s] = st;
    }
    const SlotState& st = slots_.at(s);
    if (!st.info.persistent && !st.info.host_written && bindings[b].dtype != "i32" && dtype != path_.activation_dtype) {
      errors_.add(where_of[b],
                  fmt::format("kernel '{}' writes {} activations to slot '{}' but the path's "
                              "activationDtype is {}",
                              kernel->id, dtype_name(dtype), written_of[b], dtype_name(path_.activation_dtype)));
      failed = true;
    }
    if (s == "logits" && !(rows->value == 1 && !rows->is_t)) {
      errors_.add(where_of[b], fmt::format("slot 'logits' holds the last position only, [1, n_vocab], but kernel "
                                           "'{}' binding '{}' writes {} (the final norm's entry 'last_row' keeps "
                                           "only the last row)",
                                           kernel->id, bindings[b].name, shape_text(*rows, *cols)));
      failed = true;
    }
  }
  // 5. A written slot may alias an input only where the kernel declares it in place.
  for (size_t w = 0; w < bindings.size(); ++w) {
    const BindingKind wk = bindings[w].kind;
    if (wk != BindingKind::Out && wk != BindingKind::InOut) continue;
    for (size_t o = 0; o < bindings.size(); ++o) {
      if (o == w || bindings[o].kind == BindingKind::Weight || name_of[o] != name_of[w]) continue;
      if (bindings[o].kind == BindingKind::In) {
        if (wk == BindingKind::Out && bindings[w].inplace_of == bindings[o].name) continue;
        errors_.add(where_of[w],
                    fmt::format("kernel '{}' cannot write slot '{}' in place of its input '{}' ({})", kernel->id,
                                written_of[w], bindings[o].name,
                                bindings[w].inplace_of.empty()
                                    ? fmt::format("binding '{}' is not declared in place", bindings[w].name)
                                    : fmt::format("binding '{}' may only replace '{}'", bindings[w].name,
                                                  bindings[w].inplace_of)));
        failed = true;
      } else if (o < w) {
        errors_.add(where_of[w], fmt::format("slot '{}' is bound to both '{}' and '{}' of kernel '{}'", written_of[w],
                                             bindings[o].name, bindings[w].name, kernel->id));
        failed = true;
      }
    }
  }

  PlannedStep out;
  std::map<std::string, Dim> symbols;
  for (const auto& [name, bound] : u.symbols()) symbols[name] = bound.dim;
  if (!symbols.count("T")) symbols["T"] = Dim{1, true};
  if (impl != nullptr && !tainted && !check_constants(*kernel, impl, step, symbols, out)) failed = true;
  if (failed) return give_up();

  out.op = step.op;
  out.phase_section = section;
  out.layer = layer;
  out.kernel = kernel;
  out.impl = impl;
  out.entry = step.entry;
  out.symbols = std::move(symbols);
  out.location = layer >= 0 ? fmt::format("{} (layer {})", loc, layer) : loc;
  for (size_t b = 0; b < bindings.size(); ++b) {
    PlannedBinding pb;
    pb.kind = bindings[b].kind;
    if (pb.kind == BindingKind::Weight) {
      pb.tensor = name_of[b];
    } else {
      pb.slot = name_of[b];
    }
    out.bindings.push_back(std::move(pb));
  }
  for (const auto& w : weights) {
    plan_.weights.insert(w->tensor);
    plan_.weight_types[w->tensor] = w->type;
  }
  return out;
}

}  // namespace kp::kpath::detail
