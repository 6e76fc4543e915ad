// The CUDA backend: the driver API and NVRTC, both loaded at run time, so a
// binary built with the CUDA headers runs on machines without a driver (the
// backend then reports itself unavailable with the reason).
//
//   buffers     cuMemAlloc; host-visible ones too (written with cuMemcpyHtoDAsync
//               on the backend's stream, which is idle between submits)
//   pipelines   the implementation's .cu file + its includes, constants as
//               #defines, compiled by NVRTC for the device's arch; cubins cached
//               in memory and on disk, keyed by (source hash incl. includes,
//               function, constants, arch, NVRTC and driver versions)
//   submit      KpParams is copied into one device buffer before each launch;
//               the first submit of a command list captures its launches into a
//               CUDA graph, later submits replay it. With timestamps the list
//               runs launch by launch between events instead (no graph).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"

namespace kp::backend {

struct CudaOptions {
  // Directory of compiled cubins. Empty: ~/.cache/kpath/cuda (home directory
  // from the password database; the backend reads no environment variables).
  std::string cache_dir;
  bool disk_cache = true;
  // Debugging: run every submit launch by launch and wait after each, so an
  // error raised while a kernel runs (an illegal address) names its dispatch.
  bool sync_each_dispatch = false;
  // Programmatic dependent launch on compute capability 9.0 and later: each
  // kernel may start launching while its predecessor finishes (the kernels
  // wait for it before touching memory; kernels/cuda/common.cuh). Off by
  // default: on an H100 it gained nothing in decode (330 vs 332-351 tokens/s
  // on Gemma-2-2B Q4_K_M, whose kernels are latency-bound) and cost prefill
  // a fifth (the waiting blocks hold SMs the GEMMs need).
  bool programmatic_launch = false;
};

// Every CUDA device, or the reason none can be used (no driver, no device).
Result<std::vector<DeviceInfo>> list_cuda_devices();
Result<DeviceInfo> cuda_device_info(int device);

Result<std::unique_ptr<Backend>> make_cuda_backend(int device, const CudaOptions& options = {});
// The same with cubins cached in `cache_dir` ("" = default_cuda_cache_dir()).
Result<std::unique_ptr<Backend>> make_cuda_backend(int device, const std::string& cache_dir);

// The directory CudaOptions{} caches cubins in.
std::string default_cuda_cache_dir();

}  // namespace kp::backend
