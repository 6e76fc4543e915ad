// The Vulkan backend: GLSL kernels (kernels/vulkan/*.comp) compiled at run time
// with shaderc, cached on disk by (source incl. includes, entry, device) and in
// memory by (source, entry, constant values); device-local buffers with a
// staging path; command lists recorded once and replayed by submit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"

namespace kp::backend {

struct VulkanOptions {
  int device_index = -1;     // -1: the first discrete GPU, else the best device found
  bool validation = false;   // enable VK_LAYER_KHRONOS_validation (kpath --vk-validation / KPATH_VK_VALIDATION)
  std::string cache_dir;     // compiled SPIR-V; "" = kp::user_cache_dir() + "/vulkan"
  bool disk_cache = true;    // false: compile every kernel (tests of the compiler path)
  std::string kernels_dir;   // built-in kernels/ (for kernels/include); "" = kpath::default_kernels_dir()
  // Debugging: every dispatch of a list is its own submission, waited for, so
  // that a device loss names its dispatch on any driver (without this only
  // drivers with VK_NV_device_diagnostic_checkpoints can name it).
  bool sync_each_dispatch = false;
  // Debugging: mark every dispatch with VK_NV_device_diagnostic_checkpoints
  // (where the device has it) so that a device loss names the dispatch that
  // was running. Off by default: the markers cost time per dispatch.
  bool checkpoints = false;
};

// Counters of the shader caches, for tests and `kpath bench` diagnostics.
struct ShaderCacheStats {
  uint64_t compiled = 0;     // GLSL compiled by shaderc
  uint64_t disk_hits = 0;    // SPIR-V read from the disk cache
  uint64_t memory_hits = 0;  // pipelines reused from the in-memory cache
};

// The Vulkan-specific view of a backend made by make_vulkan_backend.
class VulkanBackend : public Backend {
 public:
  // Validation messages (warnings and errors of VK_LAYER_KHRONOS_validation)
  // reported since the backend was created; 0 when validation is off.
  virtual uint64_t validation_message_count() const = 0;
  // The first few of those messages, for test failure output.
  virtual std::vector<std::string> validation_messages() const = 0;
  // maxStorageBufferRange: the largest binding a dispatch may use.
  virtual uint64_t max_binding_bytes() const = 0;
  virtual ShaderCacheStats shader_cache_stats() const = 0;
};

Result<std::unique_ptr<Backend>> make_vulkan_backend(const VulkanOptions& options);

// Every Vulkan device, in the order device_index counts them. An error only
// when no Vulkan loader or driver is present.
Result<std::vector<DeviceInfo>> list_vulkan_devices();

}  // namespace kp::backend
