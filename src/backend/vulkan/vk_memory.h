// Buffers of the Vulkan backend: one dedicated allocation per buffer (a model
// has a few hundred tensors, far below maxMemoryAllocationCount), device-local
// for kDevice and host-visible coherent for kHostVisible. Device-local memory
// that the host cannot map is written and read through one staging buffer.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <string>

#include "backend/backend.h"
#include "backend/vulkan/vk_device.h"
#include "core/result.h"

namespace kp::backend::vk {

enum class MemoryKind { kDevice, kHostVisible, kStaging };

struct Buffer {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceMemory memory = VK_NULL_HANDLE;
  uint64_t size = 0;        // bytes requested by the caller
  uint64_t capacity = 0;    // bytes of the VkBuffer: size rounded up to 16 (bindings may round up to it)
  uint64_t allocated = 0;   // bytes of the allocation (counted in peak memory)
  void* mapped = nullptr;   // set when the memory is host-visible and coherent
  std::string name;
};

class Memory {
 public:
  explicit Memory(const Context& ctx) : ctx_(ctx) {}
  ~Memory();
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  Status init();
  Result<BufferId> create(uint64_t bytes, BufferUsage usage, const std::string& name);
  void destroy(BufferId id);
  Status write(BufferId id, uint64_t offset, const void* data, uint64_t bytes);
  Status read(BufferId id, uint64_t offset, void* data, uint64_t bytes);
  const Buffer* find(BufferId id) const;
  uint64_t peak() const { return peak_; }
  uint64_t live() const { return live_; }

 private:
  Result<Buffer> allocate(uint64_t bytes, MemoryKind kind, const std::string& name);
  void release(Buffer& b);
  Status ensure_staging(uint64_t bytes);
  // Copies on the queue and waits; the barrier after the copy makes the data
  // visible to later dispatches, copies and host reads.
  Status copy(VkBuffer src, uint64_t src_offset, VkBuffer dst, uint64_t dst_offset, uint64_t bytes);
  Status check_range(const Buffer& b, uint64_t offset, uint64_t bytes, const char* what) const;

  const Context& ctx_;
  std::map<BufferId, Buffer> buffers_;
  BufferId next_id_ = 1;
  Buffer staging_;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer cmd_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  uint64_t live_ = 0;
  uint64_t peak_ = 0;
};

}  // namespace kp::backend::vk
