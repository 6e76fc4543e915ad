#include "kernel_path/constants.h"

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
    out.emplace_back(c->name, *value);
    ConstantValues one{{c->name, *value}};
    add_constants(one, table);
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
