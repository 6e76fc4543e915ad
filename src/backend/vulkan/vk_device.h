// Vulkan instance, validation messenger, physical device choice and the
// logical device with its compute queue.
#pragma once

#include <vulkan/vulkan.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"

namespace kp::backend::vk {

// Counts validation-layer messages (warnings and errors) and keeps the first few.
struct ValidationLog {
  std::atomic<uint64_t> count{0};
  mutable std::mutex mutex;
  std::vector<std::string> first;  // at most kKeep messages
  static constexpr size_t kKeep = 16;
};

// What the kernels may use on this device (compile-time macros of every kernel).
struct DeviceCaps {
  bool subgroup_arithmetic = false;  // subgroupAdd/Max in compute shaders
  uint32_t subgroup_size = 1;
  bool f16 = false;                  // shaderFloat16 + storageBuffer16BitAccess (enabled)
  bool int8 = false;                 // shaderInt8 + storageBuffer8BitAccess (enabled)
  bool int_dot = false;              // shaderIntegerDotProduct (enabled)
  bool checkpoints = false;          // VK_NV_device_diagnostic_checkpoints (enabled)
  bool memory_budget = false;        // VK_EXT_memory_budget (enabled)
  uint64_t max_binding_bytes = 0;    // maxStorageBufferRange
  uint64_t min_binding_alignment = 16;  // minStorageBufferOffsetAlignment
  uint64_t max_allocation_bytes = 0; // maxMemoryAllocationSize
  uint32_t max_groups[3] = {65535, 65535, 65535};
  uint32_t timestamp_valid_bits = 0;
  double timestamp_period_ns = 1.0;
};

class Context {
 public:
  // device_index -1: the first discrete GPU, else integrated, virtual, CPU.
  static Result<std::unique_ptr<Context>> create(int device_index, bool validation);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  VkInstance instance() const { return instance_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkDevice device() const { return device_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  // VK_API_VERSION_1_x the kernels are compiled for: the device's, at most 1.3.
  uint32_t device_api_version() const { return api_version_; }
  const VkPhysicalDeviceMemoryProperties& memory_properties() const { return memory_; }
  const DeviceCaps& caps() const { return caps_; }
  const DeviceInfo& info() const { return info_; }
  // Bytes the largest device-local heap can still give: the driver's budget
  // less its usage with VK_EXT_memory_budget, else the heap's size less
  // `allocated` (what this process holds).
  uint64_t free_device_memory(uint64_t allocated) const;
  const ValidationLog& validation() const { return *log_; }
  PFN_vkCmdSetCheckpointNV cmd_set_checkpoint = nullptr;
  PFN_vkGetQueueCheckpointDataNV get_checkpoints = nullptr;

 private:
  Context() = default;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  uint32_t api_version_ = VK_API_VERSION_1_1;
  VkPhysicalDeviceMemoryProperties memory_{};
  DeviceCaps caps_;
  DeviceInfo info_;
  std::unique_ptr<ValidationLog> log_ = std::make_unique<ValidationLog>();
};

// Instance without validation, listing every device (for `kpath devices`).
Result<std::vector<DeviceInfo>> enumerate_devices();

}  // namespace kp::backend::vk
