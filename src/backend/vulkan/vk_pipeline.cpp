#include "backend/vulkan/vk_pipeline.h"

#include <fmt/format.h>

#include <cstring>

#include "backend/vulkan/vk_check.h"

namespace kp::backend::vk {
namespace {

std::string_view glsl_type(kpath::ConstType t) {
  switch (t) {
    case kpath::ConstType::U32: return "uint";
    case kpath::ConstType::I32: return "int";
    case kpath::ConstType::F32: return "float";
    case kpath::ConstType::Bool: return "bool";
  }
  return "uint";
}

// Placeholder value of a declaration; every constant is specialized at
// pipeline creation, so it only has to be a valid (non-zero) literal.
std::string_view glsl_default(kpath::ConstType t) {
  switch (t) {
    case kpath::ConstType::U32: return "1u";
    case kpath::ConstType::I32: return "1";
    case kpath::ConstType::F32: return "1.0";
    case kpath::ConstType::Bool: return "false";
  }
  return "1u";
}

// The declared constants in id order: the logical kernel's, then the impl's.
std::vector<const kpath::ConstantDesc*> declared_constants(const PipelineDesc& desc) {
  std::vector<const kpath::ConstantDesc*> all;
  for (const auto& c : desc.kernel->constants) all.push_back(&c);
  for (const auto& c : desc.impl->constants) all.push_back(&c);
  return all;
}

// 4 bytes per constant, in id order (VkBool32 for bool).
std::vector<uint32_t> specialization_data(const kpath::ConstantValues& values) {
  std::vector<uint32_t> data;
  for (const auto& [name, v] : values) {
    uint32_t word = 0;
    std::visit(
        [&](auto x) {
          using X = decltype(x);
          if constexpr (std::is_same_v<X, bool>) {
            word = x ? VK_TRUE : VK_FALSE;
          } else {
            static_assert(sizeof(X) == 4);
            std::memcpy(&word, &x, 4);
          }
        },
        v);
    data.push_back(word);
  }
  return data;
}

}  // namespace

Macros kernel_macros(const PipelineDesc& desc, const DeviceCaps& caps) {
  Macros m;
  m.emplace_back("ENTRY_" + desc.entry, "1");
  std::string decls;
  const auto all = declared_constants(desc);
  for (size_t i = 0; i < all.size(); ++i) {
    decls += fmt::format("layout(constant_id = {}) const {} {} = {}; ", i, glsl_type(all[i]->type), all[i]->name,
                         glsl_default(all[i]->type));
    m.emplace_back("KP_ID_" + all[i]->name, std::to_string(i));
  }
  m.emplace_back("KP_CONSTANTS", decls);
  m.emplace_back("KP_SUBGROUP_ARITH", caps.subgroup_arithmetic ? "1" : "0");
  m.emplace_back("KP_F16", caps.f16 ? "1" : "0");
  m.emplace_back("KP_INT8", caps.int8 ? "1" : "0");
  m.emplace_back("KP_INT_DOT", caps.int_dot ? "1" : "0");
  return m;
}

Pipelines::Pipelines(const Context& ctx, std::string cache_dir, std::vector<std::string> include_dirs)
    : ctx_(ctx),
      compiler_(std::move(cache_dir), fmt::format("{} | {}", ctx.info().name, ctx.info().driver),
                ctx.device_api_version(), std::move(include_dirs)) {}

Pipelines::~Pipelines() {
  for (auto& p : pipelines_) {
    if (p.pipeline != VK_NULL_HANDLE) vkDestroyPipeline(ctx_.device(), p.pipeline, nullptr);
    if (p.layout != VK_NULL_HANDLE) vkDestroyPipelineLayout(ctx_.device(), p.layout, nullptr);
    if (p.set_layout != VK_NULL_HANDLE) vkDestroyDescriptorSetLayout(ctx_.device(), p.set_layout, nullptr);
  }
}

const Pipeline* Pipelines::find(PipelineId id) const {
  if (id == 0 || id > pipelines_.size()) return nullptr;
  return &pipelines_[id - 1];
}

Result<PipelineId> Pipelines::get(const PipelineDesc& desc) {
  if (desc.kernel == nullptr || desc.impl == nullptr) {
    return make_error("create_pipeline: the pipeline description names no kernel or no implementation");
  }
  const std::string label = fmt::format("{}:{}", desc.kernel->id, desc.entry);
  if (desc.impl->backend != "vulkan") {
    return make_error("{}: the implementation given is for the {} backend, not vulkan", label, desc.impl->backend);
  }
  if (!desc.impl->entries.count(desc.entry)) {
    return make_error("{}: {} has no entry '{}'", label, desc.impl->file, desc.entry);
  }
  for (const auto& f : desc.impl->features) {
    if (!ctx_.info().features.count(f)) {
      return make_error("{}: the kernel needs device feature '{}', which {} lacks", label, f, ctx_.info().name);
    }
  }
  const auto declared = declared_constants(desc);
  if (declared.size() != desc.constants.size()) {
    return make_error("{}: {} constant values given, the kernel declares {}", label, desc.constants.size(),
                      declared.size());
  }
  for (size_t i = 0; i < declared.size(); ++i) {
    if (declared[i]->name != desc.constants[i].first) {
      return make_error("{}: constant {} is '{}', expected '{}'", label, i, desc.constants[i].first, declared[i]->name);
    }
  }

  std::vector<std::string> dirs{desc.impl->source_dir};
  for (const auto& d : compiler_.include_dirs()) dirs.push_back(d);
  KP_TRY(ShaderSource source, load_shader_source(desc.impl->file, dirs));
  std::string key = fmt::format("{:016x}|{}", source.hash, desc.entry);
  for (const auto& [name, value] : desc.constants) key += fmt::format("|{}={}", name, kpath::const_value_string(value));
  if (auto it = by_key_.find(key); it != by_key_.end()) {
    ++stats_.memory_hits;
    return it->second;
  }
  KP_TRY(auto spirv, compiler_.compile(source, kernel_macros(desc, ctx_.caps()), stats_));
  KP_TRY(Pipeline p, build(desc, spirv));
  p.label = label;
  pipelines_.push_back(std::move(p));
  const PipelineId id = static_cast<PipelineId>(pipelines_.size());
  by_key_.emplace(std::move(key), id);
  return id;
}

Result<Pipeline> Pipelines::build(const PipelineDesc& desc, const std::vector<uint32_t>& spirv) {
  const VkDevice dev = ctx_.device();
  Pipeline p;
  p.n_bindings = static_cast<uint32_t>(desc.kernel->bindings.size());
  std::vector<VkDescriptorSetLayoutBinding> bindings(p.n_bindings + 1);
  for (uint32_t i = 0; i < bindings.size(); ++i) {
    bindings[i].binding = i;
    bindings[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    bindings[i].descriptorCount = 1;
    bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo li{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  li.bindingCount = static_cast<uint32_t>(bindings.size());
  li.pBindings = bindings.data();
  // Each handle is owned by `p` as soon as it exists, so an early return of
  // an error leaves nothing behind once the caller drops `p`.
  struct Guard {
    VkDevice dev;
    Pipeline* p;
    VkShaderModule module = VK_NULL_HANDLE;
    bool keep = false;
    ~Guard() {
      if (module != VK_NULL_HANDLE) vkDestroyShaderModule(dev, module, nullptr);
      if (keep) return;
      if (p->pipeline != VK_NULL_HANDLE) vkDestroyPipeline(dev, p->pipeline, nullptr);
      if (p->layout != VK_NULL_HANDLE) vkDestroyPipelineLayout(dev, p->layout, nullptr);
      if (p->set_layout != VK_NULL_HANDLE) vkDestroyDescriptorSetLayout(dev, p->set_layout, nullptr);
    }
  } guard{dev, &p};
  KP_VK_TRY(vkCreateDescriptorSetLayout(dev, &li, nullptr, &p.set_layout));

  VkPushConstantRange push{VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(KpStepParams)};
  VkPipelineLayoutCreateInfo pli{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pli.setLayoutCount = 1;
  pli.pSetLayouts = &p.set_layout;
  pli.pushConstantRangeCount = 1;
  pli.pPushConstantRanges = &push;
  KP_VK_TRY(vkCreatePipelineLayout(dev, &pli, nullptr, &p.layout));

  VkShaderModuleCreateInfo mi{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  mi.codeSize = spirv.size() * sizeof(uint32_t);
  mi.pCode = spirv.data();
  KP_VK_TRY(vkCreateShaderModule(dev, &mi, nullptr, &guard.module));

  const std::vector<uint32_t> data = specialization_data(desc.constants);
  std::vector<VkSpecializationMapEntry> entries(data.size());
  for (uint32_t i = 0; i < entries.size(); ++i) entries[i] = {i, i * 4u, 4u};
  VkSpecializationInfo spec{};
  spec.mapEntryCount = static_cast<uint32_t>(entries.size());
  spec.pMapEntries = entries.data();
  spec.dataSize = data.size() * 4;
  spec.pData = data.data();

  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = guard.module;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = entries.empty() ? nullptr : &spec;
  ci.layout = p.layout;
  KP_VK_TRY(vkCreateComputePipelines(dev, VK_NULL_HANDLE, 1, &ci, nullptr, &p.pipeline));
  guard.keep = true;
  return p;
}

}  // namespace kp::backend::vk
