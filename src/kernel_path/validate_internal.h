// Internals of validate_path (validate.cpp: phases, weights and slots;
// validate_step.cpp: one step's kernel, bindings, shapes and constants).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kernel_path/plan.h"

namespace kp::kpath::detail {

// Errors in the order found, each once: a step repeated in every layer and
// phase reports a problem one time.
class ErrorList {
 public:
  explicit ErrorList(std::string origin) : origin_(std::move(origin)) {}
  // "<origin>: <where>: <what>", or "<origin>: <what>" when where is empty.
  void add(const std::string& where, const std::string& what);
  // As add, but at most one error per key (problems whose text names a layer).
  void add_once(const std::string& key, const std::string& where, const std::string& what);
  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  std::string joined() const;

 private:
  std::string origin_;
  std::vector<std::string> lines_;
  std::set<std::string> seen_, keys_;
};

// A weight as a step binds it: the GGUF tensor and the type and [rows, cols]
// the kernel sees after the path's weightDtype conversion.
struct WeightRef {
  std::string tensor;
  format::GgmlType type = format::GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
};

struct SlotState {
  SlotInfo info;
  bool known = true;   // false: written by a step that failed validation (not checked further)
  std::string origin;  // "written by decode.steps[1]", "the host-written token ids", ...
};

// Which slots a phase (prefill or decode) has written and read so far.
struct PhaseState {
  bool prefill = false;
  std::set<std::string> written;
  std::set<std::string> read;
};

// "[T, 256]", "[1, 4096]".
std::string dim_text(const Dim& d);
std::string shape_text(const Dim& rows, const Dim& cols);

class Validator {
 public:
  Validator(const KernelPath& path, const Registry& registry, const format::GgufFile& model,
            const ValidateOptions& options);
  Result<Plan> run();

 private:
  // validate.cpp
  void check_overrides();
  void expand_phase(bool prefill, std::vector<PlannedStep>& out);
  void expand_section(const std::vector<Step>& steps, const std::string& section, int32_t layer, PhaseState& phase,
                      std::vector<PlannedStep>& out);
  void check_phase_end(const PhaseState& phase);
  std::optional<WeightRef> weight(const std::string& name, const std::string& where, int32_t layer);
  // Creates a special slot (token_ids, positions, history) on first use; false if `name` is not one.
  bool ensure_host_slot(const std::string& name);
  // "k_cache.<layer>" / "v_cache.<layer>": the layer, or -1 for other names.
  static int64_t cache_layer(const std::string& name);
  std::string substitute(const std::string& text, int32_t layer) const;

  // validate_step.cpp
  std::optional<PlannedStep> plan_step(const Step& step, const std::string& section, int32_t layer, PhaseState& phase);
  const KernelDesc* choose_kernel(const Step& step, const std::vector<std::optional<WeightRef>>& weights, bool* failed);
  const KernelDesc* find_kernel(const std::string& id, const std::string& where);
  const KernelDesc* find_pinned(const Step& step);
  const KernelImpl* check_impl(const KernelDesc& kernel, const Step& step);
  // Resolves the step's constants (and checks the grid); false after reporting a problem.
  bool check_constants(const KernelDesc& kernel, const KernelImpl* impl, const Step& step,
                       const std::map<std::string, Dim>& symbols, PlannedStep& out);

  const KernelPath& path_;
  const Registry& registry_;
  const format::GgufFile& model_;
  const ValidateOptions& options_;
  ErrorList errors_;
  Plan plan_;
  std::map<std::string, SlotState> slots_;
  std::vector<std::string> kernel_ids_;  // for did-you-mean
};

}  // namespace kp::kpath::detail
