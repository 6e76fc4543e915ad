#include "backend/vulkan/vk_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/vulkan/vk_check.h"

namespace kp::backend::vk {
namespace {

struct Range {
  BufferId buffer;
  uint64_t begin, end;
};

bool overlaps(const std::vector<Range>& ranges, const Binding& b) {
  return std::any_of(ranges.begin(), ranges.end(), [&](const Range& r) {
    return r.buffer == b.buffer && r.begin < b.offset + b.bytes && b.offset < r.end;
  });
}

// Compute writes made available to later compute, transfer and host access.
void full_barrier(VkCommandBuffer cmd, VkPipelineStageFlags dst_stages, VkAccessFlags dst_access) {
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  mb.dstAccessMask = dst_access;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, dst_stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
}

constexpr uint64_t kBindingGranule = 16;

}  // namespace

std::vector<bool> barriers_needed(std::span<const DispatchDesc> dispatches) {
  std::vector<bool> out(dispatches.size(), false);
  std::vector<Range> written, read;  // since the last barrier
  for (size_t i = 0; i < dispatches.size(); ++i) {
    bool need = false;
    for (const Binding& b : dispatches[i].bindings) {
      if (b.bytes == 0) continue;
      const bool writes = b.access != Access::kRead;
      need = need || overlaps(written, b) || (writes && overlaps(read, b));
    }
    if (need) {
      written.clear();
      read.clear();
    }
    out[i] = need;
    for (const Binding& b : dispatches[i].bindings) {
      if (b.bytes == 0) continue;
      const Range r{b.buffer, b.offset, b.offset + b.bytes};
      if (b.access != Access::kRead) written.push_back(r);
      if (b.access != Access::kWrite) read.push_back(r);
    }
  }
  return out;
}

Commands::Commands(const Context& ctx, const Memory& memory, const Pipelines& pipelines, BufferId params_buffer,
                   bool sync_each, bool checkpoints)
    : ctx_(ctx),
      memory_(memory),
      pipelines_(pipelines),
      params_buffer_(params_buffer),
      sync_each_(sync_each),
      checkpoints_(checkpoints && ctx.caps().checkpoints) {}

Commands::~Commands() {
  for (auto& [id, list] : lists_) release(list);
  if (fence_ != VK_NULL_HANDLE) vkDestroyFence(ctx_.device(), fence_, nullptr);
  if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(ctx_.device(), pool_, nullptr);
}

Status Commands::init() {
  VkCommandPoolCreateInfo pi{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pi.queueFamilyIndex = ctx_.queue_family();
  KP_VK_TRY(vkCreateCommandPool(ctx_.device(), &pi, nullptr, &pool_));
  VkFenceCreateInfo fi{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  KP_VK_TRY(vkCreateFence(ctx_.device(), &fi, nullptr, &fence_));
  const Buffer* params = memory_.find(params_buffer_);
  if (params == nullptr || params->mapped == nullptr) return make_error("Vulkan: the params buffer is not host-visible");
  return {};
}

void Commands::release(List& list) {
  const VkDevice dev = ctx_.device();
  if (list.plain != VK_NULL_HANDLE) vkFreeCommandBuffers(dev, pool_, 1, &list.plain);
  if (list.timed != VK_NULL_HANDLE) vkFreeCommandBuffers(dev, pool_, 1, &list.timed);
  for (VkCommandBuffer c : list.singles) {
    if (c != VK_NULL_HANDLE) vkFreeCommandBuffers(dev, pool_, 1, &c);
  }
  if (list.queries != VK_NULL_HANDLE) vkDestroyQueryPool(dev, list.queries, nullptr);
  if (list.pool != VK_NULL_HANDLE) vkDestroyDescriptorPool(dev, list.pool, nullptr);
  list = List{};
}

Status Commands::validate(std::span<const DispatchDesc> dispatches) const {
  const DeviceCaps& caps = ctx_.caps();
  for (size_t i = 0; i < dispatches.size(); ++i) {
    const DispatchDesc& d = dispatches[i];
    const Pipeline* p = pipelines_.find(d.pipeline);
    if (p == nullptr) return make_error("dispatch {}: unknown pipeline id {}", i, d.pipeline);
    if (d.bindings.size() != p->n_bindings) {
      return make_error("dispatch {} ({}): {} bindings given, the kernel has {}", i, p->label, d.bindings.size(),
                        p->n_bindings);
    }
    for (size_t j = 0; j < d.bindings.size(); ++j) {
      const Binding& b = d.bindings[j];
      const Buffer* buf = memory_.find(b.buffer);
      if (buf == nullptr) return make_error("dispatch {} ({}): binding {} names unknown buffer {}", i, p->label, j, b.buffer);
      if (b.offset > buf->size || b.bytes > buf->size - b.offset) {
        return make_error("dispatch {} ({}): binding {} bytes [{}, {}) are outside buffer '{}' ({} bytes)", i, p->label,
                          j, b.offset, b.offset + b.bytes, buf->name, buf->size);
      }
      if (b.offset % caps.min_binding_alignment != 0) {
        return make_error("dispatch {} ({}): binding {} offset {} in buffer '{}' is not a multiple of the device's "
                          "storage buffer alignment {}", i, p->label, j, b.offset, buf->name,
                          caps.min_binding_alignment);
      }
      if (b.offset >= buf->capacity) {
        return make_error("dispatch {} ({}): binding {} starts at the end of buffer '{}'", i, p->label, j, buf->name);
      }
      if (b.bytes > caps.max_binding_bytes) {
        return make_error("dispatch {} ({}): binding {} is {} bytes, more than the device's maxStorageBufferRange {}",
                          i, p->label, j, b.bytes, caps.max_binding_bytes);
      }
    }
    for (int k = 0; k < 3; ++k) {
      if (d.grid[k] == 0 || d.grid[k] > caps.max_groups[k]) {
        return make_error("dispatch {} ({}): grid [{}, {}, {}] is outside the device's limits [{}, {}, {}]", i, p->label,
                          d.grid[0], d.grid[1], d.grid[2], caps.max_groups[0], caps.max_groups[1], caps.max_groups[2]);
      }
    }
  }
  return {};
}

Status Commands::write_sets(List& list) {
  const VkDevice dev = ctx_.device();
  const uint32_t n = static_cast<uint32_t>(list.dispatches.size());
  if (n == 0) return {};
  uint32_t descriptors = 0;
  for (const auto& d : list.dispatches) descriptors += static_cast<uint32_t>(d.bindings.size()) + 1;
  VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, descriptors};
  VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
  pi.maxSets = n;
  pi.poolSizeCount = 1;
  pi.pPoolSizes = &size;
  KP_VK_TRY(vkCreateDescriptorPool(dev, &pi, nullptr, &list.pool));
  std::vector<VkDescriptorSetLayout> layouts;
  for (const auto& d : list.dispatches) layouts.push_back(pipelines_.find(d.pipeline)->set_layout);
  VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
  ai.descriptorPool = list.pool;
  ai.descriptorSetCount = n;
  ai.pSetLayouts = layouts.data();
  list.sets.resize(n);
  KP_VK_TRY(vkAllocateDescriptorSets(dev, &ai, list.sets.data()));

  const Buffer* params = memory_.find(params_buffer_);
  std::vector<VkDescriptorBufferInfo> infos;
  infos.reserve(descriptors);
  std::vector<VkWriteDescriptorSet> writes;
  writes.reserve(descriptors);
  for (uint32_t i = 0; i < n; ++i) {
    const DispatchDesc& d = list.dispatches[i];
    for (uint32_t j = 0; j <= d.bindings.size(); ++j) {
      if (j == 0) {
        infos.push_back({params->buffer, 0, sizeof(KpParams)});
      } else {
        const Binding& b = d.bindings[j - 1];
        const Buffer* buf = memory_.find(b.buffer);
        // Ranges round up to 16 bytes (within the buffer) so that kernels may
        // read whole words and vectors at the end of a tensor.
        const uint64_t rounded = std::max<uint64_t>(kBindingGranule, (b.bytes + kBindingGranule - 1) /
                                                                         kBindingGranule * kBindingGranule);
        const uint64_t range = std::min({rounded, buf->capacity - b.offset, ctx_.caps().max_binding_bytes});
        infos.push_back({buf->buffer, b.offset, range});
      }
      VkWriteDescriptorSet w{VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      w.dstSet = list.sets[i];
      w.dstBinding = j;
      w.descriptorCount = 1;
      w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w.pBufferInfo = &infos.back();
      writes.push_back(w);
    }
  }
  vkUpdateDescriptorSets(dev, static_cast<uint32_t>(writes.size()), writes.data(), 0, nullptr);
  return {};
}

Status Commands::record_buffer(List& list, size_t first, size_t end, bool timed, VkCommandBuffer* out) {
  const VkDevice dev = ctx_.device();
  const uint32_t n = static_cast<uint32_t>(list.dispatches.size());
  if (timed && list.queries == VK_NULL_HANDLE) {
    VkQueryPoolCreateInfo qi{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qi.queryCount = n + 1;
    KP_VK_TRY(vkCreateQueryPool(dev, &qi, nullptr, &list.queries));
  }
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  VkCommandBuffer cmd = VK_NULL_HANDLE;
  KP_VK_TRY(vkAllocateCommandBuffers(dev, &ai, &cmd));
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  VkResult r = vkBeginCommandBuffer(cmd, &begin);
  if (r != VK_SUCCESS) {
    vkFreeCommandBuffers(dev, pool_, 1, &cmd);
    return vk_error(r, "vkBeginCommandBuffer");
  }
  if (timed) {
    vkCmdResetQueryPool(cmd, list.queries, 0, n + 1);
    vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, list.queries, 0);
  }
  for (uint32_t i = static_cast<uint32_t>(first); i < end; ++i) {
    const DispatchDesc& d = list.dispatches[i];
    const Pipeline* p = pipelines_.find(d.pipeline);
    if (i > first && (list.barrier_before[i] || timed)) {
      full_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    }
    if (checkpoints_) {
      ctx_.cmd_set_checkpoint(cmd, reinterpret_cast<const void*>(static_cast<uintptr_t>(i) + 1));
    }
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &list.sets[i], 0, nullptr);
    vkCmdPushConstants(cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(KpStepParams), &d.step);
    vkCmdDispatch(cmd, d.grid[0], d.grid[1], d.grid[2]);
    if (timed) vkCmdWriteTimestamp(cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, list.queries, i + 1);
  }
  // Results become visible to the next submission's dispatches, to copies
  // (read_buffer/write_buffer) and to host reads of mapped memory.
  full_barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
               VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                   VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT);
  r = vkEndCommandBuffer(cmd);
  if (r != VK_SUCCESS) {
    vkFreeCommandBuffers(dev, pool_, 1, &cmd);
    return vk_error(r, "vkEndCommandBuffer");
  }
  *out = cmd;
  return {};
}

Result<CommandListId> Commands::record(std::span<const DispatchDesc> dispatches) {
  if (lost_) return make_error("record: the Vulkan device was lost earlier; the backend must be recreated");
  KP_TRY_STATUS(validate(dispatches));
  List list;
  list.dispatches.assign(dispatches.begin(), dispatches.end());
  list.barrier_before = barriers_needed(dispatches);
  Status st = write_sets(list);
  if (st.ok()) st = record_buffer(list, 0, list.dispatches.size(), false, &list.plain);
  if (!st.ok()) {
    release(list);
    return st.take_error();
  }
  const CommandListId id = next_id_++;
  lists_.emplace(id, std::move(list));
  return id;
}

void Commands::destroy(CommandListId id) {
  auto it = lists_.find(id);
  if (it == lists_.end()) return;
  release(it->second);
  lists_.erase(it);
}

int Commands::barrier_count(CommandListId id) const {
  auto it = lists_.find(id);
  if (it == lists_.end()) return -1;
  return static_cast<int>(std::count(it->second.barrier_before.begin(), it->second.barrier_before.end(), true));
}

Error Commands::device_lost(CommandListId id, const List& list, int64_t known_dispatch) {
  lost_ = true;
  std::string where =
      "an unknown dispatch (run with --vulkan-checkpoints on a device with VK_NV_device_diagnostic_checkpoints, "
      "or with --sync-each-dispatch, to name it)";
  if (known_dispatch >= 0) {
    failed_dispatch_ = static_cast<size_t>(known_dispatch);
    const Pipeline* p = pipelines_.find(list.dispatches[static_cast<size_t>(known_dispatch)].pipeline);
    where = fmt::format("dispatch {} ({})", known_dispatch, p ? p->label : "?");
  } else if (checkpoints_) {
    uint32_t count = 0;
    ctx_.get_checkpoints(ctx_.queue(), &count, nullptr);
    std::vector<VkCheckpointDataNV> data(count, VkCheckpointDataNV{VK_STRUCTURE_TYPE_CHECKPOINT_DATA_NV});
    ctx_.get_checkpoints(ctx_.queue(), &count, data.data());
    uintptr_t last = 0;
    for (const auto& c : data) last = std::max(last, reinterpret_cast<uintptr_t>(c.pCheckpointMarker));
    if (last > 0 && last <= list.dispatches.size()) {
      failed_dispatch_ = last - 1;
      const Pipeline* p = pipelines_.find(list.dispatches[last - 1].pipeline);
      where = fmt::format("dispatch {} ({}), the last one the device started", last - 1, p ? p->label : "?");
    }
  }
  return make_error("Vulkan device lost while running command list {} ({} dispatches): the failure is in {}", id,
                    list.dispatches.size(), where);
}

VkResult Commands::run(VkCommandBuffer cmd) {
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd;
  VkResult r = vkResetFences(ctx_.device(), 1, &fence_);
  if (r == VK_SUCCESS) r = vkQueueSubmit(ctx_.queue(), 1, &si, fence_);
  if (r == VK_SUCCESS) r = vkWaitForFences(ctx_.device(), 1, &fence_, VK_TRUE, UINT64_MAX);
  return r;
}

Status Commands::submit_each(CommandListId id, List& list) {
  if (list.singles.size() != list.dispatches.size()) {
    for (size_t i = list.singles.size(); i < list.dispatches.size(); ++i) {
      VkCommandBuffer cmd = VK_NULL_HANDLE;
      KP_TRY_STATUS(record_buffer(list, i, i + 1, false, &cmd));
      list.singles.push_back(cmd);
    }
  }
  for (size_t i = 0; i < list.singles.size(); ++i) {
    const VkResult r = run(list.singles[i]);
    if (r == VK_ERROR_DEVICE_LOST) return device_lost(id, list, static_cast<int64_t>(i));
    if (r != VK_SUCCESS) return vk_error(r, "vkQueueSubmit/vkWaitForFences");
  }
  return {};
}

Status Commands::submit(CommandListId id, const KpParams& params, bool timestamps) {
  if (lost_) return make_error("submit: the Vulkan device was lost earlier; the backend must be recreated");
  failed_dispatch_.reset();
  auto it = lists_.find(id);
  if (it == lists_.end()) return make_error("submit: unknown command list {}", id);
  List& list = it->second;
  const Buffer* pb = memory_.find(params_buffer_);
  std::memcpy(pb->mapped, &params, sizeof(KpParams));

  if (sync_each_) {
    if (timestamps) return make_error("submit: timestamps are not recorded with sync_each_dispatch");
    return submit_each(id, list);
  }
  VkCommandBuffer cmd = list.plain;
  if (timestamps) {
    if (ctx_.caps().timestamp_valid_bits == 0) {
      return make_error("submit: {} has no timestamps on its compute queue", ctx_.info().name);
    }
    if (list.timed == VK_NULL_HANDLE) KP_TRY_STATUS(record_buffer(list, 0, list.dispatches.size(), true, &list.timed));
    cmd = list.timed;
  }
  const VkResult r = run(cmd);
  if (r == VK_ERROR_DEVICE_LOST) return device_lost(id, list, -1);
  if (r != VK_SUCCESS) return vk_error(r, "vkQueueSubmit/vkWaitForFences");

  if (timestamps) {
    const uint32_t n = static_cast<uint32_t>(list.dispatches.size());
    std::vector<uint64_t> ticks(n + 1);
    KP_VK_TRY(vkGetQueryPoolResults(ctx_.device(), list.queries, 0, n + 1, ticks.size() * sizeof(uint64_t),
                                    ticks.data(), sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    const uint32_t bits = ctx_.caps().timestamp_valid_bits;
    const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
    timings_.assign(n, 0.0);
    for (uint32_t i = 0; i < n; ++i) {
      const uint64_t delta = ((ticks[i + 1] & mask) - (ticks[i] & mask)) & mask;
      timings_[i] = static_cast<double>(delta) * ctx_.caps().timestamp_period_ns * 1e-6;
    }
  }
  return {};
}

}  // namespace kp::backend::vk
