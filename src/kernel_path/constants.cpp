#include "kernel_path/constants.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace kp::kpath {
namespace {

Result<ConstValue> convert(const ConstantDesc& c, double v, bool is_integer, const std::string& where) {
  switch (c.type) {
    case ConstType::U32:
      if (!is_integer || v < 0 || v > std::numeric_limits<uint32_t>::max()) {
        return make_error("{}.{}: expected an unsigned 32-bit integer, got {}", where, c.name, v);
      }
      return ConstValue{static_cast<uint32_t>(v)};
    case ConstType::I32:
      if (!is_integer || v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
        return make_error("{}.{}: expected a 32-bit integer, got {}", where, c.name, v);
      }
      return ConstValue{static_cast<int32_t>(v)};
    case ConstType::F32:
      if (!std::isfinite(v)) return make_error("{}.{}: expected a finite number", where, c.name);
      return ConstValue{static_cast<float>(v)};
    case ConstType::Bool:
      if (!is_integer || (v != 0 && v != 1)) {
        return make_error("{}.{}: expected true or false, got {}", where, c.name, v);
      }
      return ConstValue{v != 0};
  }
  return make_error("{}.{}: unknown constant type", where, c.name);
}

Result<ConstValue> parse_override(const ConstantDesc& c, const std::string& text, const SymbolTable& symbols,
                                  const std::string& where) {
  if (text == "true" || text == "false") {
    if (c.type != ConstType::Bool) {
      return make_error("{}.{}: expected {}, got {}", where, c.name, const_type_name(c.type), text);
    }
    return ConstValue{text == "true"};
  }
  if (c.type == ConstType::Bool) {
    return make_error("{}.{}: expected true or false, got {}", where, c.name, text);
  }
  auto v = eval_expr(text, symbols);
  if (!v.ok()) return make_error("{}.{}: {}", where, c.name, v.error().message);
  return convert(c, v->value, v->is_integer, where);
}

// The rules value `v` of constant `c` must meet, evaluated over `table`.
Status check_rules(const ConstantDesc& c, double v, const KernelDesc& kernel, const KernelImpl* impl,
                   const SymbolTable& table, const std::string& where) {
  const std::string who =
      fmt::format("constant {} of kernel '{}'{}", c.name, kernel.id, impl ? fmt::format(" ({})", impl->backend) : "");
  auto eval = [&](const std::string& expr, const char* rule) -> Result<double> {
    auto r = eval_expr(expr, table);
    if (!r.ok()) return make_error("{}: {}: rule {} '{}': {}", where, who, rule, expr, r.error().message);
    return r->value;
  };
  auto fmt_num = [](double x) {
    return x == std::floor(x) ? fmt::format("{}", static_cast<int64_t>(x)) : fmt::format("{}", x);
  };
  // A rule's value, with its expression when that is more than the number.
  auto show = [&](double x, const std::string& expr) {
    return expr == fmt_num(x) ? expr : fmt::format("{} ({})", fmt_num(x), expr);
  };
  if (!c.equals.empty()) {
    KP_TRY(double want, eval(c.equals, "equals"));
    if (v != want) {
      return make_error("{}: {} = {} contradicts the model and the step's shapes: it must equal {}", where, who,
                        fmt_num(v), show(want, c.equals));
    }
  }
  if (!c.min.empty()) {
    KP_TRY(double lo, eval(c.min, "min"));
    if (v < lo) return make_error("{}: {} = {} is below its minimum {}", where, who, fmt_num(v), show(lo, c.min));
  }
  if (!c.max.empty()) {
    KP_TRY(double hi, eval(c.max, "max"));
    if (v > hi) return make_error("{}: {} = {} is above its maximum {}", where, who, fmt_num(v), show(hi, c.max));
  }
  if (!c.multiple_of.empty()) {
    KP_TRY(double m, eval(c.multiple_of, "multipleOf"));
    if (m <= 0 || std::fmod(v, m) != 0) {
      return make_error("{}: {} = {} is not a multiple of {}", where, who, fmt_num(v), show(m, c.multiple_of));
    }
  }
  if (c.pow2) {
    const auto u = static_cast<uint64_t>(v);
    if (v < 1 || static_cast<double>(u) != v || (u & (u - 1)) != 0) {
      return make_error("{}: {} = {} is not a power of two", where, who, fmt_num(v));
    }
  }
  return {};
}

}  // namespace

Result<ConstantValues> resolve_constants(const KernelDesc& kernel, const KernelImpl* impl,
                                         const std::map<std::string, std::string>& overrides,
                                         const SymbolTable& symbols, const std::string& where) {
  std::vector<const ConstantDesc*> all;
  for (const auto& c : kernel.constants) all.push_back(&c);
  if (impl != nullptr) {
    for (const auto& c : impl->constants) all.push_back(&c);
  }
  for (const auto& [name, value] : overrides) {
    bool known = false;
    for (const auto* c : all) known = known || c->name == name;
    if (!known) {
      std::string names;
      for (const auto* c : all) names += (names.empty() ? "" : ", ") + c->name;
      return make_error("{}.{}: kernel '{}'{} declares no constant '{}' (it declares: {})", where, name,
                        kernel.id, impl ? fmt::format(" ({})", impl->backend) : "", name,
                        names.empty() ? "none" : names);
    }
  }
  SymbolTable table = symbols;
  // Rules may name the device's limit; tables built without the model values
  // (tests, tools) get the value ModelValues has when no device is known.
  if (!table.contains("device.max_workgroup_size")) {
    table["device.max_workgroup_size"] = ExprValue{static_cast<double>(ModelValues{}.max_workgroup_size), true};
  }
  ConstantValues out;
  for (const auto* c : all) {
    Result<ConstValue> value = ConstValue{0u};
    if (auto it = overrides.find(c->name); it != overrides.end()) {
      value = parse_override(*c, it->second, table, where);
    } else {
      auto v = eval_expr(c->default_expr, table);
      if (!v.ok()) {
        return make_error("{}: constant {} of kernel '{}': {}", where, c->name, kernel.id, v.error().message);
      }
      value = convert(*c, v->value, v->is_integer || c->type == ConstType::F32 || c->type == ConstType::Bool,
                      where);
    }
    if (!value.ok()) return value.take_error();
    ConstantValues one{{c->name, *value}};
    // The rules see the symbols as they were before this constant (a constant
    // named after a shape symbol, K or N, would otherwise equal itself).
    SymbolTable with_value;
    add_constants(one, with_value);
    KP_TRY_STATUS(check_rules(*c, with_value.at(c->name).value, kernel, impl, table,
                              overrides.count(c->name) ? where + "." + c->name : where));
    add_constants(one, table);
    out.emplace_back(c->name, *value);
  }
  return out;
}

Result<std::array<uint32_t, 3>> eval_dims(const std::vector<std::string>& exprs, const SymbolTable& symbols,
                                          const std::string& where) {
  std::array<uint32_t, 3> dims{1, 1, 1};
  if (exprs.size() > 3) return make_error("{}: expected at most 3 dimensions", where);
  for (size_t i = 0; i < exprs.size(); ++i) {
    KP_TRY(ExprValue v, eval_expr(exprs[i], symbols));
    if (v.value < 1 || v.value > std::numeric_limits<uint32_t>::max()) {
      return make_error("{}: dimension {} = '{}' evaluates to {}, expected >= 1", where, i, exprs[i], v.value);
    }
    dims[i] = static_cast<uint32_t>(std::ceil(v.value));
  }
  return dims;
}

void add_constants(const ConstantValues& values, SymbolTable& table) {
  for (const auto& [name, value] : values) {
    std::visit(
        [&, n = name](auto x) {
          using X = decltype(x);
          if constexpr (std::is_same_v<X, float>) {
            table[n] = ExprValue{static_cast<double>(x), false};
          } else {
            table[n] = ExprValue{static_cast<double>(x), true};
          }
        },
        value);
  }
}

}  // namespace kp::kpath
