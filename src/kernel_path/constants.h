// Resolving a kernel's constants for one dispatch: defaults evaluated over the
// dispatch's shape symbols and model values, then the step's overrides, each
// checked against the declared type.
#pragma once

#include <array>
#include <map>
#include <vector>
#include <string>

#include "core/result.h"
#include "kernel_path/expr.h"
#include "kernel_path/registry.h"

namespace kp::kpath {

// `overrides` maps constant name -> value as written in a path (JSON scalar
// rendered to text: "256", "1e-6", "true"). Unknown names are an error naming
// `where` (a JSON location) and listing the declared constants.
Result<ConstantValues> resolve_constants(const KernelDesc& kernel, const KernelImpl* impl,
                                         const std::map<std::string, std::string>& overrides,
                                         const SymbolTable& symbols, const std::string& where);

// Evaluates an implementation entry's grid (or block) expressions.
Result<std::array<uint32_t, 3>> eval_dims(const std::vector<std::string>& exprs,
                                          const SymbolTable& symbols, const std::string& where);

// Adds the resolved constants to a symbol table (so grids can use them).
void add_constants(const ConstantValues& values, SymbolTable& table);

}  // namespace kp::kpath
