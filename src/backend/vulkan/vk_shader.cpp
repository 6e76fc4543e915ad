#include "backend/vulkan/vk_shader.h"

#include <fmt/format.h>
#include <shaderc/shaderc.hpp>
#include <unistd.h>
#include <vulkan/vulkan.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/mapped_file.h"

namespace kp::backend::vk {
namespace {

namespace fs = std::filesystem;

constexpr char kDiskMagic[8] = {'K', 'P', 'S', 'P', 'V', '0', '0', '1'};

// Where `#include name` from `from_file` resolves: the including file's own
// directory for "quoted" includes, then `dirs` in order. "" when not found.
std::string resolve_include(const std::string& name, const std::string& from_file, bool relative,
                            const std::vector<std::string>& dirs) {
  std::error_code ec;
  if (relative && !from_file.empty()) {
    const fs::path p = fs::path(from_file).parent_path() / name;
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  for (const auto& d : dirs) {
    const fs::path p = fs::path(d) / name;
    if (fs::is_regular_file(p, ec)) return p.lexically_normal().string();
  }
  return "";
}

// The #include directives of `text`: (name, quoted).
std::vector<std::pair<std::string, bool>> scan_includes(const std::string& text) {
  std::vector<std::pair<std::string, bool>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line[i] != '#') continue;
    i = line.find_first_not_of(" \t", i + 1);
    if (i == std::string::npos || line.compare(i, 7, "include") != 0) continue;
    i = line.find_first_not_of(" \t", i + 7);
    if (i == std::string::npos || (line[i] != '"' && line[i] != '<')) continue;
    const char close = line[i] == '"' ? '"' : '>';
    const size_t end = line.find(close, i + 1);
    if (end == std::string::npos) continue;
    out.emplace_back(line.substr(i + 1, end - i - 1), close == '"');
  }
  return out;
}

class Includer : public shaderc::CompileOptions::IncluderInterface {
 public:
  explicit Includer(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}

  shaderc_include_result* GetInclude(const char* requested, shaderc_include_type type, const char* requesting,
                                     size_t /*depth*/) override {
    auto* d = new Data;
    const std::string path =
        resolve_include(requested, requesting, type == shaderc_include_type_relative, dirs_);
    auto text = path.empty() ? Result<std::string>(make_error("not found")) : read_text_file(path);
    if (text.ok()) {
      d->name = path;
      d->content = std::move(*text);
    } else {
      std::string searched;
      for (const auto& dir : dirs_) searched += (searched.empty() ? "" : ", ") + dir;
      d->content = fmt::format("cannot open include '{}' (searched the including file's directory, {})", requested,
                               searched);
    }
    d->result = shaderc_include_result{d->name.data(), d->name.size(), d->content.data(), d->content.size(), d};
    return &d->result;
  }

  void ReleaseInclude(shaderc_include_result* r) override { delete static_cast<Data*>(r->user_data); }

 private:
  struct Data {
    shaderc_include_result result{};
    std::string name;
    std::string content;
  };
  std::vector<std::string> dirs_;
};

std::string full_key(const ShaderSource& source, const Macros& macros, const std::string& device_key,
                     uint32_t target_vulkan) {
  unsigned int spv_version = 0, spv_revision = 0;
  shaderc_get_spv_version(&spv_version, &spv_revision);
  std::string key = fmt::format("kpath vulkan spirv v1\ndevice={}\ntarget=vulkan{}.{}\nshaderc={}.{}\n", device_key,
                                VK_API_VERSION_MAJOR(target_vulkan), VK_API_VERSION_MINOR(target_vulkan),
                                spv_version, spv_revision);
  for (const auto& [name, value] : macros) key += fmt::format("define {}={}\n", name, value);
  key += "sources\n";
  key += source.key;
  return key;
}

}  // namespace

uint64_t fnv1a64(std::string_view bytes, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

Result<ShaderSource> load_shader_source(const std::string& file, const std::vector<std::string>& include_dirs) {
  ShaderSource src;
  src.file = file;
  KP_TRY(src.text, read_text_file(file));
  // Breadth-first over the include closure; each file once, in a fixed order.
  std::vector<std::pair<std::string, std::string>> files{{file, src.text}};
  std::set<std::string> seen{file};
  for (size_t i = 0; i < files.size(); ++i) {
    for (const auto& [name, quoted] : scan_includes(files[i].second)) {
      // An include that does not resolve may sit in an inactive #if branch;
      // the compiler reports it if it is really needed.
      const std::string path = resolve_include(name, files[i].first, quoted, include_dirs);
      if (path.empty() || !seen.insert(path).second) continue;
      KP_TRY(std::string text, read_text_file(path));
      files.emplace_back(path, std::move(text));
    }
  }
  for (const auto& [path, text] : files) src.key += fmt::format("file {} {}\n{}\n", path, text.size(), text);
  src.hash = fnv1a64(src.key);
  return src;
}

struct ShaderCompiler::Impl {
  shaderc::Compiler compiler;
};

ShaderCompiler::ShaderCompiler(std::string cache_dir, std::string device_key, uint32_t target_vulkan,
                               std::vector<std::string> include_dirs)
    : impl_(std::make_unique<Impl>()),
      cache_dir_(std::move(cache_dir)),
      device_key_(std::move(device_key)),
      target_vulkan_(target_vulkan),
      include_dirs_(std::move(include_dirs)) {}

ShaderCompiler::~ShaderCompiler() = default;

std::string ShaderCompiler::disk_path(const std::string& key) const {
  return (fs::path(cache_dir_) / fmt::format("{:016x}.spv", fnv1a64(key))).string();
}

bool ShaderCompiler::read_disk(const std::string& key, std::vector<uint32_t>& spirv) const {
  if (cache_dir_.empty()) return false;
  std::ifstream in(disk_path(key), std::ios::binary);
  if (!in) return false;
  char magic[8];
  uint64_t key_len = 0, n_words = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kDiskMagic, 8) != 0) return false;
  if (!in.read(reinterpret_cast<char*>(&key_len), 8) || key_len != key.size()) return false;
  std::string stored(key_len, '\0');
  if (!in.read(stored.data(), static_cast<std::streamsize>(key_len)) || stored != key) return false;
  if (!in.read(reinterpret_cast<char*>(&n_words), 8) || n_words < 5 || n_words > (64u << 20)) return false;
  spirv.resize(n_words);
  if (!in.read(reinterpret_cast<char*>(spirv.data()), static_cast<std::streamsize>(n_words * 4))) return false;
  return spirv[0] == 0x07230203u;  // SPIR-V magic number
}

void ShaderCompiler::write_disk(const std::string& key, const std::vector<uint32_t>& spirv) const {
  if (cache_dir_.empty()) return;
  // A cache: failures to write it are not errors, the next run compiles again.
  std::error_code ec;
  fs::create_directories(cache_dir_, ec);
  if (ec) return;
  const std::string path = disk_path(key);
  const std::string tmp = fmt::format("{}.tmp{}", path, static_cast<long>(::getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    const uint64_t key_len = key.size(), n_words = spirv.size();
    out.write(kDiskMagic, 8);
    out.write(reinterpret_cast<const char*>(&key_len), 8);
    out.write(key.data(), static_cast<std::streamsize>(key.size()));
    out.write(reinterpret_cast<const char*>(&n_words), 8);
    out.write(reinterpret_cast<const char*>(spirv.data()), static_cast<std::streamsize>(n_words * 4));
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, path, ec);  // atomic: a concurrent reader sees the old file or the new one
  if (ec) fs::remove(tmp, ec);
}

Result<std::vector<uint32_t>> ShaderCompiler::compile(const ShaderSource& source, const Macros& macros,
                                                      ShaderCacheStats& stats) {
  const std::string key = full_key(source, macros, device_key_, target_vulkan_);
  std::vector<uint32_t> spirv;
  if (read_disk(key, spirv)) {
    ++stats.disk_hits;
    return spirv;
  }
  shaderc::CompileOptions options;
  for (const auto& [name, value] : macros) options.AddMacroDefinition(name, value);
  options.SetIncluder(std::make_unique<Includer>(include_dirs_));
  // SPIR-V 1.5 (Vulkan 1.2) at most: for 1.3 glslang writes local_size_x_id as
  // LocalSizeId, which needs the maintenance4 feature; nothing newer is used.
  options.SetTargetEnvironment(shaderc_target_env_vulkan, VK_API_VERSION_MINOR(target_vulkan_) >= 2
                                                              ? shaderc_env_version_vulkan_1_2
                                                              : shaderc_env_version_vulkan_1_1);
  options.SetOptimizationLevel(shaderc_optimization_level_performance);
  const auto result = impl_->compiler.CompileGlslToSpv(source.text, shaderc_glsl_compute_shader, source.file.c_str(),
                                                       "main", options);
  if (result.GetCompilationStatus() != shaderc_compilation_status_success) {
    std::string defined;
    for (const auto& [name, value] : macros) {
      if (name.rfind("ENTRY_", 0) == 0) defined = name;
    }
    return make_error("{}: GLSL compilation failed ({}):\n{}", source.file, defined, result.GetErrorMessage());
  }
  spirv.assign(result.cbegin(), result.cend());
  ++stats.compiled;
  write_disk(key, spirv);
  return spirv;
}

}  // namespace kp::backend::vk
