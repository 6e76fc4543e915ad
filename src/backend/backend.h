// The backend interface: buffers, pipelines keyed by (kernel, entry, constant
// values), recorded command lists of dispatches, and per-dispatch timestamps.
// A backend knows nothing of models: the runtime's executor turns a validated
// kernel path into DispatchDescs and a backend runs exactly those.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "kernel_path/registry.h"
#include "kp_params.h"

namespace kp::backend {

// The device features kernels may require (a registry entry's "features"):
// 16-bit floats in shaders, subgroup arithmetic, integer dot products, and
// binary16 matrix products on tensor cores (mma.sync m16n8k16, sm_80 and later).
inline const std::set<std::string> kDeviceFeatures = {"f16", "int_dot", "mma_f16", "subgroups"};

struct DeviceInfo {
  std::string backend;      // "cpu", "vulkan", "cuda"
  std::string name;         // "NVIDIA H100 80GB HBM3", "llvmpipe (LLVM 15.0.6, 256 bits)"
  std::string driver;       // driver name and version
  uint64_t memory_bytes = 0;       // device-local memory
  bool is_software = false;        // lavapipe, CPU
  std::set<std::string> features;  // of kDeviceFeatures (the registry's feature names)
  std::string arch;                // "sm_90" for CUDA, device type for Vulkan
  uint32_t max_workgroup_size = 1024;  // threads of a block / invocations of a workgroup
  // Prompt tokens per prefill dispatch unless the user says (-ub): enough rows
  // for a GPU's matrix units, fewer where a large batch buys nothing (CPUs,
  // software devices).
  uint32_t prefill_batch = 256;
};

using BufferId = uint32_t;
using PipelineId = uint32_t;
using CommandListId = uint32_t;

enum class BufferUsage {
  kDevice,      // device-local; written by kernels or by upload
  kHostVisible  // small buffers the host rewrites often (token ids, positions)
};

enum class Access : uint8_t { kRead, kWrite, kReadWrite };

struct Binding {
  BufferId buffer = 0;
  uint64_t offset = 0;  // bytes
  uint64_t bytes = 0;
  Access access = Access::kRead;
};

// One kernel dispatch, fully resolved: every value is known when recorded.
struct DispatchDesc {
  PipelineId pipeline = 0;
  std::vector<Binding> bindings;  // in the kernel's registry binding order
  KpStepParams step{};
  std::array<uint32_t, 3> grid{1, 1, 1};   // workgroups / blocks
  // Shape symbol values of this dispatch (K, N, T, ...) for backends that
  // interpret kernels directly (the CPU backend); GPU kernels get them as constants.
  std::vector<std::pair<std::string, int64_t>> symbols;
};

// A compiled kernel: the implementation chosen from the registry plus the
// values of its constants.
struct PipelineDesc {
  const kpath::KernelDesc* kernel = nullptr;     // logical kernel
  const kpath::KernelImpl* impl = nullptr;       // this backend's implementation
  std::string entry;
  kpath::ConstantValues constants;               // every declared constant, resolved
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual const DeviceInfo& info() const = 0;

  virtual Result<BufferId> create_buffer(uint64_t bytes, BufferUsage usage, const std::string& name) = 0;
  virtual void destroy_buffer(BufferId id) = 0;
  virtual Status write_buffer(BufferId id, uint64_t offset, const void* data, uint64_t bytes) = 0;
  virtual Status read_buffer(BufferId id, uint64_t offset, void* data, uint64_t bytes) = 0;

  // Compiles (or fetches from the caches) the pipeline for desc. Errors name the
  // kernel file and the compiler's message.
  virtual Result<PipelineId> create_pipeline(const PipelineDesc& desc) = 0;

  // Records dispatches once; the list can be submitted many times. Barriers are
  // placed where a dispatch touches a buffer range an earlier one wrote.
  virtual Result<CommandListId> record(std::span<const DispatchDesc> dispatches) = 0;
  virtual void destroy_command_list(CommandListId id) = 0;
  // Writes params, runs the list and waits for it. With timestamps, per-dispatch
  // device times are kept for last_timings().
  virtual Status submit(CommandListId id, const KpParams& params, bool timestamps) = 0;
  // Milliseconds per dispatch of the last submit with timestamps, in order.
  virtual std::vector<double> last_timings() const = 0;
  // Where each dispatch of the last submit with timestamps started and ended,
  // in milliseconds after the submit's first timestamp: a backend that stamps
  // each dispatch on both sides shows the gaps between them; by default the
  // dispatches are laid end to end from last_timings().
  virtual std::vector<std::pair<double, double>> last_spans() const {
    std::vector<std::pair<double, double>> out;
    double t = 0;
    for (double ms : last_timings()) {
      out.emplace_back(t, t + ms);
      t += ms;
    }
    return out;
  }
  // Peak device memory allocated by this backend, in bytes.
  virtual uint64_t peak_memory() const = 0;
  // Memory the device can still give to new buffers, in bytes, as the driver
  // reports it now (host memory for the CPU backend); 0 when unknown.
  virtual uint64_t free_memory() const { return 0; }
  // After a submit failed on the device: the index, in the submitted list, of
  // the dispatch that was running, when the backend can tell (it waits after
  // every dispatch, or the driver has checkpoints); nullopt otherwise.
  virtual std::optional<size_t> failed_dispatch() const { return std::nullopt; }

  // The device's copy bandwidth (kpath bench): copies `bytes` from one device
  // buffer to another `repeats` times and returns the best rate in bytes per
  // second, counting what each copy reads and writes (2 * bytes). The two
  // buffers are freed afterwards but count in peak_memory(), so measure on a
  // backend that holds no model. Backends without a measurement say so.
  virtual Result<double> measure_copy_bandwidth(uint64_t bytes, int repeats) {
    (void)bytes;
    (void)repeats;
    return make_error("the {} backend cannot measure its copy bandwidth", info().backend);
  }
};

}  // namespace kp::backend
