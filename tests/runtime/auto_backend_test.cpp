// `--backend auto`: a GPU when there is one (CUDA, or a discrete or integrated
// Vulkan device), else the CPU backend; never a software Vulkan device such as
// lavapipe, which is slower than the CPU backend on the same cores.
#include <gtest/gtest.h>

#include "runtime/backends.h"
#ifdef KP_HAVE_VULKAN
#include "backend/vulkan/vulkan_backend.h"
#endif

namespace kp::runtime {
namespace {

bool vulkan_gpu_present() {
#ifdef KP_HAVE_VULKAN
  auto devices = backend::list_vulkan_devices();
  if (!devices.ok()) return false;
  for (const auto& d : *devices) {
    if (!d.is_software) return true;
  }
#endif
  return false;
}

TEST(AutoBackend, PicksAGpuElseTheCpuBackend) {
  auto opened = open_backend(BackendRequest{});
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  const backend::DeviceInfo& info = opened->backend->info();
  EXPECT_FALSE(info.backend == "vulkan" && info.is_software) << info.name << ": " << opened->why;
  if (info.backend == "cuda") return;  // a CUDA GPU comes first
  if (vulkan_gpu_present()) {
    EXPECT_EQ(info.backend, "vulkan") << opened->why;
  } else {
    EXPECT_EQ(info.backend, "cpu") << opened->why;
    EXPECT_NE(opened->why.find("using the cpu backend"), std::string::npos) << opened->why;
  }
}

#ifdef KP_HAVE_VULKAN
TEST(AutoBackend, SoftwareVulkanStaysAvailableByName) {
  auto devices = backend::list_vulkan_devices();
  if (!devices.ok() || devices->empty()) GTEST_SKIP() << "no Vulkan device";
  BackendRequest r;
  r.name = "vulkan";
  auto opened = open_backend(r);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->backend->info().backend, "vulkan");
}
#endif

}  // namespace
}  // namespace kp::runtime
