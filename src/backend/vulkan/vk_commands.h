// Command lists: a span of DispatchDescs recorded once into a command buffer
// (descriptor sets made at record time) and replayed by every submit, which
// first rewrites the host-visible KpParams buffer. Barriers go only where a
// dispatch touches a range an earlier dispatch wrote since the last barrier,
// or writes a range an earlier one read (write-after-read). A second command
// buffer with a timestamp after each dispatch, and a barrier between all of
// them so that each time is the dispatch's own, is recorded the first time a
// list is submitted with timestamps.
#pragma once

#include <vulkan/vulkan.h>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/vulkan/vk_device.h"
#include "backend/vulkan/vk_memory.h"
#include "backend/vulkan/vk_pipeline.h"
#include "core/result.h"

namespace kp::backend::vk {

// Whether dispatch i needs a barrier before it, from the ranges the dispatches
// read and write (exposed for tests of the hazard rule).
std::vector<bool> barriers_needed(std::span<const DispatchDesc> dispatches);

class Commands {
 public:
  // `sync_each`: run every dispatch as its own submission (VulkanOptions::sync_each_dispatch).
  Commands(const Context& ctx, const Memory& memory, const Pipelines& pipelines, BufferId params_buffer,
           bool sync_each, bool checkpoints = false);
  ~Commands();
  Commands(const Commands&) = delete;
  Commands& operator=(const Commands&) = delete;

  Status init();
  Result<CommandListId> record(std::span<const DispatchDesc> dispatches);
  void destroy(CommandListId id);
  Status submit(CommandListId id, const KpParams& params, bool timestamps);
  const std::vector<double>& last_timings() const { return timings_; }
  // Barriers recorded in list `id` (for tests); -1 for an unknown list.
  // The dispatch a device loss was traced to (sync_each or checkpoints), else nullopt.
  std::optional<size_t> failed_dispatch() const { return failed_dispatch_; }
  int barrier_count(CommandListId id) const;

 private:
  struct List {
    std::vector<DispatchDesc> dispatches;
    std::vector<bool> barrier_before;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    std::vector<VkDescriptorSet> sets;
    VkCommandBuffer plain = VK_NULL_HANDLE;
    VkCommandBuffer timed = VK_NULL_HANDLE;
    VkQueryPool queries = VK_NULL_HANDLE;
    std::vector<VkCommandBuffer> singles;  // one per dispatch, for sync_each
  };
  Status validate(std::span<const DispatchDesc> dispatches) const;
  Status write_sets(List& list);
  // Records dispatches [first, end) of `list`; `timed` adds timestamps.
  Status record_buffer(List& list, size_t first, size_t end, bool timed, VkCommandBuffer* out);
  // Submits `cmd` and waits; VK_ERROR_DEVICE_LOST is returned as is.
  VkResult run(VkCommandBuffer cmd);
  Status submit_each(CommandListId id, List& list);
  Error device_lost(CommandListId id, const List& list, int64_t known_dispatch);
  void release(List& list);

  const Context& ctx_;
  const Memory& memory_;
  const Pipelines& pipelines_;
  BufferId params_buffer_;
  bool sync_each_;
  bool checkpoints_;  // VulkanOptions::checkpoints and the device has them
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  std::map<CommandListId, List> lists_;
  CommandListId next_id_ = 1;
  std::vector<double> timings_;
  bool lost_ = false;
  std::optional<size_t> failed_dispatch_;  // of the last submit, when known
};

}  // namespace kp::backend::vk
