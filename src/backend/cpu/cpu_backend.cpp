// The CPU backend: buffers in host memory, pipelines as (CPU kernel function,
// resolved constants), command lists as stored dispatch lists that submit()
// runs in order. Kernel code: cpu_kernels_*.cpp.
#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <new>
#include <set>
#include <thread>

#include "backend/cpu/cpu_kernel.h"
#include "backend/cpu/cpu_quant_dot.h"
#include "backend/cpu/cpu_thread_pool.h"

namespace kp::backend {
namespace {

using cpu::BufferView;
using cpu::CpuKernel;
using cpu::KernelCall;

constexpr std::align_val_t kBufferAlign{64};

struct HostBuffer {
  std::byte* data = nullptr;
  uint64_t bytes = 0;
  std::string name;
};

struct CpuPipeline {
  const kpath::KernelDesc* kernel = nullptr;
  std::string entry;
  cpu::KernelFn fn = nullptr;
  kpath::ConstantValues constants;
  std::vector<format::GgmlType> weight_types;  // per binding; F32 for slots
};

struct RecordedDispatch {
  PipelineId pipeline = 0;
  std::vector<Binding> bindings;
  KpStepParams step{};
  std::map<std::string, int64_t, std::less<>> symbols;
};

// MemAvailable of /proc/meminfo (Linux), in bytes; 0 when unreadable.
uint64_t host_available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

const char* host_arch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(CpuKernelSet kernels, unsigned threads) : kernels_(kernels), pool_(std::max(1u, threads)) {
    info_.backend = "cpu";
    info_.name = fmt::format("host CPU ({} threads)", pool_.threads());
    info_.driver = kernels == CpuKernelSet::kFast
                       ? fmt::format("kpath SIMD kernels ({}), reference kernels for the other ops",
                                     cpu::simd_target())
                       : "kpath reference kernels";
    info_.memory_bytes = 0;  // host memory: not a device limit
    info_.is_software = true;
    info_.features = {"f16", "subgroups", "int_dot"};
    info_.arch = host_arch();
  }

  ~CpuBackend() override {
    for (auto& [id, b] : buffers_) ::operator delete[](b.data, kBufferAlign);
  }

  const DeviceInfo& info() const override { return info_; }

  Result<BufferId> create_buffer(uint64_t bytes, BufferUsage /*usage*/, const std::string& name) override {
    if (bytes == 0) return make_error("cpu backend: buffer '{}' of 0 bytes", name);
    HostBuffer b;
    b.data = static_cast<std::byte*>(::operator new[](bytes, kBufferAlign, std::nothrow));
    if (b.data == nullptr) return make_error("cpu backend: out of host memory for buffer '{}' ({} bytes)", name, bytes);
    b.bytes = bytes;
    b.name = name;
    const BufferId id = next_buffer_++;
    buffers_[id] = std::move(b);
    live_bytes_ += bytes;
    peak_bytes_ = std::max(peak_bytes_, live_bytes_);
    return id;
  }

  void destroy_buffer(BufferId id) override {
    auto it = buffers_.find(id);
    if (it == buffers_.end()) return;
    live_bytes_ -= it->second.bytes;
    ::operator delete[](it->second.data, kBufferAlign);
    buffers_.erase(it);
  }

  Status write_buffer(BufferId id, uint64_t offset, const void* data, uint64_t bytes) override {
    KP_TRY(std::byte* p, range(id, offset, bytes, "write"));
    if (bytes > 0) std::memcpy(p, data, bytes);
    return {};
  }

  Status read_buffer(BufferId id, uint64_t offset, void* data, uint64_t bytes) override {
    KP_TRY(std::byte* p, range(id, offset, bytes, "read"));
    if (bytes > 0) std::memcpy(data, p, bytes);
    return {};
  }

  Result<PipelineId> create_pipeline(const PipelineDesc& desc) override {
    if (desc.kernel == nullptr) return make_error("cpu backend: pipeline without a kernel");
    const kpath::KernelDesc& k = *desc.kernel;
    // Pipelines are keyed by value: (kernel, entry, constant values).
    std::string key = fmt::format("{}@{}|{}", k.id, static_cast<const void*>(desc.kernel), desc.entry);
    for (const auto& [name, value] : desc.constants) key += "|" + name + "=" + kpath::const_value_string(value);
    if (auto it = pipeline_ids_.find(key); it != pipeline_ids_.end()) return it->second;
    const CpuKernel* impl = cpu::find_cpu_kernel(k.id);
    if (impl == nullptr && !k.reference.empty()) impl = cpu::find_cpu_kernel(k.reference);
    if (impl == nullptr) return make_error("cpu backend: no CPU implementation of kernel '{}' ({})", k.id, k.origin);
    auto fn = impl->entries.find(desc.entry);
    if (fn == impl->entries.end()) {
      return make_error("cpu backend: kernel '{}' has no CPU entry '{}'", k.id, desc.entry);
    }
    cpu::KernelFn run = fn->second;
    if (kernels_ == CpuKernelSet::kFast) {
      if (auto f = impl->fast.find(desc.entry); f != impl->fast.end()) run = f->second;
    }
    if (k.bindings.size() != impl->bindings.size()) {
      return make_error("cpu backend: kernel '{}' declares {} bindings, the CPU code of '{}' expects {}", k.id,
                        k.bindings.size(), impl->id, impl->bindings.size());
    }
    CpuPipeline p;
    for (size_t i = 0; i < k.bindings.size(); ++i) {
      const kpath::BindingDesc& b = k.bindings[i];
      if (k.reference.empty() && b.name != impl->bindings[i]) {
        return make_error("cpu backend: kernel '{}' binding {} is '{}' in {}, the CPU code expects '{}'", k.id, i,
                          b.name, k.origin, impl->bindings[i]);
      }
      if (b.kind == kpath::BindingKind::Weight) {
        if (b.weight_types.size() != 1) {
          return make_error("cpu backend: kernel '{}' weight '{}' accepts {} types; the CPU code needs exactly one",
                            k.id, b.name, b.weight_types.size());
        }
        p.weight_types.push_back(b.weight_types[0]);
      } else {
        if (b.dtype != "f32" && b.dtype != "i32") {
          return make_error("cpu backend: kernel '{}' binding '{}' has dtype {}; the CPU kernels read f32 and i32",
                            k.id, b.name, b.dtype);
        }
        p.weight_types.push_back(format::GgmlType::F32);
      }
    }
    for (const auto& c : k.constants) {
      const bool found = std::any_of(desc.constants.begin(), desc.constants.end(),
                                     [&](const auto& kv) { return kv.first == c.name; });
      if (!found) return make_error("cpu backend: kernel '{}': constant {} was not resolved", k.id, c.name);
    }
    p.kernel = desc.kernel;
    p.entry = desc.entry;
    p.fn = run;
    p.constants = desc.constants;
    pipelines_.push_back(std::move(p));
    const auto id = static_cast<PipelineId>(pipelines_.size() - 1);
    pipeline_ids_[key] = id;
    return id;
  }

  Result<CommandListId> record(std::span<const DispatchDesc> dispatches) override {
    std::vector<RecordedDispatch> list;
    list.reserve(dispatches.size());
    for (size_t i = 0; i < dispatches.size(); ++i) {
      const DispatchDesc& d = dispatches[i];
      if (d.pipeline >= pipelines_.size()) return make_error("cpu backend: dispatch {}: unknown pipeline {}", i, d.pipeline);
      const CpuPipeline& p = pipelines_[d.pipeline];
      if (d.bindings.size() != p.kernel->bindings.size()) {
        return make_error("cpu backend: dispatch {} ({}): {} bindings given, the kernel has {}", i, p.kernel->id,
                          d.bindings.size(), p.kernel->bindings.size());
      }
      for (size_t b = 0; b < d.bindings.size(); ++b) {
        const Binding& bind = d.bindings[b];
        auto r = range(bind.buffer, bind.offset, bind.bytes, "bind");
        if (!r.ok()) {
          return make_error("dispatch {} ({}), binding '{}': {}", i, p.kernel->id, p.kernel->bindings[b].name,
                            r.error().message);
        }
      }
      RecordedDispatch rd;
      rd.pipeline = d.pipeline;
      rd.bindings = d.bindings;
      rd.step = d.step;
      for (const auto& [name, value] : d.symbols) rd.symbols[name] = value;
      list.push_back(std::move(rd));
    }
    const CommandListId id = next_list_++;
    lists_[id] = std::move(list);
    return id;
  }

  void destroy_command_list(CommandListId id) override { lists_.erase(id); }

  Status submit(CommandListId id, const KpParams& params, bool timestamps) override {
    auto it = lists_.find(id);
    if (it == lists_.end()) return make_error("cpu backend: unknown command list {}", id);
    std::vector<double> times;
    if (timestamps) times.reserve(it->second.size());
    for (const RecordedDispatch& d : it->second) {
      const CpuPipeline& p = pipelines_[d.pipeline];
      std::vector<BufferView> views;
      views.reserve(d.bindings.size());
      for (const Binding& b : d.bindings) {
        // Buffers destroyed since recording are caught here rather than read.
        KP_TRY(std::byte* ptr, range(b.buffer, b.offset, b.bytes, "bind"));
        views.push_back(BufferView{ptr, b.bytes});
      }
      KernelCall::Setup s;
      s.kernel = p.kernel;
      s.entry = p.entry;
      s.constants = &p.constants;
      s.weight_types = &p.weight_types;
      s.views = views;
      s.symbols = &d.symbols;
      s.params = &params;
      s.step = &d.step;
      s.pool = &pool_;
      const auto t0 = std::chrono::steady_clock::now();
      KP_TRY_STATUS(p.fn(KernelCall(s)));
      if (timestamps) {
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    if (timestamps) timings_ = std::move(times);
    return {};
  }

  std::vector<double> last_timings() const override { return timings_; }
  uint64_t peak_memory() const override { return peak_bytes_; }
  uint64_t free_memory() const override { return host_available_memory(); }

  // memcpy in 1 MiB pieces on every thread of the pool, as the kernels run.
  Result<double> measure_copy_bandwidth(uint64_t bytes, int repeats) override {
    if (bytes == 0 || repeats < 1) return make_error("cpu backend: copy bandwidth needs bytes > 0 and repeats >= 1");
    KP_TRY(BufferId src, create_buffer(bytes, BufferUsage::kDevice, "bandwidth src"));
    auto dst = create_buffer(bytes, BufferUsage::kDevice, "bandwidth dst");
    if (!dst.ok()) {
      destroy_buffer(src);
      return dst.take_error();
    }
    std::byte* s = buffers_.at(src).data;
    std::byte* d = buffers_.at(*dst).data;
    std::memset(s, 1, bytes);  // touch every page before timing
    std::memset(d, 0, bytes);
    constexpr int64_t kPiece = 1 << 20;
    const int64_t pieces = static_cast<int64_t>((bytes + kPiece - 1) / kPiece);
    double best = 0;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      pool_.parallel_for(pieces, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const uint64_t off = static_cast<uint64_t>(i * kPiece);
          std::memcpy(d + off, s + off, std::min<uint64_t>(kPiece, bytes - off));
        }
      });
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (seconds > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / seconds);
    }
    destroy_buffer(src);
    destroy_buffer(*dst);
    return best;
  }

 private:
  Result<std::byte*> range(BufferId id, uint64_t offset, uint64_t bytes, const char* what) {
    auto it = buffers_.find(id);
    if (it == buffers_.end()) return make_error("cpu backend: {} of unknown buffer {}", what, id);
    const HostBuffer& b = it->second;
    if (offset > b.bytes || bytes > b.bytes - offset) {
      return make_error("cpu backend: {} of [{}, {}) outside buffer '{}' ({} bytes)", what, offset, offset + bytes,
                        b.name, b.bytes);
    }
    return b.data + offset;
  }

  DeviceInfo info_;
  CpuKernelSet kernels_;
  cpu::ThreadPool pool_;
  std::map<BufferId, HostBuffer> buffers_;
  BufferId next_buffer_ = 1;
  std::vector<CpuPipeline> pipelines_;
  std::map<std::string, PipelineId> pipeline_ids_;
  std::map<CommandListId, std::vector<RecordedDispatch>> lists_;
  CommandListId next_list_ = 1;
  std::vector<double> timings_;
  uint64_t live_bytes_ = 0;
  uint64_t peak_bytes_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
  return std::make_unique<CpuBackend>(CpuKernelSet::kReference, std::thread::hardware_concurrency());
}

std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options) {
  return std::make_unique<CpuBackend>(options.kernels, options.threads != 0 ? options.threads : physical_cores());
}

// Distinct (package, core) pairs of /sys/devices/system/cpu/cpu*/topology.
unsigned physical_cores() {
  const unsigned logical = std::max(1u, std::thread::hardware_concurrency());
  std::set<std::pair<std::string, std::string>> cores;
  for (unsigned i = 0; i < logical; ++i) {
    const std::string dir = fmt::format("/sys/devices/system/cpu/cpu{}/topology/", i);
    std::ifstream package(dir + "physical_package_id"), core(dir + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) return logical;
    cores.insert({p, c});
  }
  return cores.empty() ? logical : static_cast<unsigned>(cores.size());
}

void register_cpu_kernels(kpath::Registry& registry) {
  std::vector<std::pair<std::string, kpath::KernelImpl>> impls;
  for (const auto& [id, k] : registry.kernels()) {
    const CpuKernel* cpu_kernel = cpu::find_cpu_kernel(id);
    if (cpu_kernel == nullptr && !k.reference.empty()) cpu_kernel = cpu::find_cpu_kernel(k.reference);
    if (cpu_kernel == nullptr) continue;
    kpath::KernelImpl impl;
    impl.backend = "cpu";
    for (const auto& [entry, unused] : k.entries) {
      if (cpu_kernel->entries.count(entry)) impl.entries[entry] = kpath::KernelImpl::Entry{entry, {}, {}};
    }
    if (!impl.entries.empty()) impls.emplace_back(id, std::move(impl));
  }
  for (auto& [id, impl] : impls) registry.add_impl(id, std::move(impl));
}

}  // namespace kp::backend
