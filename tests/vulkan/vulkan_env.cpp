#include "vulkan_env.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <vector>

#include "backend/cpu/cpu_backend.h"

namespace kp::vulkan_test {

namespace {

// The directories fresh_temp_dir made, removed when the process exits (after
// the shared backend, which was made later, is gone).
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};

}  // namespace

std::string fresh_temp_dir(const std::string& stem) {
  static TempDirs made;
  static std::atomic<int> counter{0};
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       fmt::format("kpath-{}-{}-{}", stem, static_cast<long>(::getpid()), counter.fetch_add(1));
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  made.dirs.push_back(dir);
  return dir.string();
}

Env& env() {
  static Env e = [] {
    Env out;
    backend::VulkanOptions options;
    options.validation = true;
    // Compiled SPIR-V of this test run; later backends in the run reuse it.
    options.cache_dir = fresh_temp_dir("vulkan-test-cache");
    auto be = backend::make_vulkan_backend(options);
    if (be.ok()) {
      out.validation = true;
    } else {
      out.no_validation = be.error().message;
      options.validation = false;
      be = backend::make_vulkan_backend(options);
    }
    if (!be.ok()) {
      out.no_device = be.error().message;
      return out;
    }
    out.backend = std::move(*be);
    out.vulkan = dynamic_cast<backend::VulkanBackend*>(out.backend.get());
    auto registry = kpath::Registry::load_builtin(std::string(KP_SOURCE_DIR) + "/kernels");
    if (!registry.ok()) {
      out.registry_error = registry.error().message;
      return out;
    }
    out.registry = std::make_unique<kpath::Registry>(std::move(*registry));
    backend::register_cpu_kernels(*out.registry);
    out.cpu = backend::make_cpu_backend();
    return out;
  }();
  return e;
}

std::string validation_report(uint64_t before) {
  const Env& e = env();
  if (e.vulkan == nullptr) return "";
  std::string out = fmt::format("{} validation messages since the start of this test (first of the run:",
                                e.vulkan->validation_message_count() - before);
  for (const auto& m : e.vulkan->validation_messages()) out += "\n  " + m;
  return out + ")";
}

}  // namespace kp::vulkan_test
