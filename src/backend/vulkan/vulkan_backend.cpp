// VulkanBackend: joins the device context, buffers, pipelines and command lists.
#include "backend/vulkan/vulkan_backend.h"

#include <filesystem>

#include "backend/vulkan/vk_bandwidth.h"
#include "backend/vulkan/vk_commands.h"
#include "backend/vulkan/vk_device.h"
#include "backend/vulkan/vk_memory.h"
#include "backend/vulkan/vk_pipeline.h"
#include "core/dirs.h"
#include "kernel_path/registry.h"

namespace kp::backend {
namespace {

class VulkanBackendImpl final : public VulkanBackend {
 public:
  static Result<std::unique_ptr<Backend>> create(const VulkanOptions& options) {
    KP_TRY(auto ctx, vk::Context::create(options.device_index, options.validation));
    std::unique_ptr<VulkanBackendImpl> be(new VulkanBackendImpl(std::move(ctx)));
    KP_TRY_STATUS(be->init(options));
    return std::unique_ptr<Backend>(std::move(be));
  }

  ~VulkanBackendImpl() override {
    // Command lists and pipelines go before the buffers and the device.
    commands_.reset();
    pipelines_.reset();
    memory_.reset();
  }

  const DeviceInfo& info() const override { return ctx_->info(); }

  Result<BufferId> create_buffer(uint64_t bytes, BufferUsage usage, const std::string& name) override {
    return memory_->create(bytes, usage, name);
  }
  void destroy_buffer(BufferId id) override { memory_->destroy(id); }
  Status write_buffer(BufferId id, uint64_t offset, const void* data, uint64_t bytes) override {
    return memory_->write(id, offset, data, bytes);
  }
  Status read_buffer(BufferId id, uint64_t offset, void* data, uint64_t bytes) override {
    return memory_->read(id, offset, data, bytes);
  }

  Result<PipelineId> create_pipeline(const PipelineDesc& desc) override { return pipelines_->get(desc); }

  Result<CommandListId> record(std::span<const DispatchDesc> dispatches) override {
    return commands_->record(dispatches);
  }
  void destroy_command_list(CommandListId id) override { commands_->destroy(id); }
  Status submit(CommandListId id, const KpParams& params, bool timestamps) override {
    return commands_->submit(id, params, timestamps);
  }
  std::vector<double> last_timings() const override { return commands_->last_timings(); }
  uint64_t peak_memory() const override { return memory_->peak(); }
  uint64_t free_memory() const override { return ctx_->free_device_memory(memory_->live()); }
  std::optional<size_t> failed_dispatch() const override { return commands_->failed_dispatch(); }
  Result<double> measure_copy_bandwidth(uint64_t bytes, int repeats) override {
    return vk::measure_copy_bandwidth(*ctx_, *memory_, bytes, repeats);
  }

  uint64_t validation_message_count() const override { return ctx_->validation().count.load(); }
  std::vector<std::string> validation_messages() const override {
    std::lock_guard<std::mutex> lock(ctx_->validation().mutex);
    return ctx_->validation().first;
  }
  uint64_t max_binding_bytes() const override { return ctx_->caps().max_binding_bytes; }
  ShaderCacheStats shader_cache_stats() const override { return pipelines_->stats(); }

 private:
  explicit VulkanBackendImpl(std::unique_ptr<vk::Context> ctx) : ctx_(std::move(ctx)) {}

  Status init(const VulkanOptions& options) {
    memory_ = std::make_unique<vk::Memory>(*ctx_);
    KP_TRY_STATUS(memory_->init());
    std::string cache_dir;
    if (options.disk_cache) cache_dir = options.cache_dir.empty() ? user_cache_dir() + "/vulkan" : options.cache_dir;
    const std::string kernels = options.kernels_dir.empty() ? kpath::default_kernels_dir() : options.kernels_dir;
    // Kernel includes: the kernel's own directory first (added per pipeline),
    // then the shared C/GLSL headers and the built-in GLSL helpers.
    const std::vector<std::string> include_dirs{(std::filesystem::path(kernels) / "include").string(),
                                                (std::filesystem::path(kernels) / "vulkan").string()};
    pipelines_ = std::make_unique<vk::Pipelines>(*ctx_, cache_dir, include_dirs);
    KP_TRY(BufferId params, memory_->create(sizeof(KpParams), BufferUsage::kHostVisible, "params"));
    commands_ = std::make_unique<vk::Commands>(*ctx_, *memory_, *pipelines_, params, options.sync_each_dispatch,
                                               options.checkpoints);
    return commands_->init();
  }

  std::unique_ptr<vk::Context> ctx_;
  std::unique_ptr<vk::Memory> memory_;
  std::unique_ptr<vk::Pipelines> pipelines_;
  std::unique_ptr<vk::Commands> commands_;
};

}  // namespace

Result<std::unique_ptr<Backend>> make_vulkan_backend(const VulkanOptions& options) {
  return VulkanBackendImpl::create(options);
}

Result<std::vector<DeviceInfo>> list_vulkan_devices() { return vk::enumerate_devices(); }

}  // namespace kp::backend
