#include "backend/cuda/module_cache.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

namespace kp::backend {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'K', 'P', 'C', 'U', 'B', 'I', 'N', '1'};

// File layout (little-endian host order; the cache is per machine):
//   magic[8] key:u64 registers:i32 stack:i32 spill_stores:i32 spill_loads:i32
//   function_len:u32 arch_len:u32 log_len:u32 cubin_len:u64, then the four byte strings.
struct Header {
  char magic[8];
  uint64_t key;
  int32_t registers, stack_bytes, spill_stores, spill_loads;
  uint32_t function_len, arch_len, log_len;
  uint32_t pad;
  uint64_t cubin_len;
};
static_assert(sizeof(Header) == 56, "cache header layout");

}  // namespace

std::string ModuleDiskCache::path_of(uint64_t key) const {
  return (fs::path(dir_) / fmt::format("{:016x}.cubin", key)).string();
}

std::optional<CompiledKernel> ModuleDiskCache::load(uint64_t key, const std::string& arch) const {
  std::ifstream in(path_of(key), std::ios::binary);
  if (!in) return std::nullopt;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Header h;
  if (bytes.size() < sizeof h) return std::nullopt;
  std::memcpy(&h, bytes.data(), sizeof h);
  const uint64_t body = uint64_t{h.function_len} + h.arch_len + h.log_len + h.cubin_len;
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.key != key || h.cubin_len == 0 ||
      h.cubin_len > bytes.size() || body != bytes.size() - sizeof h) {
    return std::nullopt;
  }
  const char* p = bytes.data() + sizeof h;
  CompiledKernel k;
  k.function.assign(p, h.function_len);
  p += h.function_len;
  k.arch.assign(p, h.arch_len);
  p += h.arch_len;
  k.log.assign(p, h.log_len);
  p += h.log_len;
  k.cubin.assign(reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(p) + h.cubin_len);
  if (k.arch != arch) return std::nullopt;
  k.registers = h.registers;
  k.stack_bytes = h.stack_bytes;
  k.spill_stores = h.spill_stores;
  k.spill_loads = h.spill_loads;
  return k;
}

void ModuleDiskCache::store(uint64_t key, const CompiledKernel& k) const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return;
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.key = key;
  h.registers = k.registers;
  h.stack_bytes = k.stack_bytes;
  h.spill_stores = k.spill_stores;
  h.spill_loads = k.spill_loads;
  h.function_len = static_cast<uint32_t>(k.function.size());
  h.arch_len = static_cast<uint32_t>(k.arch.size());
  h.log_len = static_cast<uint32_t>(k.log.size());
  h.cubin_len = k.cubin.size();
  const std::string final_path = path_of(key);
  const std::string tmp = fmt::format("{}.{}.tmp", final_path, static_cast<long>(getpid()));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.write(k.function.data(), static_cast<std::streamsize>(k.function.size()));
    out.write(k.arch.data(), static_cast<std::streamsize>(k.arch.size()));
    out.write(k.log.data(), static_cast<std::streamsize>(k.log.size()));
    out.write(reinterpret_cast<const char*>(k.cubin.data()), static_cast<std::streamsize>(k.cubin.size()));
    if (!out) {
      out.close();
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, final_path, ec);
  if (ec) fs::remove(tmp, ec);
}

}  // namespace kp::backend
