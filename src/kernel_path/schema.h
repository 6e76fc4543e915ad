// A kernel path as written in JSON (a superset of the seed's schema), parsed but
// not yet checked against a model, registry or device (plan.h: validate_path).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "format/ggml_type.h"
#include "kernel_path/registry.h"

namespace kp::kpath {

struct Step {
  std::string op;                   // logical operation name, shown in traces
  // Either one kernel for every weight type, or one per type of the step's
  // first weight ({"Q4_K": "matmul_q4k", "Q6_K": "matmul_q6k"}).
  std::string kernel;
  std::map<format::GgmlType, std::string> kernel_by_type;
  // Set when the seed's file form names the kernel ("rmsnorm.comp" pins vulkan,
  // "rmsnorm.cu" pins cuda); `kernel` then holds the file name.
  std::string pinned_backend;
  std::string entry = "main";
  std::map<std::string, std::string> constants;  // for every backend
  std::map<std::string, std::map<std::string, std::string>> backend_constants;  // backend -> overrides
  std::vector<std::string> weights;  // templates: "layer.{L}.self_attn.q_proj", "blk.{L}.attn_q", "token_embd"
  std::vector<std::string> inputs;   // slot names, may hold {L}; default ["hidden_state"]
  std::vector<std::string> outputs;  // default ["hidden_state"]
  std::string location;              // JSON location: "decode.steps[7]"
};

struct LayerOverride {
  std::vector<uint32_t> layers;
  std::optional<std::vector<Step>> decode;   // "decode" or "steps" (both phases)
  std::optional<std::vector<Step>> prefill;
  bool both_phases = false;                  // written as "steps"
  std::string location;                      // "layerOverrides[0]"
};

struct KernelPath {
  std::string id;
  std::string name;
  std::string description;
  SlotDType activation_dtype = SlotDType::F32;
  SlotDType kv_dtype = SlotDType::F32;      // defaults to activation_dtype
  // How matrices are stored on the device: "native" (as in the file), or
  // dequantized once at load to "f32" / "f16".
  std::string weight_dtype = "native";
  std::vector<Step> pre_layer;
  std::vector<Step> decode;
  std::vector<Step> prefill;                // defaults to decode's
  bool prefill_given = false;
  std::vector<Step> post_layer;
  std::vector<Step> sampling;
  std::vector<LayerOverride> layer_overrides;
  std::string source;                       // the file it was read from (names it in errors)

  // The steps layer `layer` runs in a phase, after overrides. An override's
  // decode steps also replace the layer's prefill steps when the path gives
  // no prefill steps of its own (prefill then follows decode everywhere).
  const std::vector<Step>& layer_steps(uint32_t layer, bool prefill) const;
};

// Parses a path document. Errors name `origin` and the JSON location, and for
// unknown fields suggest the closest known one ("did you mean 'constants'?").
// Every problem found is reported, one per line, each as "<origin>: <location>: <what>".
Result<KernelPath> parse_kernel_path(const std::string& text, const std::string& origin);

// The path as a JSON document in the format parse_kernel_path reads (2-space
// indent): parsing it again gives the same path. Defaults are written out
// except a prefill that follows decode.
std::string kernel_path_to_json(const KernelPath& path);

// True for ids kernel paths may use: letters, digits, '-', '_' and '.'.
bool is_valid_path_id(std::string_view id);

}  // namespace kp::kpath
