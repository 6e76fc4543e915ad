// The kernel registry: one machine-readable description of every kernel and
// entry point (kernels/registry.json), and of each backend's implementation of
// it (kernels/<backend>/registry.json; the CPU backend's are compiled in).
// Path validation, the executor and the op test harness all read it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"
#include "format/ggml_type.h"

namespace kp::kpath {

enum class SlotDType { F32, F16, I32 };
std::string_view dtype_name(SlotDType t);
std::optional<SlotDType> parse_dtype(std::string_view s);

enum class ConstType { U32, I32, F32, Bool };
std::string_view const_type_name(ConstType t);

using ConstValue = std::variant<uint32_t, int32_t, float, bool>;
// Resolved constants, in declaration order (logical kernel's first, then the
// backend implementation's). Vulkan specialization constant ids are the indices.
using ConstantValues = std::vector<std::pair<std::string, ConstValue>>;
std::string const_value_string(const ConstValue& v);  // "2304", "1e-06", "true"

enum class BindingKind { In, Out, InOut, Weight };

struct BindingDesc {
  std::string name;
  BindingKind kind = BindingKind::In;
  std::vector<std::string> shape;             // [rows, cols] of symbols / literals
  std::string dtype;                          // "f32", "f16", "i32", or "kv" (the path's kvDtype)
  std::vector<format::GgmlType> weight_types; // accepted types for Weight bindings
  std::string inplace_of;                     // an In binding this Out may alias
  std::string description;
};

struct ConstantDesc {
  std::string name;
  ConstType type = ConstType::U32;
  std::string default_expr;  // expression over shape symbols and model.* values
  std::string description;
  // What a value must satisfy (checked when a step's constants are resolved,
  // before anything compiles). Each is an expression over the same symbols
  // as the default, the constants declared before this one, and the device's
  // limits (device.max_workgroup_size); empty: no such rule.
  std::string min, max;      // inclusive bounds
  std::string multiple_of;   // value % multiple_of == 0
  std::string equals;        // a dimension the kernel does not choose (a weight's shape, a model value)
  bool pow2 = false;         // a power of two
};

struct EntryDesc {
  std::string name;
  std::string description;
  std::map<std::string, std::vector<std::string>> shapes;  // binding -> shape override
};

// One backend's implementation of a logical kernel.
struct KernelImpl {
  std::string backend;    // "cpu", "vulkan", "cuda"
  std::string file;       // source file (GPU backends), resolved to a full path
  std::string source_dir; // directory holding `file` and its includes
  std::vector<ConstantDesc> constants;     // tuning constants (workgroup size, ...)
  std::vector<std::string> features;       // required device features
  struct Entry {
    std::string function;                  // CUDA: extern "C" name; Vulkan: ENTRY_<name> macro
    std::vector<std::string> grid;         // 3 expressions: workgroups/blocks
    std::vector<std::string> block;        // CUDA block size (3 expressions)
    // CUDA: launched with programmatic dependent launch (sm_90+): the kernel may
    // start while its predecessor runs and waits for it (kp_pdl_wait) before
    // reading anything an earlier kernel wrote.
    bool overlap = false;
    // CUDA: bytes of scratch memory (an expression over the constants) the
    // backend allocates zeroed once per pipeline and passes after the
    // bindings; the kernel must leave it zeroed. Empty: none.
    std::string workspace;
  };
  std::map<std::string, Entry> entries;
};

struct KernelDesc {
  std::string id;            // "matmul_q4k"
  std::string description;
  std::vector<BindingDesc> bindings;       // bound in this order
  std::vector<ConstantDesc> constants;
  std::map<std::string, EntryDesc> entries;
  std::string reference;     // for custom kernels: the built-in kernel whose CPU code is the reference
  std::string origin;        // file it was declared in
  std::map<std::string, KernelImpl> impls; // backend name -> implementation
};

class Registry {
 public:
  // The built-in registry: kernels/registry.json + kernels/<backend>/registry.json
  // under `kernels_dir` (default: the installed/source kernels directory).
  static Result<Registry> load_builtin(const std::string& kernels_dir);
  // Adds kernels from a user directory (--kernel-dir): DIR/registry.json and
  // DIR/<backend>/registry.json. New ids only, or new backend implementations.
  Status add_dir(const std::string& dir);
  // Parses one logical registry document (for tests); `origin` names it in errors.
  Status add_logical_json(const std::string& text, const std::string& origin);
  Status add_backend_json(const std::string& text, const std::string& origin, const std::string& base_dir);
  // Registers a compiled-in implementation (the CPU backend) for every kernel.
  void add_impl(const std::string& kernel_id, KernelImpl impl);

  const KernelDesc* find(std::string_view id) const;
  const std::map<std::string, KernelDesc, std::less<>>& kernels() const { return kernels_; }
  // Directory of the built-in kernels (for `kpath kernels show`).
  const std::string& kernels_dir() const { return kernels_dir_; }

 private:
  std::map<std::string, KernelDesc, std::less<>> kernels_;
  std::string kernels_dir_;
};

// The kernels/ directory: $KPATH_KERNELS_DIR for relocated installs, else the
// source tree's kernels/ (the build embeds its path).
std::string default_kernels_dir();

}  // namespace kp::kpath
