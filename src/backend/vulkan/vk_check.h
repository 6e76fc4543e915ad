// Checking Vulkan calls: every VkResult other than VK_SUCCESS becomes a
// kp::Error naming the call and the result code.
#pragma once

#include <vulkan/vulkan.h>

#include <string_view>

#include "core/result.h"

namespace kp::backend::vk {

std::string_view result_name(VkResult r);

// `call` may be the whole call expression; only the function name is kept.
inline Error vk_error(VkResult r, std::string_view call) {
  return make_error("Vulkan: {} failed: {}", call.substr(0, call.find('(')), result_name(r));
}

}  // namespace kp::backend::vk

// KP_VK_TRY(vkCall(...)): returns the error from the enclosing function
// (a Result<T> or Status) when the call does not return VK_SUCCESS.
#define KP_VK_TRY(call)                                                  \
  do {                                                                   \
    const VkResult kp_vk_result_ = (call);                               \
    if (kp_vk_result_ != VK_SUCCESS) return ::kp::backend::vk::vk_error(kp_vk_result_, #call); \
  } while (0)
