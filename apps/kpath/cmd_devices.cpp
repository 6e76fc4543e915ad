// `kpath devices`: the devices this build can run on. Every Vulkan device with
// the index `--device` takes (name, type, driver, memory, the kernel features
// "f16", "subgroups", "int_dot"), then the CPU backend, then the device
// `--backend auto` chooses and why. Missing drivers are reported, not errors:
// the CPU backend is always there.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "commands.h"
#include "runtime/backends.h"
#ifdef KP_HAVE_VULKAN
#include "backend/vulkan/vulkan_backend.h"
#endif

namespace kp::cli {
namespace {

std::string gib(uint64_t bytes) { return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1ull << 30)); }

std::string feature_list(const backend::DeviceInfo& d) {
  std::string out;
  for (const auto& f : d.features) out += (out.empty() ? "" : ", ") + f;
  return out.empty() ? "none" : out;
}

void print_vulkan() {
#ifdef KP_HAVE_VULKAN
  auto devices = backend::list_vulkan_devices();
  if (!devices.ok()) {
    fmt::print("Vulkan: unavailable: {}\n", devices.error().message);
    return;
  }
  fmt::print("Vulkan devices ({}):\n", devices->size());
  for (size_t i = 0; i < devices->size(); ++i) {
    const backend::DeviceInfo& d = (*devices)[i];
    fmt::print("  {}: {}\n", i, d.name);
    fmt::print("     type:     {}{}\n", d.arch,
               d.is_software ? " (software: slower than the cpu backend; used only by --backend vulkan)" : "");
    fmt::print("     driver:   {}\n", d.driver);
    fmt::print("     memory:   {} device-local\n", gib(d.memory_bytes));
    fmt::print("     features: {}\n", feature_list(d));
  }
  if (devices->empty()) fmt::print("  none (install a driver, or Mesa lavapipe for a software device)\n");
#else
  fmt::print("Vulkan: not in this build (Vulkan headers or shaderc were not found at configure time)\n");
#endif
}

void print_cpu() {
  const auto cpu = backend::make_cpu_backend(backend::CpuOptions{});
  const backend::DeviceInfo& d = cpu->info();
  fmt::print("CPU backend: {} [{}], {} (-t N to change the threads)\n", d.name, d.arch, d.driver);
}

// The device --backend auto opens, and why.
void print_auto() {
  auto opened = runtime::open_backend(runtime::BackendRequest{});
  if (!opened.ok()) {
    fmt::print("--backend auto: no device: {}\n", opened.error().message);
    return;
  }
  const backend::DeviceInfo& d = opened->backend->info();
  fmt::print("--backend auto: {} on {} ({})\n", d.backend, d.name, opened->why);
}

}  // namespace

void add_devices_command(CLI::App& app, int* exit_code) {
  auto* sub = app.add_subcommand("devices", "List the devices kpath can run on (Vulkan, CPU)");
  sub->callback([exit_code] {
    print_vulkan();
    print_cpu();
    print_auto();
    *exit_code = 0;
  });
}

}  // namespace kp::cli
