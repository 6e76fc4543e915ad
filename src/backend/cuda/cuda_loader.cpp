#include "backend/cuda/cuda_loader.h"

#include <dlfcn.h>

#include <string_view>
#include <vector>

namespace kp::backend::cuda {
namespace {

#define KP_CUDA_STR_INNER(x) #x
#define KP_CUDA_STR(x) KP_CUDA_STR_INNER(x)

// Opens the first library of `names` that loads; `tried` collects dlerror()s.
void* open_first(const std::vector<std::string>& names, std::string* opened, std::string* tried) {
  for (const auto& name : names) {
    dlerror();
    if (void* h = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      *opened = name;
      return h;
    }
    const char* e = dlerror();
    *tried += fmt::format("\n  {}: {}", name, e ? e : "not found");
  }
  return nullptr;
}

// Resolves one symbol: the versioned name the headers map `fn` to
// (cuMemAlloc -> cuMemAlloc_v2). Only where the plain symbol has the same
// signature (cuEventElapsedTime; its _v2 arrived with driver 12.8) does an
// older driver's plain export stand in for it.
template <class Fn>
bool resolve(void* lib, Fn& out, const char* mapped, const char* plain, std::string* missing) {
  void* p = dlsym(lib, mapped);
  if (p == nullptr && std::string_view(plain) == "cuEventElapsedTime") p = dlsym(lib, plain);
  if (p == nullptr) {
    *missing += fmt::format(" {}", mapped);
    return false;
  }
  out = reinterpret_cast<Fn>(p);
  return true;
}

struct DriverState {
  CudaDriver drv;
  std::string error;
};

DriverState load_driver_once() {
  DriverState s;
  std::string tried;
  void* lib = open_first({"libcuda.so.1", "libcuda.so"}, &s.drv.library, &tried);
  if (lib == nullptr) {
    s.error = "CUDA backend unavailable: the NVIDIA driver library could not be loaded (no NVIDIA driver "
              "installed?); tried:" + tried;
    return s;
  }
  std::string missing;
#define KP_CUDA_RESOLVE(fn) resolve(lib, s.drv.fn, KP_CUDA_STR(fn), #fn, &missing);
  KP_CUDA_DRIVER_FUNCTIONS(KP_CUDA_RESOLVE)
#undef KP_CUDA_RESOLVE
  if (!missing.empty()) {
    s.error = fmt::format("CUDA backend unavailable: {} lacks{} (driver older than CUDA {}.{}?)", s.drv.library,
                          missing, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
    return s;
  }
  if (CUresult r = s.drv.cuInit(0); r != CUDA_SUCCESS) {
    s.error = fmt::format("CUDA backend unavailable: cuInit failed: {}", cuda_error_text(s.drv, r));
    return s;
  }
  if (CUresult r = s.drv.cuDriverGetVersion(&s.drv.driver_version); r != CUDA_SUCCESS) {
    s.error = fmt::format("CUDA backend unavailable: cuDriverGetVersion failed: {}", cuda_error_text(s.drv, r));
  }
  return s;
}

struct NvrtcState {
  Nvrtc nvrtc;
  std::string error;
};

NvrtcState load_nvrtc_once() {
  NvrtcState s;
  std::vector<std::string> names = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
#ifdef KP_CUDA_INCLUDE_DIR
  // The toolkit the build found: <toolkit>/include -> <toolkit>/lib64.
  for (const char* lib : {"/../lib64/libnvrtc.so.13", "/../lib64/libnvrtc.so.12", "/../lib64/libnvrtc.so"}) {
    names.push_back(std::string(KP_CUDA_INCLUDE_DIR) + lib);
  }
#endif
  std::string tried;
  void* lib = open_first(names, &s.nvrtc.library, &tried);
  if (lib == nullptr) {
    s.error = "NVRTC unavailable: libnvrtc could not be loaded (install the CUDA toolkit's NVRTC); tried:" + tried;
    return s;
  }
  std::string missing;
#define KP_NVRTC_RESOLVE(fn) resolve(lib, s.nvrtc.fn, KP_CUDA_STR(fn), #fn, &missing);
  KP_NVRTC_FUNCTIONS(KP_NVRTC_RESOLVE)
#undef KP_NVRTC_RESOLVE
  if (!missing.empty()) {
    s.error = fmt::format("NVRTC unavailable: {} lacks{}", s.nvrtc.library, missing);
    return s;
  }
  if (nvrtcResult r = s.nvrtc.nvrtcVersion(&s.nvrtc.major, &s.nvrtc.minor); r != NVRTC_SUCCESS) {
    s.error = fmt::format("NVRTC unavailable: nvrtcVersion failed: {}", nvrtc_error_text(s.nvrtc, r));
  }
  return s;
}

}  // namespace

Result<const CudaDriver*> load_cuda_driver() {
  static const DriverState state = load_driver_once();
  if (!state.error.empty()) return Error{state.error};
  return &state.drv;
}

Result<const Nvrtc*> load_nvrtc() {
  static const NvrtcState state = load_nvrtc_once();
  if (!state.error.empty()) return Error{state.error};
  return &state.nvrtc;
}

std::string cuda_error_text(const CudaDriver& drv, CUresult r) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (drv.cuGetErrorName != nullptr) drv.cuGetErrorName(r, &name);
  if (drv.cuGetErrorString != nullptr) drv.cuGetErrorString(r, &text);
  if (name == nullptr) return fmt::format("CUDA error {}", static_cast<int>(r));
  return fmt::format("{} ({})", name, text ? text : "no description");
}

std::string nvrtc_error_text(const Nvrtc& nvrtc, nvrtcResult r) {
  const char* text = nvrtc.nvrtcGetErrorString ? nvrtc.nvrtcGetErrorString(r) : nullptr;
  return text ? std::string(text) : fmt::format("NVRTC error {}", static_cast<int>(r));
}

}  // namespace kp::backend::cuda
