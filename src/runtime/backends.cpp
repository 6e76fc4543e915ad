#include "runtime/backends.h"


#include "backend/cpu/cpu_backend.h"
#include "core/dirs.h"
#ifdef KP_HAVE_VULKAN
#include "backend/vulkan/vulkan_backend.h"
#endif
#ifdef KP_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace kp::runtime {

std::vector<std::string> compiled_backends() {
  std::vector<std::string> out{"cpu"};
#ifdef KP_HAVE_VULKAN
  out.push_back("vulkan");
#endif
#ifdef KP_HAVE_CUDA
  out.push_back("cuda");
#endif
  return out;
}

std::string default_cache_dir() { return user_cache_dir(); }

namespace {

std::unique_ptr<backend::Backend> cpu_backend(const BackendRequest& request) {
  backend::CpuOptions o;
  o.kernels = request.cpu_reference_kernels ? backend::CpuKernelSet::kReference : backend::CpuKernelSet::kFast;
  o.threads = request.threads;
  return backend::make_cpu_backend(o);
}

}  // namespace

Result<OpenedBackend> open_backend(const BackendRequest& request) {
  const std::string& name = request.name;
  const std::string cache = request.cache_dir.empty() ? default_cache_dir() : request.cache_dir;
  if (name == "cpu") return OpenedBackend{cpu_backend(request), "--backend cpu"};
#ifdef KP_HAVE_CUDA
  if (name == "cuda") {
    backend::CudaOptions co;
    co.cache_dir = cache + "/cuda";
    co.sync_each_dispatch = request.sync_each_dispatch;
    KP_TRY(auto be, backend::make_cuda_backend(request.device < 0 ? 0 : request.device, co));
    return OpenedBackend{std::move(be), "--backend cuda"};
  }
#endif
#ifdef KP_HAVE_VULKAN
  if (name == "vulkan") {
    backend::VulkanOptions vo;
    vo.device_index = request.device;
    vo.validation = request.vulkan_validation;
    vo.checkpoints = request.vulkan_checkpoints;
    vo.sync_each_dispatch = request.sync_each_dispatch;
    vo.cache_dir = cache + "/vulkan";
    KP_TRY(auto be, backend::make_vulkan_backend(vo));
    return OpenedBackend{std::move(be), "--backend vulkan"};
  }
#endif
  if (name != "auto") {
    std::string list;
    for (const auto& b : compiled_backends()) list += (list.empty() ? "" : ", ") + b;
    return make_error("--backend {}: not a backend of this build (expected auto, reference, {})", name, list);
  }
  std::string why;
#ifdef KP_HAVE_CUDA
  {
    backend::CudaOptions co;
    co.cache_dir = cache + "/cuda";
    co.sync_each_dispatch = request.sync_each_dispatch;
    auto be = backend::make_cuda_backend(0, co);
    if (be.ok()) return OpenedBackend{std::move(*be), "auto: CUDA device 0"};
    const std::string& m = be.error().message;
    // The cause, without the list of libraries tried ("...; tried:\n  ...").
    std::string cause = m.substr(0, m.find('\n'));
    if (const size_t tried = cause.find("; tried:"); tried != std::string::npos) cause.resize(tried);
    why += "CUDA: " + cause + "; ";
  }
#endif
#ifdef KP_HAVE_VULKAN
  {
    // Only a GPU is worth it: lavapipe (a CPU-type Vulkan device) is several
    // times slower than the CPU backend on the same cores.
    auto devices = backend::list_vulkan_devices();
    std::string software;
    bool gpu = false;
    if (devices.ok()) {
      for (const auto& d : *devices) {
        if (!d.is_software) gpu = true;
        if (d.is_software) software += (software.empty() ? "" : ", ") + d.name;
      }
    }
    if (gpu) {
      backend::VulkanOptions vo;
      vo.device_index = -1;  // the backend prefers a real GPU over a software device
      vo.validation = request.vulkan_validation;
      vo.checkpoints = request.vulkan_checkpoints;
      vo.sync_each_dispatch = request.sync_each_dispatch;
      vo.cache_dir = cache + "/vulkan";
      auto be = backend::make_vulkan_backend(vo);
      if (be.ok()) {
        const std::string gpu_why = "auto: a Vulkan GPU (" + (*be)->info().name + ")";
        return OpenedBackend{std::move(*be), gpu_why};
      }
      why += "Vulkan: " + be.error().message + "; ";
    } else if (!devices.ok()) {
      why += "Vulkan: " + devices.error().message + "; ";
    } else if (!software.empty()) {
      why += "Vulkan: only software devices (" + software +
             ", slower than the cpu backend; --backend vulkan uses them); ";
    } else {
      why += "Vulkan: no devices; ";
    }
  }
#endif
  if (why.size() >= 2) why.resize(why.size() - 2);  // the last "; "
  auto cpu = cpu_backend(request);
  return OpenedBackend{std::move(cpu), why.empty() ? "auto: no GPU backend in this build, using the cpu backend"
                                                  : "auto: no GPU (" + why + "), using the cpu backend"};
}

}  // namespace kp::runtime
