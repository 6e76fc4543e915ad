// What the Vulkan tests share: one Vulkan backend (validation layer on when it
// is installed, so every test also proves the kernels and the backend use
// Vulkan validly), the CPU backend the kernels are compared against, and the
// registry with both backends' implementations.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "backend/backend.h"
#include "backend/vulkan/vulkan_backend.h"
#include "kernel_path/registry.h"

namespace kp::vulkan_test {

struct Env {
  std::unique_ptr<backend::Backend> backend;  // the Vulkan backend, or null
  backend::VulkanBackend* vulkan = nullptr;   // the same object
  bool validation = false;                    // VK_LAYER_KHRONOS_validation is active
  std::string no_validation;                  // why it is not
  std::string no_device;                      // why there is no Vulkan backend
  std::unique_ptr<backend::Backend> cpu;
  std::unique_ptr<kpath::Registry> registry;
  std::string registry_error;
};

Env& env();

// A fresh, empty directory under the system's temporary directory.
std::string fresh_temp_dir(const std::string& stem);

// Validation messages logged since `before`, for failure output.
std::string validation_report(uint64_t before);

}  // namespace kp::vulkan_test

// Skips the test when there is no Vulkan device; fails it when the registry is broken.
#define KP_REQUIRE_VULKAN()                                                                  \
  do {                                                                                       \
    if (::kp::vulkan_test::env().backend == nullptr) {                                      \
      GTEST_SKIP() << "no Vulkan device: " << ::kp::vulkan_test::env().no_device;            \
    }                                                                                        \
    ASSERT_TRUE(::kp::vulkan_test::env().registry_error.empty()) << ::kp::vulkan_test::env().registry_error; \
  } while (0)
