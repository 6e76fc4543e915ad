// Compute pipelines keyed by (kernel source hash, entry, constant values).
//
// How a kernel file sees its registry description (docs/kernels.md):
//   ENTRY_<entry>        defined to 1 for the entry being compiled
//   KP_CONSTANTS         expands to the specialization constant declarations,
//                        `layout(constant_id = i) const <type> <NAME> = ...;`,
//                        in registry order (logical kernel's, then the Vulkan
//                        implementation's), so ids can never disagree
//   KP_ID_<NAME>         the constant id of NAME (for local_size_x_id)
//   KP_SUBGROUP_ARITH    1 when subgroupAdd/subgroupMax may be used, else 0
//   KP_F16, KP_INT8, KP_INT_DOT   1 when the device feature is enabled, else 0
// Set 0: binding 0 = KpParams, bindings 1..n = the registry bindings in order;
// push constants = KpStepParams.
#pragma once

#include <vulkan/vulkan.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/vulkan/vk_device.h"
#include "backend/vulkan/vk_shader.h"
#include "backend/vulkan/vulkan_backend.h"
#include "core/result.h"

namespace kp::backend::vk {

struct Pipeline {
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  uint32_t n_bindings = 0;  // registry bindings; set 0 holds n_bindings + 1
  std::string label;        // "matmul_q4k:main" for error messages
};

class Pipelines {
 public:
  Pipelines(const Context& ctx, std::string cache_dir, std::vector<std::string> include_dirs);
  ~Pipelines();
  Pipelines(const Pipelines&) = delete;
  Pipelines& operator=(const Pipelines&) = delete;

  Result<PipelineId> get(const PipelineDesc& desc);
  const Pipeline* find(PipelineId id) const;
  const ShaderCacheStats& stats() const { return stats_; }

 private:
  Result<Pipeline> build(const PipelineDesc& desc, const std::vector<uint32_t>& spirv);

  const Context& ctx_;
  ShaderCompiler compiler_;
  std::map<std::string, PipelineId> by_key_;
  std::vector<Pipeline> pipelines_;  // id = index + 1
  ShaderCacheStats stats_;
};

// The macros a kernel is compiled with (see the comment at the top).
Macros kernel_macros(const PipelineDesc& desc, const DeviceCaps& caps);

}  // namespace kp::backend::vk
