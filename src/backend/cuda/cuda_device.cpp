// Device enumeration and the facts DeviceInfo carries, read through the driver
// API; also the default cubin cache directory.
#include <pwd.h>
#include <unistd.h>

#include <filesystem>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_loader.h"

namespace kp::backend {

using cuda::CudaDriver;
using cuda::cuda_error_text;
using cuda::load_cuda_driver;

namespace cuda {

Result<DeviceInfo> query_device(const CudaDriver& drv, int ordinal, CUdevice* out_device) {
  int count = 0;
  if (CUresult r = drv.cuDeviceGetCount(&count); r != CUDA_SUCCESS) {
    return make_error("CUDA backend unavailable: cuDeviceGetCount failed: {}", cuda_error_text(drv, r));
  }
  if (count == 0) return make_error("CUDA backend unavailable: the driver reports no CUDA device");
  if (ordinal < 0 || ordinal >= count) {
    return make_error("CUDA device {} does not exist (the driver reports {} device{}: 0..{})", ordinal, count,
                      count == 1 ? "" : "s", count - 1);
  }
  CUdevice dev = 0;
  if (CUresult r = drv.cuDeviceGet(&dev, ordinal); r != CUDA_SUCCESS) {
    return make_error("cuDeviceGet({}) failed: {}", ordinal, cuda_error_text(drv, r));
  }
  char name[256] = {};
  size_t memory = 0;
  int major = 0, minor = 0;
  CUresult r = drv.cuDeviceGetName(name, sizeof name - 1, dev);
  if (r == CUDA_SUCCESS) r = drv.cuDeviceTotalMem(&memory, dev);
  if (r == CUDA_SUCCESS) r = drv.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
  if (r == CUDA_SUCCESS) r = drv.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
  if (r != CUDA_SUCCESS) return make_error("querying CUDA device {} failed: {}", ordinal, cuda_error_text(drv, r));
  DeviceInfo info;
  info.backend = "cuda";
  info.name = name;
  info.driver = fmt::format("NVIDIA CUDA driver {}.{}", drv.driver_version / 1000, drv.driver_version % 1000 / 10);
  info.memory_bytes = memory;
  info.is_software = false;
  info.arch = fmt::format("sm_{}{}", major, minor);
  // Registry feature names. Every GPU NVRTC 12/13 targets (sm_75+) has f16
  // arithmetic, warp shuffles and dp4a.
  info.features = {"f16", "subgroups", "int_dot"};
  info.prefill_batch = 512;
  if (major >= 8) {
    info.features.insert("bf16");
    info.features.insert("mma_f16");  // mma.sync.m16n8k16 with f16 operands
  }
  if (out_device != nullptr) *out_device = dev;
  return info;
}

}  // namespace cuda

Result<std::vector<DeviceInfo>> list_cuda_devices() {
  KP_TRY(const CudaDriver* drv, load_cuda_driver());
  int count = 0;
  if (CUresult r = drv->cuDeviceGetCount(&count); r != CUDA_SUCCESS) {
    return make_error("CUDA backend unavailable: cuDeviceGetCount failed: {}", cuda_error_text(*drv, r));
  }
  if (count == 0) return make_error("CUDA backend unavailable: the driver reports no CUDA device");
  std::vector<DeviceInfo> out;
  for (int i = 0; i < count; ++i) {
    KP_TRY(DeviceInfo info, cuda::query_device(*drv, i, nullptr));
    out.push_back(std::move(info));
  }
  return out;
}

Result<DeviceInfo> cuda_device_info(int device) {
  KP_TRY(const CudaDriver* drv, load_cuda_driver());
  return cuda::query_device(*drv, device, nullptr);
}

std::string default_cuda_cache_dir() {
  // The home directory from the password database, not $HOME: backends read no
  // environment. Without one, a directory under the system's temporary path.
  std::string home;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* result = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr && pw.pw_dir) {
    home = pw.pw_dir;
  }
  if (home.empty()) {
    std::error_code ec;
    home = std::filesystem::temp_directory_path(ec).string();
    if (ec) home = "/tmp";
  }
  return (std::filesystem::path(home) / ".cache" / "kpath" / "cuda").string();
}

}  // namespace kp::backend
