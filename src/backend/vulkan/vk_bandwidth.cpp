#include "backend/vulkan/vk_bandwidth.h"

#include <algorithm>
#include <chrono>

#include "backend/vulkan/vk_check.h"

namespace kp::backend::vk {
namespace {

// Everything one measurement creates, released in any case.
struct Scratch {
  const Context& ctx;
  Memory& memory;
  BufferId src = 0, dst = 0;
  VkCommandPool pool = VK_NULL_HANDLE;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  VkFence fence = VK_NULL_HANDLE;
  VkQueryPool queries = VK_NULL_HANDLE;

  ~Scratch() {
    const VkDevice dev = ctx.device();
    if (queries != VK_NULL_HANDLE) vkDestroyQueryPool(dev, queries, nullptr);
    if (fence != VK_NULL_HANDLE) vkDestroyFence(dev, fence, nullptr);
    if (pool != VK_NULL_HANDLE) vkDestroyCommandPool(dev, pool, nullptr);  // frees cmd
    if (src != 0) memory.destroy(src);
    if (dst != 0) memory.destroy(dst);
  }
};

// Records `cmd`: [fill src once], timestamp, copy src -> dst, timestamp.
Status record_copy(const Scratch& s, VkBuffer src, VkBuffer dst, uint64_t bytes, bool fill) {
  KP_VK_TRY(vkResetCommandBuffer(s.cmd, 0));
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  KP_VK_TRY(vkBeginCommandBuffer(s.cmd, &begin));
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  if (fill) {
    vkCmdFillBuffer(s.cmd, src, 0, VK_WHOLE_SIZE, 0x3f800000u);
    vkCmdPipelineBarrier(s.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, nullptr,
                         0, nullptr);
  }
  if (s.queries != VK_NULL_HANDLE) {
    vkCmdResetQueryPool(s.cmd, s.queries, 0, 2);
    vkCmdWriteTimestamp(s.cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s.queries, 0);
  }
  const VkBufferCopy region{0, 0, bytes};
  vkCmdCopyBuffer(s.cmd, src, dst, 1, &region);
  if (s.queries != VK_NULL_HANDLE) vkCmdWriteTimestamp(s.cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s.queries, 1);
  vkCmdPipelineBarrier(s.cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, nullptr, 0,
                       nullptr);
  KP_VK_TRY(vkEndCommandBuffer(s.cmd));
  return {};
}

}  // namespace

Result<double> measure_copy_bandwidth(const Context& ctx, Memory& memory, uint64_t bytes, int repeats) {
  if (bytes == 0 || repeats < 1) return make_error("Vulkan: copy bandwidth needs bytes > 0 and repeats >= 1");
  const VkDevice dev = ctx.device();
  Scratch s{ctx, memory};
  KP_TRY(s.src, memory.create(bytes, BufferUsage::kDevice, "bandwidth src"));
  KP_TRY(s.dst, memory.create(bytes, BufferUsage::kDevice, "bandwidth dst"));
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = ctx.queue_family();
  KP_VK_TRY(vkCreateCommandPool(dev, &pi, nullptr, &s.pool));
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = s.pool;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  KP_VK_TRY(vkAllocateCommandBuffers(dev, &ai, &s.cmd));
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  KP_VK_TRY(vkCreateFence(dev, &fi, nullptr, &s.fence));
  const uint32_t bits = ctx.caps().timestamp_valid_bits;
  if (bits != 0) {
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = 2;
    KP_VK_TRY(vkCreateQueryPool(dev, &qi, nullptr, &s.queries));
  }
  const VkBuffer src = memory.find(s.src)->buffer;
  const VkBuffer dst = memory.find(s.dst)->buffer;
  double best = 0;
  // Run 0 fills the source and warms the copy path; it is not counted.
  for (int r = 0; r <= repeats; ++r) {
    KP_TRY_STATUS(record_copy(s, src, dst, bytes, r == 0));
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &s.cmd;
    KP_VK_TRY(vkResetFences(dev, 1, &s.fence));
    const auto t0 = std::chrono::steady_clock::now();
    KP_VK_TRY(vkQueueSubmit(ctx.queue(), 1, &si, s.fence));
    KP_VK_TRY(vkWaitForFences(dev, 1, &s.fence, VK_TRUE, UINT64_MAX));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s.queries != VK_NULL_HANDLE) {
      uint64_t ticks[2] = {0, 0};
      KP_VK_TRY(vkGetQueryPoolResults(dev, s.queries, 0, 2, sizeof ticks, ticks, sizeof(uint64_t),
                                      VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
      const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
      const uint64_t delta = ((ticks[1] & mask) - (ticks[0] & mask)) & mask;
      seconds = static_cast<double>(delta) * ctx.caps().timestamp_period_ns * 1e-9;
    }
    if (r > 0 && seconds > 0) best = std::max(best, 2.0 * static_cast<double>(bytes) / seconds);
  }
  if (best <= 0) return make_error("Vulkan: the copy bandwidth measurement took no measurable time");
  return best;
}

}  // namespace kp::backend::vk
