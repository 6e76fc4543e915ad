// Hand assembly of GGUF bytes for the format tests. Independent of
// GgufWriter, so that the tests can check the writer's bytes against the
// specification and build files no writer would produce.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kp::format::test {

// Little-endian byte sink.
class Bytes {
 public:
  template <class T>
  Bytes& put(T x) {
    uint8_t buf[sizeof(T)];
    std::memcpy(buf, &x, sizeof(T));
    b.insert(b.end(), buf, buf + sizeof(T));
    return *this;
  }
  Bytes& u8(uint8_t x) { return put(x); }
  Bytes& u32(uint32_t x) { return put(x); }
  Bytes& u64(uint64_t x) { return put(x); }
  Bytes& raw(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& raw(const std::vector<uint8_t>& v) {
    b.insert(b.end(), v.begin(), v.end());
    return *this;
  }
  // GGUF string: u64 length, bytes.
  Bytes& str(std::string_view s) { return u64(s.size()).raw(s); }
  Bytes& pad_to(uint64_t alignment) {
    while (b.size() % alignment != 0) b.push_back(0);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
  size_t size() const { return b.size(); }

  std::vector<uint8_t> b;
};

// Value type numbers as the GGUF specification defines them.
enum : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
// ggml tensor type numbers used by the tests.
enum : uint32_t { kTypeF32 = 0, kTypeF16 = 1, kTypeQ8_0 = 8, kTypeQ4_K = 12, kTypeQ6_K = 14 };

// One encoded key-value: key, type, payload.
inline std::vector<uint8_t> kv(std::string_view key, uint32_t type, const Bytes& payload) {
  Bytes out;
  out.str(key).u32(type).raw(payload.b);
  return out.b;
}
inline std::vector<uint8_t> kv_string(std::string_view key, std::string_view value) {
  return kv(key, kString, Bytes().str(value));
}
inline std::vector<uint8_t> kv_u32(std::string_view key, uint32_t value) {
  return kv(key, kU32, Bytes().u32(value));
}

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type = kTypeF32;
  uint64_t offset = 0;
};

// A file described field by field; assemble() lays it out as GGUF.
struct FileSpec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors;  // overrides tensors.size()
  std::optional<uint64_t> n_kv;       // overrides kvs.size()
  std::vector<std::vector<uint8_t>> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;  // padding between the infos and the data section
  uint64_t data_bytes = 0;  // size of the data section (filled with a pattern)
};

inline std::vector<uint8_t> assemble(const FileSpec& s) {
  Bytes out;
  out.raw(s.magic).u32(s.version);
  out.u64(s.n_tensors.value_or(s.tensors.size()));
  out.u64(s.n_kv.value_or(s.kvs.size()));
  for (const auto& k : s.kvs) out.raw(k);
  for (const TensorSpec& t : s.tensors) {
    out.str(t.name).u32(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) out.u64(d);
    out.u32(t.type).u64(t.offset);
  }
  if (s.data_bytes > 0) {
    out.pad_to(s.alignment);
    for (uint64_t i = 0; i < s.data_bytes; ++i) out.u8(static_cast<uint8_t>(i * 7 + 1));
  }
  return out.b;
}

// A small valid file: general.architecture = "gemma2" and two tensors,
//   a: F32 [8]      at 0   (32 bytes)
//   b: Q8_0 [32, 2] at 32  (2 blocks of 34 bytes = 68)
// in a data section of 128 bytes.
inline FileSpec valid_spec() {
  FileSpec s;
  s.kvs.push_back(kv_string("general.architecture", "gemma2"));
  s.tensors.push_back({"a", {8}, kTypeF32, 0});
  s.tensors.push_back({"b", {32, 2}, kTypeQ8_0, 32});
  s.data_bytes = 128;
  return s;
}

}  // namespace kp::format::test
