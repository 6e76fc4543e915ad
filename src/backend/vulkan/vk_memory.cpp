#include "backend/vulkan/vk_memory.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/vulkan/vk_check.h"

namespace kp::backend::vk {
namespace {

constexpr uint64_t kStagingMax = 64ull << 20;  // uploads of larger tensors go in 64 MiB pieces
constexpr uint64_t kSizeGranule = 16;          // sizes round up so that bindings may round to 16 bytes

constexpr VkMemoryPropertyFlags kLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
constexpr VkMemoryPropertyFlags kVisible = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
constexpr VkMemoryPropertyFlags kCached = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;

// Memory types allowed by `type_bits`, best first for the kind of buffer.
std::vector<uint32_t> ranked_types(const VkPhysicalDeviceMemoryProperties& mp, uint32_t type_bits, MemoryKind kind) {
  std::vector<std::pair<int, uint32_t>> ranked;
  for (uint32_t i = 0; i < mp.memoryTypeCount; ++i) {
    if (!(type_bits & (1u << i))) continue;
    const VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
    const bool local = (f & kLocal) == kLocal;
    const bool visible = (f & kVisible) == kVisible;
    const bool cached = (f & kCached) == kCached;
    int rank;
    if (kind == MemoryKind::kDevice) {
      // Device-local memory the host cannot see first (the small BAR heap of a
      // discrete GPU is kept for host-visible buffers); unified memory next.
      rank = local ? (visible ? 1 : 0) : 2;
    } else if (kind == MemoryKind::kHostVisible) {
      if (!visible) continue;
      rank = local ? 0 : 1;
    } else {  // staging: host reads must be fast, so cached system memory first
      if (!visible) continue;
      rank = (cached ? 0 : 2) + (local ? 1 : 0);
    }
    ranked.emplace_back(rank, i);
  }
  std::stable_sort(ranked.begin(), ranked.end());
  std::vector<uint32_t> out;
  for (const auto& r : ranked) out.push_back(r.second);
  return out;
}

}  // namespace

Memory::~Memory() {
  for (auto& [id, b] : buffers_) release(b);
  release(staging_);
  if (fence_ != VK_NULL_HANDLE) vkDestroyFence(ctx_.device(), fence_, nullptr);
  if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(ctx_.device(), pool_, nullptr);
}

Status Memory::init() {
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = ctx_.queue_family();
  KP_VK_TRY(vkCreateCommandPool(ctx_.device(), &pi, nullptr, &pool_));
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  KP_VK_TRY(vkAllocateCommandBuffers(ctx_.device(), &ai, &cmd_));
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  KP_VK_TRY(vkCreateFence(ctx_.device(), &fi, nullptr, &fence_));
  return {};
}

Result<Buffer> Memory::allocate(uint64_t bytes, MemoryKind kind, const std::string& name) {
  Buffer b;
  b.name = name;
  b.size = bytes;
  const uint64_t padded = std::max<uint64_t>(kSizeGranule, (bytes + kSizeGranule - 1) / kSizeGranule * kSizeGranule);
  b.capacity = padded;
  const DeviceCaps& caps = ctx_.caps();
  if (caps.max_allocation_bytes != 0 && padded > caps.max_allocation_bytes) {
    return make_error("buffer '{}': {} bytes exceed the device's largest allocation ({} bytes)", name, bytes,
                      caps.max_allocation_bytes);
  }
  VkBufferCreateInfo bi{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bi.size = padded;
  bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  KP_VK_TRY(vkCreateBuffer(ctx_.device(), &bi, nullptr, &b.buffer));
  VkMemoryRequirements req{};
  vkGetBufferMemoryRequirements(ctx_.device(), b.buffer, &req);
  const auto types = ranked_types(ctx_.memory_properties(), req.memoryTypeBits, kind);
  VkResult last = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  for (uint32_t type : types) {
    VkMemoryAllocateInfo mi{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mi.allocationSize = req.size;
    mi.memoryTypeIndex = type;
    last = vkAllocateMemory(ctx_.device(), &mi, nullptr, &b.memory);
    if (last == VK_SUCCESS) {
      const VkMemoryPropertyFlags f = ctx_.memory_properties().memoryTypes[type].propertyFlags;
      if ((f & kVisible) == kVisible) {
        last = vkMapMemory(ctx_.device(), b.memory, 0, VK_WHOLE_SIZE, 0, &b.mapped);
        if (last != VK_SUCCESS) break;
      }
      break;
    }
    if (last != VK_ERROR_OUT_OF_DEVICE_MEMORY && last != VK_ERROR_OUT_OF_HOST_MEMORY) break;
  }
  if (last != VK_SUCCESS || b.memory == VK_NULL_HANDLE) {
    release(b);
    if (types.empty()) return make_error("buffer '{}': the device has no suitable memory type", name);
    return make_error("buffer '{}' ({} bytes): {}", name, bytes, vk_error(last, "vkAllocateMemory").message);
  }
  b.allocated = req.size;
  const VkResult bind = vkBindBufferMemory(ctx_.device(), b.buffer, b.memory, 0);
  if (bind != VK_SUCCESS) {
    release(b);
    return vk_error(bind, "vkBindBufferMemory");
  }
  return b;
}

void Memory::release(Buffer& b) {
  if (b.mapped != nullptr) vkUnmapMemory(ctx_.device(), b.memory);
  if (b.buffer != VK_NULL_HANDLE) vkDestroyBuffer(ctx_.device(), b.buffer, nullptr);
  if (b.memory != VK_NULL_HANDLE) vkFreeMemory(ctx_.device(), b.memory, nullptr);
  b = Buffer{};
}

Result<BufferId> Memory::create(uint64_t bytes, BufferUsage usage, const std::string& name) {
  KP_TRY(Buffer b, allocate(bytes, usage == BufferUsage::kHostVisible ? MemoryKind::kHostVisible : MemoryKind::kDevice, name));
  live_ += b.allocated;
  peak_ = std::max(peak_, live_);
  const BufferId id = next_id_++;
  buffers_.emplace(id, std::move(b));
  return id;
}

void Memory::destroy(BufferId id) {
  auto it = buffers_.find(id);
  if (it == buffers_.end()) return;
  live_ -= it->second.allocated;
  release(it->second);
  buffers_.erase(it);
}

const Buffer* Memory::find(BufferId id) const {
  auto it = buffers_.find(id);
  return it == buffers_.end() ? nullptr : &it->second;
}

Status Memory::check_range(const Buffer& b, uint64_t offset, uint64_t bytes, const char* what) const {
  if (offset > b.size || bytes > b.size - offset) {
    return make_error("{} buffer '{}': bytes [{}, {}) are outside its {} bytes", what, b.name, offset, offset + bytes,
                      b.size);
  }
  return {};
}

Status Memory::ensure_staging(uint64_t bytes) {
  const uint64_t want = std::min(kStagingMax, bytes);
  if (staging_.buffer != VK_NULL_HANDLE && staging_.size >= want) return {};
  release(staging_);
  KP_TRY(staging_, allocate(want, MemoryKind::kStaging, "staging"));
  if (staging_.mapped == nullptr) return make_error("Vulkan: the staging buffer is not host-visible");
  return {};
}

Status Memory::copy(VkBuffer src, uint64_t src_offset, VkBuffer dst, uint64_t dst_offset, uint64_t bytes) {
  KP_VK_TRY(vkResetCommandBuffer(cmd_, 0));
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  KP_VK_TRY(vkBeginCommandBuffer(cmd_, &begin));
  VkBufferCopy region{src_offset, dst_offset, bytes};
  vkCmdCopyBuffer(cmd_, src, dst, 1, &region);
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       0, 1, &mb, 0, nullptr, 0, nullptr);
  KP_VK_TRY(vkEndCommandBuffer(cmd_));
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd_;
  KP_VK_TRY(vkResetFences(ctx_.device(), 1, &fence_));
  KP_VK_TRY(vkQueueSubmit(ctx_.queue(), 1, &si, fence_));
  KP_VK_TRY(vkWaitForFences(ctx_.device(), 1, &fence_, VK_TRUE, UINT64_MAX));
  return {};
}

Status Memory::write(BufferId id, uint64_t offset, const void* data, uint64_t bytes) {
  auto it = buffers_.find(id);
  if (it == buffers_.end()) return make_error("write_buffer: unknown buffer id {}", id);
  Buffer& b = it->second;
  KP_TRY_STATUS(check_range(b, offset, bytes, "write_buffer:"));
  if (bytes == 0) return {};
  if (b.mapped != nullptr) {
    std::memcpy(static_cast<uint8_t*>(b.mapped) + offset, data, bytes);
    return {};
  }
  KP_TRY_STATUS(ensure_staging(bytes));
  const auto* src = static_cast<const uint8_t*>(data);
  for (uint64_t done = 0; done < bytes;) {
    const uint64_t n = std::min(staging_.size, bytes - done);
    std::memcpy(staging_.mapped, src + done, n);
    KP_TRY_STATUS(copy(staging_.buffer, 0, b.buffer, offset + done, n));
    done += n;
  }
  return {};
}

Status Memory::read(BufferId id, uint64_t offset, void* data, uint64_t bytes) {
  auto it = buffers_.find(id);
  if (it == buffers_.end()) return make_error("read_buffer: unknown buffer id {}", id);
  const Buffer& b = it->second;
  KP_TRY_STATUS(check_range(b, offset, bytes, "read_buffer:"));
  if (bytes == 0) return {};
  if (b.mapped != nullptr) {
    std::memcpy(data, static_cast<const uint8_t*>(b.mapped) + offset, bytes);
    return {};
  }
  KP_TRY_STATUS(ensure_staging(bytes));
  auto* dst = static_cast<uint8_t*>(data);
  for (uint64_t done = 0; done < bytes;) {
    const uint64_t n = std::min(staging_.size, bytes - done);
    KP_TRY_STATUS(copy(b.buffer, offset + done, staging_.buffer, 0, n));
    std::memcpy(dst + done, staging_.mapped, n);
    done += n;
  }
  return {};
}

}  // namespace kp::backend::vk
