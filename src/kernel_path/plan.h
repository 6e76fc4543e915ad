// A validated kernel path, expanded for one model, registry and backend: every
// step of every layer with its kernel implementation, weights, slots, shape
// symbols and constants resolved. The executor walks it and dispatches exactly
// these steps; nothing else chooses kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "kernel_path/expr.h"
#include "kernel_path/registry.h"
#include "kernel_path/schema.h"

namespace kp::kpath {

// A symbolic dimension: a number, or a multiple of the batch rows T.
struct Dim {
  int64_t value = 0;
  bool is_t = false;  // value is then the multiplier of T (1)
  bool operator==(const Dim&) const = default;
  int64_t eval(int64_t t) const { return is_t ? value * t : value; }
};

struct SlotInfo {
  std::string name;
  SlotDType dtype = SlotDType::F32;
  Dim rows;
  int64_t cols = 0;
  bool persistent = false;   // KV caches: live across calls
  bool host_written = false; // token_ids, positions, history: written by the host
};

struct PlannedBinding {
  BindingKind kind = BindingKind::In;
  std::string slot;          // for in/out/inout
  std::string tensor;        // for weights: GGUF tensor name
};

struct PlannedStep {
  std::string op;
  std::string phase_section;   // "preLayer", "layer", "postLayer", "sampling"
  int32_t layer = -1;          // -1 outside the layers
  const KernelDesc* kernel = nullptr;
  const KernelImpl* impl = nullptr;  // nullptr only for backends with built-in impls missing
  std::string entry;
  std::vector<PlannedBinding> bindings;  // in the kernel's binding order
  // Every shape symbol of the step's bindings, plus "CTX" and "T": the rows
  // the step runs on, Dim{1, true} (the batch) or a number (1 for the steps
  // on the last row's logits, and for sampling).
  std::map<std::string, Dim> symbols;
  std::map<std::string, std::string> constant_overrides;  // step constants for this backend
  std::string location;                  // "decode.steps[7] (layer 5)", "postLayer[1]"
};

struct Plan {
  const KernelPath* path = nullptr;
  std::string backend;
  std::vector<PlannedStep> prefill;   // preLayer, layers, postLayer, sampling for T rows
  std::vector<PlannedStep> decode;    // the same for one row
  std::map<std::string, SlotInfo> slots;
  std::set<std::string> weights;      // GGUF tensor names the plan reads
  ModelValues model;
  int64_t ctx = 0;
  // Device type of each weight after the path's weight_dtype conversion.
  std::map<std::string, format::GgmlType> weight_types;

  // The type tensor `t` has on the device: weight_types' entry, else as stored.
  format::GgmlType device_type(const format::GgufTensorInfo& t) const {
    auto it = weight_types.find(t.name);
    return it == weight_types.end() ? t.type : it->second;
  }
  // Its bytes on the device.
  uint64_t device_bytes(const format::GgufTensorInfo& t) const {
    const format::GgmlType type = device_type(t);
    return type == t.type ? t.n_bytes : format::row_bytes(type, t.n_elements);
  }
};

struct ValidateOptions {
  std::string backend = "cpu";                 // implementation to select
  std::set<std::string> device_features;       // what the device offers
  int64_t ctx = 0;                             // context size (rows of the KV caches)
  int64_t history = 64;                        // rows of the token-history slot
  ModelValues model;                           // model.* values for constants
  // Maps a weight name as written in a path (after {L} substitution) to the GGUF
  // tensor name (the model layer's resolve_weight_name).
  std::function<Result<std::string>(const std::string&)> resolve_weight;
};

// Checks the path against the registry, the model's tensors and the device,
// and expands it. Every error names the path's file, the JSON location and
// what was expected; all problems found are listed, one per line.
Result<Plan> validate_path(const KernelPath& path, const Registry& registry, const format::GgufFile& model,
                           const ValidateOptions& options);

}  // namespace kp::kpath
