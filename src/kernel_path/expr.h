// Small arithmetic expressions used by the registry for constant defaults and
// dispatch grids: numbers, identifiers (shape symbols, constants, model.*),
// + - * / (integer division when both sides are integers), parentheses,
// cdiv(a, b), min(a, b), max(a, b).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace kp::kpath {

struct ExprValue {
  double value = 0;
  bool is_integer = true;
};

using SymbolTable = std::map<std::string, ExprValue, std::less<>>;

// Parentheses, unary minus and function calls nest at most this deep: the
// parser recurses, and expressions come from path files (untrusted).
inline constexpr int kMaxExprDepth = 64;

// Errors name the expression and the unknown symbol or syntax problem.
Result<ExprValue> eval_expr(std::string_view expr, const SymbolTable& symbols);

// Model values every expression may use (model.n_embd, ...), see docs/kernels.md.
struct ModelValues {
  uint32_t n_embd = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_vocab = 0, n_layer = 0;
  float rms_eps = 0, rope_theta = 0, attn_softcap = 0, final_softcap = 0, attn_scale = 0, embd_scale = 0;
  // The device's limit on the threads of a block / invocations of a
  // workgroup, as device.max_workgroup_size (set from the backend; 1024, the
  // CUDA limit and the usual Vulkan one, where no device is known).
  uint32_t max_workgroup_size = 1024;
  void add_to(SymbolTable& table) const;
};

}  // namespace kp::kpath
