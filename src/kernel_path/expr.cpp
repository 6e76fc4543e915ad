#include "kernel_path/expr.h"

#include <cctype>
#include <cmath>
#include <string>

namespace kp::kpath {
namespace {

// Recursive-descent parser: expr := term (('+'|'-') term)*; term := unary (('*'|'/') unary)*;
// unary := '-' unary | primary; primary := number | ident | ident '(' args ')' | '(' expr ')'.
class Parser {
 public:
  Parser(std::string_view text, const SymbolTable& symbols) : s_(text), symbols_(symbols) {}

  Result<ExprValue> parse() {
    KP_TRY(ExprValue v, expr());
    skip_space();
    if (i_ != s_.size()) return fail(fmt::format("unexpected '{}'", s_.substr(i_)));
    return v;
  }

 private:
  Error fail(const std::string& what) const {
    return make_error("expression '{}': {}", s_, what);
  }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool eat(char c) {
    skip_space();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  Result<ExprValue> expr() {
    KP_TRY(ExprValue lhs, term());
    for (;;) {
      if (eat('+')) {
        KP_TRY(ExprValue rhs, term());
        lhs = {lhs.value + rhs.value, lhs.is_integer && rhs.is_integer};
      } else if (eat('-')) {
        KP_TRY(ExprValue rhs, term());
        lhs = {lhs.value - rhs.value, lhs.is_integer && rhs.is_integer};
      } else {
        return lhs;
      }
    }
  }

  Result<ExprValue> term() {
    KP_TRY(ExprValue lhs, unary());
    for (;;) {
      if (eat('*')) {
        KP_TRY(ExprValue rhs, unary());
        lhs = {lhs.value * rhs.value, lhs.is_integer && rhs.is_integer};
      } else if (eat('/')) {
        KP_TRY(ExprValue rhs, unary());
        if (rhs.value == 0) return fail("division by zero");
        if (lhs.is_integer && rhs.is_integer) {
          lhs = {std::trunc(lhs.value / rhs.value), true};
        } else {
          lhs = {lhs.value / rhs.value, false};
        }
      } else {
        return lhs;
      }
    }
  }

  // Every level of nesting passes here ('(' and calls through expr(), '-'
  // directly), so the depth is bounded here.
  Result<ExprValue> unary() {
    if (depth_ >= kMaxExprDepth) {
      return fail(fmt::format("nested deeper than {} levels", kMaxExprDepth));
    }
    ++depth_;
    Result<ExprValue> v = unary_inner();
    --depth_;
    return v;
  }

  Result<ExprValue> unary_inner() {
    if (eat('-')) {
      KP_TRY(ExprValue v, unary());
      return ExprValue{-v.value, v.is_integer};
    }
    return primary();
  }

  Result<ExprValue> primary() {
    skip_space();
    if (i_ >= s_.size()) return fail("unexpected end");
    const char c = s_[i_];
    if (eat('(')) {
      KP_TRY(ExprValue v, expr());
      if (!eat(')')) return fail("expected ')'");
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const size_t start = i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' ||
                                s_[i_] == '.')) {
        ++i_;
      }
      const std::string name(s_.substr(start, i_ - start));
      if (eat('(')) return call(name);
      auto it = symbols_.find(name);
      if (it == symbols_.end()) return fail(fmt::format("unknown symbol '{}'", name));
      return it->second;
    }
    return fail(fmt::format("unexpected '{}'", c));
  }

  Result<ExprValue> number() {
    const size_t start = i_;
    bool is_int = true;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++i_;
      } else if (c == '.' || c == 'e' || c == 'E' ||
                 ((c == '-' || c == '+') && i_ > start && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))) {
        is_int = false;
        ++i_;
      } else {
        break;
      }
    }
    const std::string text(s_.substr(start, i_ - start));
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end == nullptr || *end != '\0') return fail(fmt::format("bad number '{}'", text));
    return ExprValue{v, is_int};
  }

  Result<ExprValue> call(const std::string& name) {
    KP_TRY(ExprValue a, expr());
    if (!eat(',')) return fail(fmt::format("{}() takes two arguments", name));
    KP_TRY(ExprValue b, expr());
    if (!eat(')')) return fail("expected ')'");
    const bool ints = a.is_integer && b.is_integer;
    if (name == "cdiv") {
      if (b.value == 0) return fail("cdiv by zero");
      return ExprValue{std::ceil(a.value / b.value), true};
    }
    if (name == "min") return ExprValue{std::min(a.value, b.value), ints};
    if (name == "max") return ExprValue{std::max(a.value, b.value), ints};
    return fail(fmt::format("unknown function '{}' (expected cdiv, min or max)", name));
  }

  std::string_view s_;
  const SymbolTable& symbols_;
  size_t i_ = 0;
  int depth_ = 0;  // unary() calls in progress
};

}  // namespace

Result<ExprValue> eval_expr(std::string_view expr, const SymbolTable& symbols) {
  return Parser(expr, symbols).parse();
}

void ModelValues::add_to(SymbolTable& t) const {
  auto i = [&](const char* k, uint32_t v) { t[k] = ExprValue{static_cast<double>(v), true}; };
  auto f = [&](const char* k, float v) { t[k] = ExprValue{static_cast<double>(v), false}; };
  i("model.n_embd", n_embd);
  i("model.n_ff", n_ff);
  i("model.n_head", n_head);
  i("model.n_head_kv", n_head_kv);
  i("model.head_dim", head_dim);
  i("model.n_vocab", n_vocab);
  i("model.n_layer", n_layer);
  f("model.rms_eps", rms_eps);
  f("model.rope_theta", rope_theta);
  f("model.attn_softcap", attn_softcap);
  f("model.final_softcap", final_softcap);
  f("model.attn_scale", attn_scale);
  f("model.embd_scale", embd_scale);
  i("device.max_workgroup_size", max_workgroup_size);
}

}  // namespace kp::kpath
