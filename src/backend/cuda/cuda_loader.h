// Run-time loading of the CUDA driver (libcuda.so.1) and of NVRTC
// (libnvrtc.so.13 / .12): the build needs only the toolkit's headers, so one
// binary runs on machines with and without an NVIDIA driver. Each library is
// opened once per process; a missing library is an error value whose message
// says which file could not be opened, never a crash.
//
// Internal to src/backend/cuda: it includes cuda.h and nvrtc.h, which only this
// target sees.
#pragma once

#include <cuda.h>
#include <nvrtc.h>

#include <string>

#include "core/result.h"

namespace kp::backend::cuda {

// The driver entry points kpath calls. cuda.h maps several names to versioned
// symbols (cuMemAlloc -> cuMemAlloc_v2); the members take the mapped names, so
// `drv.cuMemAlloc(...)` calls exactly the ABI the headers declare.
#define KP_CUDA_DRIVER_FUNCTIONS(X) \
  X(cuGetErrorName)                 \
  X(cuGetErrorString)               \
  X(cuInit)                         \
  X(cuDriverGetVersion)             \
  X(cuDeviceGetCount)               \
  X(cuDeviceGet)                    \
  X(cuDeviceGetName)                \
  X(cuDeviceTotalMem)               \
  X(cuDeviceGetAttribute)           \
  X(cuDevicePrimaryCtxRetain)       \
  X(cuDevicePrimaryCtxRelease)      \
  X(cuCtxSetCurrent)                \
  X(cuStreamCreate)                 \
  X(cuStreamDestroy)                \
  X(cuStreamSynchronize)            \
  X(cuMemAlloc)                     \
  X(cuMemFree)                      \
  X(cuMemGetInfo)                   \
  X(cuMemAllocHost)                 \
  X(cuMemFreeHost)                  \
  X(cuMemsetD8Async)                \
  X(cuMemcpyHtoDAsync)              \
  X(cuMemcpyDtoHAsync)              \
  X(cuMemcpyDtoDAsync)              \
  X(cuModuleLoadData)               \
  X(cuModuleUnload)                 \
  X(cuModuleGetFunction)            \
  X(cuFuncGetAttribute)             \
  X(cuLaunchKernel)                 \
  X(cuLaunchKernelEx)               \
  X(cuEventCreate)                  \
  X(cuEventDestroy)                 \
  X(cuEventRecord)                  \
  X(cuEventSynchronize)             \
  X(cuEventElapsedTime)             \
  X(cuStreamBeginCapture)           \
  X(cuStreamEndCapture)             \
  X(cuGraphInstantiate)             \
  X(cuGraphLaunch)                  \
  X(cuGraphExecDestroy)             \
  X(cuGraphDestroy)

#define KP_NVRTC_FUNCTIONS(X) \
  X(nvrtcGetErrorString)      \
  X(nvrtcVersion)             \
  X(nvrtcCreateProgram)       \
  X(nvrtcDestroyProgram)      \
  X(nvrtcCompileProgram)      \
  X(nvrtcGetProgramLogSize)   \
  X(nvrtcGetProgramLog)       \
  X(nvrtcGetCUBINSize)        \
  X(nvrtcGetCUBIN)

#define KP_CUDA_DECLARE_POINTER(fn) decltype(&::fn) fn = nullptr;

struct CudaDriver {
  KP_CUDA_DRIVER_FUNCTIONS(KP_CUDA_DECLARE_POINTER)
  int driver_version = 0;  // cuDriverGetVersion after a successful cuInit: 13000 = 13.0
  std::string library;     // the file that was opened
};

struct Nvrtc {
  KP_NVRTC_FUNCTIONS(KP_CUDA_DECLARE_POINTER)
  int major = 0, minor = 0;
  std::string library;
};

#undef KP_CUDA_DECLARE_POINTER

// The driver, loaded and initialised (cuInit) once. The error says why the CUDA
// backend is unavailable (no libcuda.so.1, or cuInit failed: no device, driver
// too old for the headers, ...).
Result<const CudaDriver*> load_cuda_driver();

// NVRTC, loaded once. Tries the sonames of the toolkit kpath was built against,
// then the toolkit's lib64 directory next to KP_CUDA_INCLUDE_DIR.
Result<const Nvrtc*> load_nvrtc();

// "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)".
std::string cuda_error_text(const CudaDriver& drv, CUresult r);
std::string nvrtc_error_text(const Nvrtc& nvrtc, nvrtcResult r);

}  // namespace kp::backend::cuda
