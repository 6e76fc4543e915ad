// On-disk cache of NVRTC output: one file per module key (source with
// includes, constants, arch, NVRTC and driver versions),
// <dir>/<key as 16 hex digits>.cubin, holding the cubin and the ptxas figures.
// Best effort: an unreadable, truncated or foreign file is a miss, a failed
// write is ignored (the next run compiles again). Files are written to a
// temporary name and renamed, so concurrent processes never read half a file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/cuda/nvrtc_compile.h"

namespace kp::backend {

class ModuleDiskCache {
 public:
  explicit ModuleDiskCache(std::string dir) : dir_(std::move(dir)) {}

  // The module stored under `key`, if its file is intact and was built for `arch`.
  std::optional<CompiledKernel> load(uint64_t key, const std::string& arch) const;
  void store(uint64_t key, const CompiledKernel& kernel) const;

  std::string path_of(uint64_t key) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace kp::backend
