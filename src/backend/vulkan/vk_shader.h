// GLSL -> SPIR-V at run time with shaderc, so that a kernel edited or added in
// a --kernel-dir needs no rebuild. SPIR-V does not depend on constant values
// (they are specialization constants), so it is cached on disk by (source text
// of the file and every file it includes, entry, macros, device, compiler).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/vulkan/vulkan_backend.h"
#include "core/result.h"

namespace kp::backend::vk {

using Macros = std::vector<std::pair<std::string, std::string>>;

// A kernel source and the closure of its #includes.
struct ShaderSource {
  std::string file;   // path of the .comp file
  std::string text;   // its text
  std::string key;    // every file of the closure: path and text (the cache key's source part)
  uint64_t hash = 0;  // FNV-1a of key
};

uint64_t fnv1a64(std::string_view bytes, uint64_t seed = 0xcbf29ce484222325ull);

// `include_dirs` are searched after the including file's own directory.
Result<ShaderSource> load_shader_source(const std::string& file, const std::vector<std::string>& include_dirs);

class ShaderCompiler {
 public:
  // `cache_dir` "" disables the disk cache; `device_key` names the device and
  // driver; `target_vulkan` is VK_API_VERSION_1_x of the device (max 1.3).
  ShaderCompiler(std::string cache_dir, std::string device_key, uint32_t target_vulkan,
                 std::vector<std::string> include_dirs);
  ~ShaderCompiler();
  ShaderCompiler(const ShaderCompiler&) = delete;
  ShaderCompiler& operator=(const ShaderCompiler&) = delete;

  const std::vector<std::string>& include_dirs() const { return include_dirs_; }

  // SPIR-V of `source` with `macros` defined (ENTRY_<entry>, constants, device
  // features). Errors name the file and carry the compiler's messages.
  Result<std::vector<uint32_t>> compile(const ShaderSource& source, const Macros& macros, ShaderCacheStats& stats);

 private:
  std::string disk_path(const std::string& key) const;
  bool read_disk(const std::string& key, std::vector<uint32_t>& spirv) const;
  void write_disk(const std::string& key, const std::vector<uint32_t>& spirv) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string cache_dir_;
  std::string device_key_;
  uint32_t target_vulkan_;
  std::vector<std::string> include_dirs_;
};

}  // namespace kp::backend::vk
