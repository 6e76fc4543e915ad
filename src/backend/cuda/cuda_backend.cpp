// CudaBackend: buffers, NVRTC pipelines, recorded launch lists replayed as CUDA
// graphs. Every driver call is checked; errors name the call, the buffer,
// kernel or dispatch index involved.
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <map>
#include <optional>

#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_loader.h"
#include "backend/cuda/module_cache.h"
#include "backend/cuda/nvrtc_compile.h"
#include "core/check.h"
#include "kernel_path/constants.h"

namespace kp::backend {
namespace {

using cuda::CudaDriver;
using cuda::cuda_error_text;

// Kernels load activations and weights 16 bytes at a time (see kernels/cuda/common.cuh).
constexpr uint64_t kBindingAlignment = 16;

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaDriver* drv, CudaOptions options) : drv_(drv), options_(std::move(options)) {}
  ~CudaBackend() override;

  Status init(int ordinal);

  const DeviceInfo& info() const override { return info_; }
  Result<BufferId> create_buffer(uint64_t bytes, BufferUsage usage, const std::string& name) override;
  void destroy_buffer(BufferId id) override;
  Status write_buffer(BufferId id, uint64_t offset, const void* data, uint64_t bytes) override;
  Status read_buffer(BufferId id, uint64_t offset, void* data, uint64_t bytes) override;
  Result<PipelineId> create_pipeline(const PipelineDesc& desc) override;
  Result<CommandListId> record(std::span<const DispatchDesc> dispatches) override;
  void destroy_command_list(CommandListId id) override;
  Status submit(CommandListId id, const KpParams& params, bool timestamps) override;
  std::vector<double> last_timings() const override { return timings_; }
  std::vector<std::pair<double, double>> last_spans() const override { return spans_; }
  uint64_t peak_memory() const override { return peak_bytes_; }
  uint64_t free_memory() const override;
  std::optional<size_t> failed_dispatch() const override { return failed_dispatch_; }
  Result<double> measure_copy_bandwidth(uint64_t bytes, int repeats) override;

 private:
  struct Buffer {
    CUdeviceptr ptr = 0;
    uint64_t bytes = 0;
    std::string name;
    bool live = false;
  };
  struct Pipeline {
    std::string label;  // "matmul_q4k.gemm (matmul_q4k.cu: matmul_q4k_gemm)"
    CUfunction function = nullptr;  // in a module of modules_
    std::array<uint32_t, 3> block{1, 1, 1};
    size_t n_bindings = 0;
    bool overlap = false;  // the entry's "overlap": programmatic launch on sm_90+
    CUdeviceptr workspace = 0;  // the entry's zeroed scratch, passed after the bindings (0: none)
  };
  struct Launch {
    PipelineId pipeline = 0;
    std::array<uint32_t, 3> grid{1, 1, 1};
    KpStepParams step{};
    std::vector<CUdeviceptr> args;  // binding pointers, in registry order
  };
  struct CommandList {
    std::vector<Launch> launches;
    CUgraphExec exec = nullptr;
    bool live = false;
  };

  Status check(CUresult r, std::string_view what) const {
    if (r == CUDA_SUCCESS) return {};
    return make_error("CUDA device {} ({}): {} failed: {}", ordinal_, info_.name, what, cuda_error_text(*drv_, r));
  }
  Status make_current() const { return check(drv_->cuCtxSetCurrent(ctx_), "cuCtxSetCurrent"); }
  Result<const Buffer*> find_buffer(BufferId id, uint64_t offset, uint64_t bytes, std::string_view what) const;
  Status launch(const Launch& l, size_t index, CommandListId list);
  Result<CUmodule> module_for(const PipelineDesc& desc, const KernelSource& source, const std::string& defines,
                              const std::string& function, uint64_t key);

  const CudaDriver* drv_;
  CudaOptions options_;
  DeviceInfo info_;
  int ordinal_ = 0;
  bool programmatic_ = false;  // every launch carries the programmatic-serialization attribute
  bool can_overlap_ = false;   // sm_90+: launches of "overlap" entries carry it
  CUdevice device_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  CUdeviceptr params_dev_ = 0;        // KpParams, read by every kernel
  KpParams* params_host_ = nullptr;   // pinned staging copy
  std::vector<CUevent> events_;
  std::vector<Buffer> buffers_{1};    // id 0 is never handed out
  std::vector<Pipeline> pipelines_{1};
  std::vector<CommandList> lists_{1};
  std::map<uint64_t, PipelineId> pipeline_by_key_;  // (module key, function)
  std::map<uint64_t, CUmodule> modules_;            // module key: one per (file + includes, constants, arch)
  std::vector<double> timings_;
  std::vector<std::pair<double, double>> spans_;  // per dispatch: start, end (ms after the first event)
  uint64_t live_bytes_ = 0, peak_bytes_ = 0;
  std::optional<size_t> failed_dispatch_;  // of the last submit, when known
};

CudaBackend::~CudaBackend() {
  if (ctx_ == nullptr) return;
  // Teardown cannot report errors; each call is still made so nothing leaks.
  drv_->cuCtxSetCurrent(ctx_);
  if (stream_ != nullptr) drv_->cuStreamSynchronize(stream_);
  for (auto& l : lists_) {
    if (l.exec != nullptr) drv_->cuGraphExecDestroy(l.exec);
  }
  for (auto& [key, m] : modules_) drv_->cuModuleUnload(m);
  for (auto& b : buffers_) {
    if (b.live) drv_->cuMemFree(b.ptr);
  }
  for (CUevent e : events_) drv_->cuEventDestroy(e);
  if (params_dev_ != 0) drv_->cuMemFree(params_dev_);
  if (params_host_ != nullptr) drv_->cuMemFreeHost(params_host_);
  if (stream_ != nullptr) drv_->cuStreamDestroy(stream_);
  drv_->cuDevicePrimaryCtxRelease(device_);
}

Status CudaBackend::init(int ordinal) {
  ordinal_ = ordinal;
  KP_TRY(info_, cuda::query_device(*drv_, ordinal, &device_));
  KP_TRY_STATUS(check(drv_->cuDevicePrimaryCtxRetain(&ctx_, device_), "cuDevicePrimaryCtxRetain"));
  KP_TRY_STATUS(make_current());
  KP_TRY_STATUS(check(drv_->cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate"));
  KP_TRY_STATUS(check(drv_->cuMemAlloc(&params_dev_, sizeof(KpParams)), "cuMemAlloc (KpParams)"));
  void* host = nullptr;
  KP_TRY_STATUS(check(drv_->cuMemAllocHost(&host, sizeof(KpParams)), "cuMemAllocHost (KpParams)"));
  params_host_ = static_cast<KpParams*>(host);
  *params_host_ = KpParams{};
  if (options_.disk_cache && options_.cache_dir.empty()) options_.cache_dir = default_cuda_cache_dir();
  int major = 0;
  KP_TRY_STATUS(check(drv_->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device_),
                      "cuDeviceGetAttribute (compute capability)"));
  programmatic_ = options_.programmatic_launch && major >= 9;
  can_overlap_ = major >= 9;
  return {};
}

Result<BufferId> CudaBackend::create_buffer(uint64_t bytes, BufferUsage usage, const std::string& name) {
  KP_TRY_STATUS(make_current());
  // Host-visible buffers are device memory too: the host writes them between
  // submits with an ordered copy, so no mapping is needed.
  (void)usage;
  Buffer b;
  b.bytes = bytes;
  b.name = name;
  const uint64_t alloc = std::max<uint64_t>(bytes, kBindingAlignment);
  KP_TRY_STATUS(check(drv_->cuMemAlloc(&b.ptr, alloc), fmt::format("cuMemAlloc({} bytes for buffer '{}')", bytes, name)));
  // Zeroed like the CPU backend's buffers, so an unwritten cache row reads as 0.
  Status zero = check(drv_->cuMemsetD8Async(b.ptr, 0, alloc, stream_), "cuMemsetD8Async");
  if (zero.ok()) zero = check(drv_->cuStreamSynchronize(stream_), "cuStreamSynchronize");
  if (!zero.ok()) {
    drv_->cuMemFree(b.ptr);
    return zero.take_error();
  }
  b.live = true;
  live_bytes_ += alloc;
  peak_bytes_ = std::max(peak_bytes_, live_bytes_);
  buffers_.push_back(std::move(b));
  return static_cast<BufferId>(buffers_.size() - 1);
}

void CudaBackend::destroy_buffer(BufferId id) {
  KP_CHECK(id > 0 && id < buffers_.size() && buffers_[id].live, "destroy_buffer: unknown buffer id");
  Buffer& b = buffers_[id];
  drv_->cuCtxSetCurrent(ctx_);
  drv_->cuStreamSynchronize(stream_);
  drv_->cuMemFree(b.ptr);
  live_bytes_ -= std::max<uint64_t>(b.bytes, kBindingAlignment);
  b = Buffer{};
}

Result<const CudaBackend::Buffer*> CudaBackend::find_buffer(BufferId id, uint64_t offset, uint64_t bytes,
                                                             std::string_view what) const {
  if (id == 0 || id >= buffers_.size() || !buffers_[id].live) return make_error("{}: no buffer with id {}", what, id);
  const Buffer& b = buffers_[id];
  if (offset > b.bytes || bytes > b.bytes - offset) {
    return make_error("{}: bytes [{}, {}) are outside buffer '{}' of {} bytes", what, offset, offset + bytes, b.name,
                      b.bytes);
  }
  return &b;
}

Status CudaBackend::write_buffer(BufferId id, uint64_t offset, const void* data, uint64_t bytes) {
  KP_TRY(const Buffer* b, find_buffer(id, offset, bytes, "write_buffer"));
  if (bytes == 0) return {};
  KP_TRY_STATUS(make_current());
  KP_TRY_STATUS(check(drv_->cuMemcpyHtoDAsync(b->ptr + offset, data, bytes, stream_),
                      fmt::format("cuMemcpyHtoDAsync (buffer '{}')", b->name)));
  return check(drv_->cuStreamSynchronize(stream_), fmt::format("cuStreamSynchronize after writing '{}'", b->name));
}

Status CudaBackend::read_buffer(BufferId id, uint64_t offset, void* data, uint64_t bytes) {
  KP_TRY(const Buffer* b, find_buffer(id, offset, bytes, "read_buffer"));
  if (bytes == 0) return {};
  KP_TRY_STATUS(make_current());
  KP_TRY_STATUS(check(drv_->cuMemcpyDtoHAsync(data, b->ptr + offset, bytes, stream_),
                      fmt::format("cuMemcpyDtoHAsync (buffer '{}')", b->name)));
  return check(drv_->cuStreamSynchronize(stream_), fmt::format("cuStreamSynchronize after reading '{}'", b->name));
}

// The loaded module of (source, constants, arch): from memory, else from the
// disk cache, else compiled. All entries of a file share it.
Result<CUmodule> CudaBackend::module_for(const PipelineDesc& desc, const KernelSource& source,
                                         const std::string& defines, const std::string& function, uint64_t key) {
  if (auto it = modules_.find(key); it != modules_.end()) return it->second;
  ModuleDiskCache disk(options_.cache_dir);
  std::optional<CompiledKernel> compiled;
  if (options_.disk_cache) compiled = disk.load(key, info_.arch);
  if (!compiled) {
    auto fresh = nvrtc_compile(source, defines, function, info_.arch);
    if (!fresh.ok()) {
      return make_error("kernel {} entry '{}': {}", desc.kernel->id, desc.entry, fresh.error().message);
    }
    compiled = std::move(*fresh);
    if (options_.disk_cache) disk.store(key, *compiled);
  }
  KP_TRY_STATUS(make_current());
  CUmodule module = nullptr;
  KP_TRY_STATUS(check(drv_->cuModuleLoadData(&module, compiled->cubin.data()),
                      fmt::format("cuModuleLoadData for {} ({})", source.path, info_.arch)));
  modules_[key] = module;
  return module;
}

Result<PipelineId> CudaBackend::create_pipeline(const PipelineDesc& desc) {
  KP_CHECK(desc.kernel != nullptr, "create_pipeline: no kernel");
  const std::string where = fmt::format("kernel {} entry '{}'", desc.kernel->id, desc.entry);
  if (desc.impl == nullptr || desc.impl->backend != "cuda") {
    return make_error("{}: no CUDA implementation was given (kernels/cuda/registry.json lists none?)", where);
  }
  auto entry = desc.impl->entries.find(desc.entry);
  if (entry == desc.impl->entries.end()) {
    return make_error("{}: {} implements no such entry", where, desc.impl->file);
  }
  const std::string& function = entry->second.function;
  KP_TRY(KernelSource source, load_kernel_source(desc.impl->file, cuda_include_dirs(*desc.impl)));
  const std::string defines = constant_defines(desc.constants);
  const std::string versions = fmt::format("nvrtc {} driver {}", nvrtc_version(), drv_->driver_version);
  uint64_t module_key = hash_text(defines, source.hash);
  for (const std::string& part : {info_.arch, versions}) module_key = hash_text(part + '\n', module_key);
  const uint64_t key = hash_text(function, module_key);
  if (auto it = pipeline_by_key_.find(key); it != pipeline_by_key_.end()) return it->second;

  // Block dimensions are expressions over the constants only (T is not known yet).
  kpath::SymbolTable table;
  kpath::add_constants(desc.constants, table);
  KP_TRY(auto block, kpath::eval_dims(entry->second.block, table, fmt::format("{}: {}.block", desc.impl->file, desc.entry)));

  KP_TRY(CUmodule module, module_for(desc, source, defines, function, module_key));
  Pipeline p;
  p.label = fmt::format("{}.{} ({}: {})", desc.kernel->id, desc.entry, source.main.name, function);
  p.block = block;
  p.n_bindings = desc.kernel->bindings.size();
  p.overlap = entry->second.overlap;
  KP_TRY_STATUS(check(drv_->cuModuleGetFunction(&p.function, module, function.c_str()),
                      "cuModuleGetFunction for " + p.label));
  int max_threads = 0, registers = 0;
  KP_TRY_STATUS(check(drv_->cuFuncGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, p.function),
                      "cuFuncGetAttribute for " + p.label));
  KP_TRY_STATUS(check(drv_->cuFuncGetAttribute(&registers, CU_FUNC_ATTRIBUTE_NUM_REGS, p.function),
                      "cuFuncGetAttribute for " + p.label));
  const uint64_t threads = uint64_t{block[0]} * block[1] * block[2];
  if (threads > static_cast<uint64_t>(max_threads)) {
    return make_error("{}: block {}x{}x{} has {} threads, the compiled kernel allows at most {} ({} registers)",
                      p.label, block[0], block[1], block[2], threads, max_threads, registers);
  }
  if (!entry->second.workspace.empty()) {
    // Scratch the kernel leaves as it found it (zeroed): one per pipeline, as
    // the launches of a stream never run a pipeline twice at once.
    KP_TRY(kpath::ExprValue bytes, kpath::eval_expr(entry->second.workspace, table));
    if (!bytes.is_integer || bytes.value < 1 || bytes.value > double(uint64_t{1} << 32)) {
      return make_error("{}: {}.workspace '{}' is {} bytes; expected an integer from 1 to 2^32", p.label,
                        desc.entry, entry->second.workspace, bytes.value);
    }
    KP_TRY(BufferId ws, create_buffer(static_cast<uint64_t>(bytes.value), BufferUsage::kDevice,
                                      "workspace of " + p.label));
    p.workspace = buffers_[ws].ptr;
  }
  pipelines_.push_back(std::move(p));
  const auto id = static_cast<PipelineId>(pipelines_.size() - 1);
  pipeline_by_key_[key] = id;
  return id;
}

Result<CommandListId> CudaBackend::record(std::span<const DispatchDesc> dispatches) {
  CommandList list;
  list.live = true;
  for (size_t i = 0; i < dispatches.size(); ++i) {
    const DispatchDesc& d = dispatches[i];
    if (d.pipeline == 0 || d.pipeline >= pipelines_.size()) {
      return make_error("record: dispatch {} names no pipeline (id {})", i, d.pipeline);
    }
    const Pipeline& p = pipelines_[d.pipeline];
    if (d.bindings.size() != p.n_bindings) {
      return make_error("record: dispatch {} ({}) has {} bindings, the kernel declares {}", i, p.label,
                        d.bindings.size(), p.n_bindings);
    }
    if (d.grid[0] == 0 || d.grid[1] == 0 || d.grid[2] == 0 || d.grid[1] > 65535 || d.grid[2] > 65535) {
      return make_error("record: dispatch {} ({}): grid {}x{}x{} is outside the device's limits", i, p.label,
                        d.grid[0], d.grid[1], d.grid[2]);
    }
    Launch l;
    l.pipeline = d.pipeline;
    l.grid = d.grid;
    l.step = d.step;
    for (size_t b = 0; b < d.bindings.size(); ++b) {
      const Binding& bd = d.bindings[b];
      KP_TRY(const Buffer* buf, find_buffer(bd.buffer, bd.offset, bd.bytes,
                                            fmt::format("record: dispatch {} ({}) binding {}", i, p.label, b)));
      if (bd.offset % kBindingAlignment != 0) {
        return make_error("record: dispatch {} ({}) binding {}: offset {} in buffer '{}' is not a multiple of {} "
                          "bytes (CUDA kernels use 16-byte loads)",
                          i, p.label, b, bd.offset, buf->name, kBindingAlignment);
      }
      l.args.push_back(buf->ptr + bd.offset);
    }
    list.launches.push_back(std::move(l));
  }
  lists_.push_back(std::move(list));
  return static_cast<CommandListId>(lists_.size() - 1);
}

void CudaBackend::destroy_command_list(CommandListId id) {
  KP_CHECK(id > 0 && id < lists_.size() && lists_[id].live, "destroy_command_list: unknown command list");
  CommandList& l = lists_[id];
  if (l.exec != nullptr) {
    drv_->cuCtxSetCurrent(ctx_);
    drv_->cuStreamSynchronize(stream_);
    drv_->cuGraphExecDestroy(l.exec);
  }
  l = CommandList{};
}

uint64_t CudaBackend::free_memory() const {
  size_t free = 0, total = 0;
  if (!make_current().ok() || drv_->cuMemGetInfo(&free, &total) != CUDA_SUCCESS) return 0;
  return free;
}

Status CudaBackend::launch(const Launch& l, size_t index, CommandListId list) {
  const Pipeline& p = pipelines_[l.pipeline];
  // Kernel arguments: (const KpParams*, KpStepParams, binding pointers...).
  std::vector<void*> args;
  args.reserve(2 + l.args.size());
  args.push_back(const_cast<CUdeviceptr*>(&params_dev_));
  args.push_back(const_cast<KpStepParams*>(&l.step));
  for (const CUdeviceptr& a : l.args) args.push_back(const_cast<CUdeviceptr*>(&a));
  if (p.workspace != 0) args.push_back(const_cast<CUdeviceptr*>(&p.workspace));
  CUresult r;
  if (programmatic_ || (p.overlap && can_overlap_)) {
    CUlaunchAttribute attr{};
    attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attr.value.programmaticStreamSerializationAllowed = 1;
    CUlaunchConfig cfg{};
    cfg.gridDimX = l.grid[0];
    cfg.gridDimY = l.grid[1];
    cfg.gridDimZ = l.grid[2];
    cfg.blockDimX = p.block[0];
    cfg.blockDimY = p.block[1];
    cfg.blockDimZ = p.block[2];
    cfg.hStream = stream_;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    r = drv_->cuLaunchKernelEx(&cfg, p.function, args.data(), nullptr);
  } else {
    r = drv_->cuLaunchKernel(p.function, l.grid[0], l.grid[1], l.grid[2], p.block[0], p.block[1], p.block[2], 0,
                             stream_, args.data(), nullptr);
  }
  if (r == CUDA_SUCCESS) return {};
  // An error a kernel raised while running (sticky: the context is dead)
  // surfaces at whichever call comes next; other errors belong to this launch.
  const bool from_earlier = r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_LAUNCH_FAILED ||
                            r == CUDA_ERROR_ILLEGAL_INSTRUCTION || r == CUDA_ERROR_MISALIGNED_ADDRESS ||
                            r == CUDA_ERROR_INVALID_ADDRESS_SPACE || r == CUDA_ERROR_INVALID_PC ||
                            r == CUDA_ERROR_ASSERT || r == CUDA_ERROR_HARDWARE_STACK_ERROR ||
                            r == CUDA_ERROR_LAUNCH_TIMEOUT;
  if (!from_earlier) failed_dispatch_ = index;
  return make_error("CUDA device {}: command list {} dispatch {} ({}, grid {}x{}x{}, block {}x{}x{}): cuLaunchKernel "
                    "failed: {}",
                    ordinal_, list, index, p.label, l.grid[0], l.grid[1], l.grid[2], p.block[0], p.block[1],
                    p.block[2], cuda_error_text(*drv_, r));
}

Status CudaBackend::submit(CommandListId id, const KpParams& params, bool timestamps) {
  if (id == 0 || id >= lists_.size() || !lists_[id].live) return make_error("submit: no command list with id {}", id);
  failed_dispatch_.reset();
  CommandList& list = lists_[id];
  KP_TRY_STATUS(make_current());
  *params_host_ = params;
  KP_TRY_STATUS(check(drv_->cuMemcpyHtoDAsync(params_dev_, params_host_, sizeof(KpParams), stream_),
                      "cuMemcpyHtoDAsync (KpParams)"));
  const size_t n = list.launches.size();
  if (timestamps) {
    // Launch by launch, an event on each side: per-dispatch times and the
    // gaps between dispatches, no graph.
    while (events_.size() < 2 * n) {
      CUevent e = nullptr;
      KP_TRY_STATUS(check(drv_->cuEventCreate(&e, CU_EVENT_DEFAULT), "cuEventCreate"));
      events_.push_back(e);
    }
    for (size_t i = 0; i < n; ++i) {
      KP_TRY_STATUS(check(drv_->cuEventRecord(events_[2 * i], stream_), "cuEventRecord"));
      KP_TRY_STATUS(launch(list.launches[i], i, id));
      KP_TRY_STATUS(check(drv_->cuEventRecord(events_[2 * i + 1], stream_), "cuEventRecord"));
    }
  } else if (options_.sync_each_dispatch) {
    for (size_t i = 0; i < n; ++i) {
      KP_TRY_STATUS(launch(list.launches[i], i, id));
      if (CUresult r = drv_->cuStreamSynchronize(stream_); r != CUDA_SUCCESS) {
        failed_dispatch_ = i;
        return make_error("CUDA device {}: command list {} dispatch {} ({}) failed while running: {}", ordinal_, id,
                          i, pipelines_[list.launches[i].pipeline].label, cuda_error_text(*drv_, r));
      }
    }
  } else if (n > 0) {
    if (list.exec == nullptr) {
      // First submit: capture the launches into a graph. The graph holds the
      // launch arguments (buffer pointers, step params) and reads KpParams
      // from params_dev_, which is rewritten before every replay.
      KP_TRY_STATUS(check(drv_->cuStreamBeginCapture(stream_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                          "cuStreamBeginCapture"));
      Status launched;
      for (size_t i = 0; i < n && launched.ok(); ++i) launched = launch(list.launches[i], i, id);
      CUgraph graph = nullptr;
      Status ended = check(drv_->cuStreamEndCapture(stream_, &graph), "cuStreamEndCapture");
      if (!launched.ok()) {
        if (graph != nullptr) drv_->cuGraphDestroy(graph);
        return launched;
      }
      KP_TRY_STATUS(ended);
      Status made = check(drv_->cuGraphInstantiate(&list.exec, graph, 0),
                          fmt::format("cuGraphInstantiate (command list {}, {} dispatches)", id, n));
      drv_->cuGraphDestroy(graph);
      KP_TRY_STATUS(made);
    }
    KP_TRY_STATUS(check(drv_->cuGraphLaunch(list.exec, stream_), fmt::format("cuGraphLaunch (command list {})", id)));
  }
  if (CUresult r = drv_->cuStreamSynchronize(stream_); r != CUDA_SUCCESS) {
    // The failing dispatch is not known here; CudaOptions::sync_each_dispatch names it.
    std::string first;
    for (size_t i = 0; i < n && i < 8; ++i) first += fmt::format(", {}", pipelines_[list.launches[i].pipeline].label);
    return make_error("CUDA device {}: running command list {} ({} dispatches{}: {}{}) failed: {} (run with "
                      "--sync-each-dispatch to name the dispatch)",
                      ordinal_, id, n, timestamps ? "" : ", as a graph", first.empty() ? "" : first.substr(2),
                      n > 8 ? ", ..." : "", cuda_error_text(*drv_, r));
  }
  if (timestamps) {
    timings_.assign(n, 0.0);
    spans_.assign(n, {0.0, 0.0});
    for (size_t i = 0; i < n; ++i) {
      float start = 0, end = 0;
      if (i > 0) {
        KP_TRY_STATUS(check(drv_->cuEventElapsedTime(&start, events_[0], events_[2 * i]), "cuEventElapsedTime"));
      }
      KP_TRY_STATUS(check(drv_->cuEventElapsedTime(&end, events_[0], events_[2 * i + 1]), "cuEventElapsedTime"));
      spans_[i] = {start, end};
      timings_[i] = end - start;
    }
  }
  return {};
}

// cuMemcpyDtoDAsync on the backend's stream between two events; run 0 warms up.
Result<double> CudaBackend::measure_copy_bandwidth(uint64_t bytes, int repeats) {
  if (bytes == 0 || repeats < 1) return make_error("CUDA: copy bandwidth needs bytes > 0 and repeats >= 1");
  KP_TRY(BufferId src, create_buffer(bytes, BufferUsage::kDevice, "bandwidth src"));
  auto dst = create_buffer(bytes, BufferUsage::kDevice, "bandwidth dst");
  if (!dst.ok()) {
    destroy_buffer(src);
    return dst.take_error();
  }
  CUevent start = nullptr, stop = nullptr;
  double best = 0;
  Status st = check(drv_->cuEventCreate(&start, CU_EVENT_DEFAULT), "cuEventCreate");
  if (st.ok()) st = check(drv_->cuEventCreate(&stop, CU_EVENT_DEFAULT), "cuEventCreate");
  for (int r = 0; r <= repeats && st.ok(); ++r) {
    st = check(drv_->cuEventRecord(start, stream_), "cuEventRecord");
    if (st.ok()) {
      st = check(drv_->cuMemcpyDtoDAsync(buffers_[*dst].ptr, buffers_[src].ptr, bytes, stream_),
                 fmt::format("cuMemcpyDtoDAsync({} bytes)", bytes));
    }
    if (st.ok()) st = check(drv_->cuEventRecord(stop, stream_), "cuEventRecord");
    if (st.ok()) st = check(drv_->cuEventSynchronize(stop), "cuEventSynchronize");
    float ms = 0;
    if (st.ok()) st = check(drv_->cuEventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
    if (st.ok() && r > 0 && ms > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms * 1e-3));
  }
  if (start != nullptr) drv_->cuEventDestroy(start);
  if (stop != nullptr) drv_->cuEventDestroy(stop);
  destroy_buffer(src);
  destroy_buffer(*dst);
  KP_TRY_STATUS(st);
  if (best <= 0) return make_error("CUDA: the copy bandwidth measurement took no measurable time");
  return best;
}

}  // namespace

Result<std::unique_ptr<Backend>> make_cuda_backend(int device, const CudaOptions& options) {
  KP_TRY(const CudaDriver* drv, cuda::load_cuda_driver());
  auto backend = std::make_unique<CudaBackend>(drv, options);
  KP_TRY_STATUS(backend->init(device));
  return std::unique_ptr<Backend>(std::move(backend));
}

Result<std::unique_ptr<Backend>> make_cuda_backend(int device, const std::string& cache_dir) {
  CudaOptions options;
  options.cache_dir = cache_dir;
  return make_cuda_backend(device, options);
}

}  // namespace kp::backend
