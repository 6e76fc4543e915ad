#include "kernel_path/describe.h"

#include <fmt/format.h>

#include <algorithm>

#include "kernel_path/suggest.h"

namespace kp::kpath {
namespace {

// Columns a UTF-8 string takes (continuation bytes do not count).
size_t columns(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string names_label(const std::vector<std::string>& names) { return names.empty() ? "(none)" : join_names(names); }

std::string step_summary(const Step& s) {
  std::string out = fmt::format("{}: {}", s.op, kernel_label(s));
  if (s.entry != "main") out += " entry " + s.entry;
  out += fmt::format(", {} -> {}", names_label(s.inputs), names_label(s.outputs));
  if (!s.weights.empty()) out += ", weights " + join_names(s.weights);
  return out;
}

// Field-by-field changes of a step kept in both paths ("" if none).
std::string step_changes(const Step& a, const Step& b) {
  std::vector<std::string> changes;
  auto field = [&](const char* name, const std::string& x, const std::string& y) {
    if (x != y) changes.push_back(fmt::format("{} {} -> {}", name, x.empty() ? "(none)" : x, y.empty() ? "(none)" : y));
  };
  field("kernel", kernel_label(a), kernel_label(b));
  field("entry", a.entry, b.entry);
  field("constants", constants_label(a), constants_label(b));
  field("weights", join_names(a.weights), join_names(b.weights));
  field("input", names_label(a.inputs), names_label(b.inputs));
  field("output", names_label(a.outputs), names_label(b.outputs));
  return join_names(changes, "; ");
}

// The steps of one section: an LCS over the op names pairs the steps both
// paths keep; the rest were removed from a or added in b.
std::string diff_steps(const std::string& title, const std::vector<Step>& a, const std::vector<Step>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> lcs(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i].op == b[j].op ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::string body;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i].op == b[j].op) {
      const std::string changes = step_changes(a[i], b[j]);
      if (!changes.empty()) body += fmt::format("  ~ {}: {}\n", a[i].op, changes);
      ++i;
      ++j;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      body += fmt::format("  - {}\n", step_summary(a[i++]));  // removals first, then what replaces them
    } else {
      body += fmt::format("  + {}\n", step_summary(b[j++]));
    }
  }
  if (body.empty()) return "";
  const std::string counts = n == m ? "" : fmt::format(" {} -> {} steps", n, m);
  return fmt::format("{}:{}\n{}", title, counts, body);
}

std::string override_label(const LayerOverride& o) {
  std::vector<std::string> layers;
  for (auto l : o.layers) layers.push_back(std::to_string(l));
  std::string phases;
  if (o.both_phases) {
    phases = "steps";
  } else {
    if (o.decode) phases += "decode";
    if (o.prefill) phases += phases.empty() ? "prefill" : " + prefill";
  }
  return fmt::format("layers [{}] ({})", join_names(layers), phases);
}

}  // namespace

std::string chain(const std::vector<Step>& steps, size_t width) {
  std::string out, line;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string& op = steps[i].op;
    if (line.empty()) {
      line = op;
      continue;
    }
    const std::string candidate = line + " → " + op;
    const bool last = i + 1 == steps.size();
    if (columns(candidate) + (last ? 0 : 2) > width) {
      out += line + " →\n";
      line = op;
    } else {
      line = candidate;
    }
  }
  if (!line.empty()) out += line + "\n";
  return out;
}

std::string kernel_label(const Step& s) {
  if (!s.pinned_backend.empty()) return fmt::format("{} ({})", s.kernel, s.pinned_backend);
  if (s.kernel_by_type.empty()) return s.kernel;
  std::vector<std::string> parts;
  for (const auto& [type, id] : s.kernel_by_type) parts.push_back(fmt::format("{}: {}", format::type_name(type), id));
  return fmt::format("{{{}}}", join_names(parts));
}

std::string constants_label(const Step& s) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : s.constants) parts.push_back(name + "=" + value);
  for (const auto& [backend, values] : s.backend_constants) {
    std::vector<std::string> inner;
    for (const auto& [name, value] : values) inner.push_back(name + "=" + value);
    parts.push_back(fmt::format("{}: {{{}}}", backend, join_names(inner)));
  }
  return join_names(parts);
}

std::string diff_paths(const KernelPath& a, const KernelPath& b) {
  std::string out;
  auto setting = [&](const char* name, const std::string& x, const std::string& y) {
    if (x != y) out += fmt::format("{}: {} -> {}\n", name, x.empty() ? "(none)" : x, y.empty() ? "(none)" : y);
  };
  setting("name", a.name, b.name);
  setting("activationDtype", std::string(dtype_name(a.activation_dtype)), std::string(dtype_name(b.activation_dtype)));
  setting("kvDtype", std::string(dtype_name(a.kv_dtype)), std::string(dtype_name(b.kv_dtype)));
  setting("weightDtype", a.weight_dtype, b.weight_dtype);
  out += diff_steps("preLayer", a.pre_layer, b.pre_layer);
  out += diff_steps("decode", a.decode, b.decode);
  out += diff_steps("prefill", a.prefill, b.prefill);
  out += diff_steps("postLayer", a.post_layer, b.post_layer);
  out += diff_steps("sampling", a.sampling, b.sampling);
  const size_t n = std::max(a.layer_overrides.size(), b.layer_overrides.size());
  for (size_t i = 0; i < n; ++i) {
    const std::string title = fmt::format("layerOverrides[{}]", i);
    if (i >= a.layer_overrides.size()) {
      out += fmt::format("{}: + {}\n", title, override_label(b.layer_overrides[i]));
      continue;
    }
    if (i >= b.layer_overrides.size()) {
      out += fmt::format("{}: - {}\n", title, override_label(a.layer_overrides[i]));
      continue;
    }
    const LayerOverride& x = a.layer_overrides[i];
    const LayerOverride& y = b.layer_overrides[i];
    if (override_label(x) != override_label(y))
      out += fmt::format("{}: {} -> {}\n", title, override_label(x), override_label(y));
    static const std::vector<Step> kNone;
    out += diff_steps(title + ".decode", x.decode ? *x.decode : kNone, y.decode ? *y.decode : kNone);
    if (!x.both_phases || !y.both_phases) {
      out += diff_steps(title + ".prefill", x.prefill ? *x.prefill : kNone, y.prefill ? *y.prefill : kNone);
    }
  }
  return out;
}

}  // namespace kp::kpath
