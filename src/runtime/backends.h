// Opening a backend by name: "cpu", "vulkan", "cuda", or "auto" (the best
// device found: a CUDA GPU, then a discrete or integrated Vulkan GPU, then the
// CPU backend; a software Vulkan device such as lavapipe is slower than the
// CPU backend and runs only when asked for by --backend vulkan).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"

namespace kp::runtime {

struct OpenedBackend {
  std::unique_ptr<backend::Backend> backend;
  std::string why;  // "auto: first discrete GPU", "--backend vulkan"
};

struct BackendRequest {
  std::string name = "auto";
  int device = -1;               // -1: the backend's choice
  bool vulkan_validation = false;
  bool vulkan_checkpoints = false;  // name the dispatch at a device loss (slower)
  bool sync_each_dispatch = false;  // wait after every dispatch, so a fault names its step (slow)
  std::string cache_dir;         // compiled kernels; "" = the default cache directory
  unsigned threads = 0;          // cpu backend: 0 = one per physical core
  bool cpu_reference_kernels = false;  // cpu backend: the reference loops only (verify's reference)
};

Result<OpenedBackend> open_backend(const BackendRequest& request);

// Backends this build contains ("cpu", "vulkan", "cuda").
std::vector<std::string> compiled_backends();

// The default on-disk cache for compiled kernels ($XDG_CACHE_HOME/kpath or ~/.cache/kpath).
std::string default_cache_dir();

}  // namespace kp::runtime
