#include "backend/vulkan/vk_device.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "backend/vulkan/vk_check.h"

namespace kp::backend::vk {
namespace {

constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

VKAPI_ATTR VkBool32 VKAPI_CALL on_debug_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                 VkDebugUtilsMessageTypeFlagsEXT types,
                                                 const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                 void* user) {
  auto* log = static_cast<ValidationLog*>(user);
  const bool relevant_type =
      (types & (VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT)) != 0;
  const bool relevant_severity = severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
  if (relevant_type && relevant_severity) {
    log->count.fetch_add(1);
    std::lock_guard<std::mutex> lock(log->mutex);
    if (log->first.size() < ValidationLog::kKeep) {
      log->first.emplace_back(data != nullptr && data->pMessage != nullptr ? data->pMessage : "(no message)");
    }
  }
  return VK_FALSE;
}

VkDebugUtilsMessengerCreateInfoEXT messenger_info(ValidationLog* log) {
  VkDebugUtilsMessengerCreateInfoEXT info{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
  info.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
  info.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                     VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
  info.pfnUserCallback = on_debug_message;
  info.pUserData = log;
  return info;
}

bool has_instance_extension(const std::vector<VkExtensionProperties>& exts, const char* name) {
  return std::any_of(exts.begin(), exts.end(),
                     [&](const VkExtensionProperties& e) { return std::strcmp(e.extensionName, name) == 0; });
}

// Creates the instance; with `log`, enables validation and chains the messenger
// so that messages of instance creation are counted too.
Result<VkInstance> create_instance(ValidationLog* log, VkDebugUtilsMessengerEXT* messenger) {
  uint32_t loader_version = VK_API_VERSION_1_0;
  KP_VK_TRY(vkEnumerateInstanceVersion(&loader_version));
  if (loader_version < VK_API_VERSION_1_2) {
    return make_error("Vulkan: the loader supports Vulkan {}.{}, kpath needs 1.2",
                      VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));
  }
  uint32_t n_ext = 0;
  KP_VK_TRY(vkEnumerateInstanceExtensionProperties(nullptr, &n_ext, nullptr));
  std::vector<VkExtensionProperties> exts(n_ext);
  KP_VK_TRY(vkEnumerateInstanceExtensionProperties(nullptr, &n_ext, exts.data()));

  std::vector<const char*> enabled_exts;
  std::vector<const char*> layers;
  VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  if (has_instance_extension(exts, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
    enabled_exts.push_back(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
    info.flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }
  VkDebugUtilsMessengerCreateInfoEXT dbg{};
  if (log != nullptr) {
    uint32_t n_layers = 0;
    KP_VK_TRY(vkEnumerateInstanceLayerProperties(&n_layers, nullptr));
    std::vector<VkLayerProperties> available(n_layers);
    KP_VK_TRY(vkEnumerateInstanceLayerProperties(&n_layers, available.data()));
    const bool found = std::any_of(available.begin(), available.end(), [](const VkLayerProperties& l) {
      return std::strcmp(l.layerName, kValidationLayer) == 0;
    });
    if (!found) {
      return make_error("Vulkan validation was requested but {} is not installed (Debian: vulkan-validationlayers)",
                        kValidationLayer);
    }
    uint32_t n_layer_ext = 0;
    KP_VK_TRY(vkEnumerateInstanceExtensionProperties(kValidationLayer, &n_layer_ext, nullptr));
    std::vector<VkExtensionProperties> layer_exts(n_layer_ext);
    KP_VK_TRY(vkEnumerateInstanceExtensionProperties(kValidationLayer, &n_layer_ext, layer_exts.data()));
    if (!has_instance_extension(exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
        !has_instance_extension(layer_exts, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
      return make_error("Vulkan validation was requested but {} is not available", VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    }
    layers.push_back(kValidationLayer);
    enabled_exts.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
    dbg = messenger_info(log);
    info.pNext = &dbg;
  }
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "kpath";
  app.pEngineName = "kpath";
  app.apiVersion = std::min<uint32_t>(loader_version, VK_API_VERSION_1_3);
  info.pApplicationInfo = &app;
  info.enabledLayerCount = static_cast<uint32_t>(layers.size());
  info.ppEnabledLayerNames = layers.data();
  info.enabledExtensionCount = static_cast<uint32_t>(enabled_exts.size());
  info.ppEnabledExtensionNames = enabled_exts.data();
  VkInstance instance = VK_NULL_HANDLE;
  KP_VK_TRY(vkCreateInstance(&info, nullptr, &instance));
  if (log != nullptr) {
    auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"));
    if (create == nullptr) {
      vkDestroyInstance(instance, nullptr);
      return make_error("Vulkan: vkCreateDebugUtilsMessengerEXT is not available");
    }
    const VkResult r = create(instance, &dbg, nullptr, messenger);
    if (r != VK_SUCCESS) {
      vkDestroyInstance(instance, nullptr);
      return vk_error(r, "vkCreateDebugUtilsMessengerEXT");
    }
  }
  return instance;
}

// The instance behind device listing lives as long as the process. Listing is
// asked for more than once in a process (auto-selection, then the backend it
// names; `kpath devices`; the tests), and each instance loads and initializes
// the drivers again; destroying the last one unloads them, after which the
// allocations a driver keeps for its lifetime look leaked to LeakSanitizer.
// Created on first use (thread-safe), never destroyed; a failure is kept too.
const Result<VkInstance>& listing_instance() {
  static const auto* instance = new Result<VkInstance>([] {
    VkDebugUtilsMessengerEXT none = VK_NULL_HANDLE;
    return create_instance(nullptr, &none);
  }());
  return *instance;
}

Result<std::vector<VkPhysicalDevice>> physical_devices(VkInstance instance) {
  uint32_t n = 0;
  KP_VK_TRY(vkEnumeratePhysicalDevices(instance, &n, nullptr));
  std::vector<VkPhysicalDevice> devices(n);
  KP_VK_TRY(vkEnumeratePhysicalDevices(instance, &n, devices.data()));
  devices.resize(n);
  return devices;
}

std::string_view type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete_gpu";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated_gpu";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual_gpu";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
  }
}

// Lower is preferred when no index is given.
int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
  }
}

bool has_device_extension(VkPhysicalDevice pd, const char* name) {
  uint32_t n = 0;
  if (vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr) != VK_SUCCESS) return false;
  std::vector<VkExtensionProperties> exts(n);
  if (vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data()) != VK_SUCCESS) return false;
  return has_instance_extension(exts, name);
}

// Feature structs of a device, chained only as far as its API version allows.
struct FeatureChain {
  VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan13Features f13{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
  void link(uint32_t api) {
    f2.pNext = nullptr;
    if (api >= VK_API_VERSION_1_2) {
      f2.pNext = &f11;
      f11.pNext = &f12;
      f12.pNext = nullptr;
      if (api >= VK_API_VERSION_1_3) f12.pNext = &f13;
    }
  }
};

void describe(VkPhysicalDevice pd, DeviceInfo& info, DeviceCaps& caps, VkPhysicalDeviceProperties& props) {
  vkGetPhysicalDeviceProperties(pd, &props);
  const uint32_t api = props.apiVersion;
  VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  VkPhysicalDeviceSubgroupProperties sub{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
  VkPhysicalDeviceMaintenance3Properties m3{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
  VkPhysicalDeviceDriverProperties drv{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
  p2.pNext = &sub;
  sub.pNext = &m3;
  if (api >= VK_API_VERSION_1_2) m3.pNext = &drv;
  vkGetPhysicalDeviceProperties2(pd, &p2);

  FeatureChain fc;
  fc.link(api);
  vkGetPhysicalDeviceFeatures2(pd, &fc.f2);

  VkPhysicalDeviceMemoryProperties mem{};
  vkGetPhysicalDeviceMemoryProperties(pd, &mem);
  uint64_t device_local = 0;
  for (uint32_t i = 0; i < mem.memoryHeapCount; ++i) {
    if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
      device_local = std::max<uint64_t>(device_local, mem.memoryHeaps[i].size);
    }
  }

  caps.subgroup_size = std::max<uint32_t>(1, sub.subgroupSize);
  caps.subgroup_arithmetic = (sub.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0 &&
                             (sub.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) != 0 &&
                             (sub.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) != 0;
  caps.f16 = api >= VK_API_VERSION_1_2 && fc.f12.shaderFloat16 && fc.f11.storageBuffer16BitAccess;
  caps.int8 = api >= VK_API_VERSION_1_2 && fc.f12.shaderInt8 && fc.f12.storageBuffer8BitAccess;
  caps.int_dot = api >= VK_API_VERSION_1_3 && fc.f13.shaderIntegerDotProduct;
  caps.checkpoints = has_device_extension(pd, VK_NV_DEVICE_DIAGNOSTIC_CHECKPOINTS_EXTENSION_NAME);
  caps.memory_budget = has_device_extension(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  caps.max_binding_bytes = props.limits.maxStorageBufferRange;
  caps.min_binding_alignment = std::max<uint64_t>(4, props.limits.minStorageBufferOffsetAlignment);
  caps.max_allocation_bytes = m3.maxMemoryAllocationSize;
  for (int i = 0; i < 3; ++i) caps.max_groups[i] = props.limits.maxComputeWorkGroupCount[i];
  caps.timestamp_period_ns = props.limits.timestampPeriod;

  info.backend = "vulkan";
  info.name = props.deviceName;
  info.max_workgroup_size =
      std::min(props.limits.maxComputeWorkGroupInvocations, props.limits.maxComputeWorkGroupSize[0]);
  if (api >= VK_API_VERSION_1_2 && drv.driverName[0] != '\0') {
    info.driver = fmt::format("{} {}", drv.driverName, drv.driverInfo);
  } else {
    info.driver = fmt::format("driver version {:#x}", props.driverVersion);
  }
  info.memory_bytes = device_local;
  info.is_software = props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
  info.prefill_batch = info.is_software ? 256 : 512;
  info.features.clear();
  if (caps.f16) info.features.insert("f16");
  if (caps.subgroup_arithmetic) info.features.insert("subgroups");
  if (caps.int_dot) info.features.insert("int_dot");
  info.arch = fmt::format("{}, Vulkan {}.{}, subgroup {}", type_name(props.deviceType),
                          VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api), caps.subgroup_size);
}

}  // namespace

Result<std::unique_ptr<Context>> Context::create(int device_index, bool validation) {
  std::unique_ptr<Context> ctx(new Context());
  // The listing instance keeps the drivers loaded past this context's end.
  if (!listing_instance().ok()) return listing_instance().error();
  KP_TRY(ctx->instance_, create_instance(validation ? ctx->log_.get() : nullptr, &ctx->messenger_));
  KP_TRY(auto devices, physical_devices(ctx->instance_));
  if (devices.empty()) return make_error("Vulkan: no devices found (is a driver such as Mesa lavapipe installed?)");

  std::vector<VkPhysicalDeviceProperties> props(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) vkGetPhysicalDeviceProperties(devices[i], &props[i]);
  size_t chosen = 0;
  if (device_index >= 0) {
    if (static_cast<size_t>(device_index) >= devices.size()) {
      std::string list;
      for (size_t i = 0; i < devices.size(); ++i) list += fmt::format("{}{}: {}", i ? ", " : "", i, props[i].deviceName);
      return make_error("Vulkan device {} does not exist (devices: {})", device_index, list);
    }
    chosen = static_cast<size_t>(device_index);
  } else {
    for (size_t i = 1; i < devices.size(); ++i) {
      if (type_rank(props[i].deviceType) < type_rank(props[chosen].deviceType)) chosen = i;
    }
  }
  ctx->physical_ = devices[chosen];
  VkPhysicalDeviceProperties p{};
  describe(ctx->physical_, ctx->info_, ctx->caps_, p);
  ctx->api_version_ = std::min<uint32_t>(VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(p.apiVersion),
                                                             VK_API_VERSION_MINOR(p.apiVersion), 0),
                                         VK_API_VERSION_1_3);
  vkGetPhysicalDeviceMemoryProperties(ctx->physical_, &ctx->memory_);

  uint32_t n_families = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_, &n_families, nullptr);
  std::vector<VkQueueFamilyProperties> families(n_families);
  vkGetPhysicalDeviceQueueFamilyProperties(ctx->physical_, &n_families, families.data());
  bool found = false;
  for (uint32_t i = 0; i < n_families && !found; ++i) {
    if (families[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
      ctx->queue_family_ = i;
      ctx->caps_.timestamp_valid_bits = families[i].timestampValidBits;
      found = true;
    }
  }
  if (!found) return make_error("Vulkan device '{}' has no compute queue", ctx->info_.name);

  // Enable exactly the optional features the kernels may use.
  FeatureChain fc;
  fc.link(p.apiVersion);
  if (ctx->caps_.f16) {
    fc.f12.shaderFloat16 = VK_TRUE;
    fc.f11.storageBuffer16BitAccess = VK_TRUE;
  }
  if (ctx->caps_.int8) {
    fc.f12.shaderInt8 = VK_TRUE;
    fc.f12.storageBuffer8BitAccess = VK_TRUE;
  }
  if (ctx->caps_.int_dot) fc.f13.shaderIntegerDotProduct = VK_TRUE;
  std::vector<const char*> exts;
  if (ctx->caps_.checkpoints) exts.push_back(VK_NV_DEVICE_DIAGNOSTIC_CHECKPOINTS_EXTENSION_NAME);
  if (ctx->caps_.memory_budget) exts.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);

  const float priority = 1.0f;
  VkDeviceQueueCreateInfo qi{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qi.queueFamilyIndex = ctx->queue_family_;
  qi.queueCount = 1;
  qi.pQueuePriorities = &priority;
  VkDeviceCreateInfo di{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  di.pNext = &fc.f2;
  di.queueCreateInfoCount = 1;
  di.pQueueCreateInfos = &qi;
  di.enabledExtensionCount = static_cast<uint32_t>(exts.size());
  di.ppEnabledExtensionNames = exts.data();
  KP_VK_TRY(vkCreateDevice(ctx->physical_, &di, nullptr, &ctx->device_));
  vkGetDeviceQueue(ctx->device_, ctx->queue_family_, 0, &ctx->queue_);
  if (ctx->caps_.checkpoints) {
    ctx->cmd_set_checkpoint =
        reinterpret_cast<PFN_vkCmdSetCheckpointNV>(vkGetDeviceProcAddr(ctx->device_, "vkCmdSetCheckpointNV"));
    ctx->get_checkpoints =
        reinterpret_cast<PFN_vkGetQueueCheckpointDataNV>(vkGetDeviceProcAddr(ctx->device_, "vkGetQueueCheckpointDataNV"));
    ctx->caps_.checkpoints = ctx->cmd_set_checkpoint != nullptr && ctx->get_checkpoints != nullptr;
  }
  return ctx;
}

uint64_t Context::free_device_memory(uint64_t allocated) const {
  VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
  VkPhysicalDeviceMemoryProperties2 mp{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
  if (caps_.memory_budget) mp.pNext = &budget;
  vkGetPhysicalDeviceMemoryProperties2(physical_, &mp);
  const VkPhysicalDeviceMemoryProperties& m = mp.memoryProperties;
  uint64_t best = 0;
  for (uint32_t i = 0; i < m.memoryHeapCount && i < VK_MAX_MEMORY_HEAPS; ++i) {
    if (!(m.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)) continue;
    uint64_t free = 0;
    if (caps_.memory_budget) {
      free = budget.heapBudget[i] > budget.heapUsage[i] ? budget.heapBudget[i] - budget.heapUsage[i] : 0;
    } else {
      free = m.memoryHeaps[i].size > allocated ? m.memoryHeaps[i].size - allocated : 0;
    }
    best = std::max(best, free);
  }
  return best;
}

Context::~Context() {
  if (device_ != VK_NULL_HANDLE) {
    vkDeviceWaitIdle(device_);
    vkDestroyDevice(device_, nullptr);
  }
  if (messenger_ != VK_NULL_HANDLE) {
    auto destroy = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
        vkGetInstanceProcAddr(instance_, "vkDestroyDebugUtilsMessengerEXT"));
    if (destroy != nullptr) destroy(instance_, messenger_, nullptr);
  }
  if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
}

Result<std::vector<DeviceInfo>> enumerate_devices() {
  const Result<VkInstance>& instance = listing_instance();
  if (!instance.ok()) return instance.error();
  KP_TRY(std::vector<VkPhysicalDevice> devices, physical_devices(*instance));
  std::vector<DeviceInfo> out;
  for (VkPhysicalDevice pd : devices) {
    DeviceInfo info;
    DeviceCaps caps;
    VkPhysicalDeviceProperties props{};
    describe(pd, info, caps, props);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace kp::backend::vk
