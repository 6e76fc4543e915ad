// GGUF v2/v3 reader and writer.
//
// The reader never trusts the file: every count, length, offset and size is
// bounded by the file's size before anything is allocated or read, and every
// error names the field and what was expected, e.g.
//   "model.gguf: tensor 3 'blk.0.attn_q.weight': data [4096, 8192) lies outside the data section (6000 bytes)".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/mapped_file.h"
#include "core/result.h"
#include "format/ggml_type.h"

namespace kp::format {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

struct GgufArray;

// "uint32", "string", "array", ... as gguf-py names them; "type N" for an undefined N.
std::string value_type_name(GgufValueType t);
// True for the 13 value types GGUF defines.
bool is_value_type(uint32_t raw);

// One metadata value. Arrays may nest (an array of arrays).
struct GgufValue {
  GgufValueType type = GgufValueType::UINT32;
  std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<GgufArray>> v;

  // Storage: UINT8..UINT64 -> uint64_t, INT8..INT64 -> int64_t, FLOAT32/64 ->
  // double, BOOL -> bool, STRING -> std::string, ARRAY -> shared GgufArray.
  // Typed accessors: a value of the wrong type or range is an Error naming `key`.
  bool is_integer() const;
  bool is_float() const;
  Result<uint64_t> as_u64(std::string_view key) const;  // any integer type, >= 0
  Result<int64_t> as_i64(std::string_view key) const;
  Result<double> as_f64(std::string_view key) const;    // float or integer
  Result<bool> as_bool(std::string_view key) const;
  Result<std::string> as_string(std::string_view key) const;
  const GgufArray* as_array() const;  // nullptr if not an array

  static GgufValue u8(uint8_t x);
  static GgufValue i8(int8_t x);
  static GgufValue u16(uint16_t x);
  static GgufValue i16(int16_t x);
  static GgufValue u32(uint32_t x);
  static GgufValue i32(int32_t x);
  static GgufValue u64(uint64_t x);
  static GgufValue i64(int64_t x);
  static GgufValue f32(float x);
  static GgufValue f64(double x);
  static GgufValue boolean(bool x);
  static GgufValue string(std::string s);
  // Every element must have type `elem_type` (checked).
  static GgufValue array(GgufValueType elem_type, std::vector<GgufValue> elems);
};

struct GgufArray {
  GgufValueType elem_type = GgufValueType::UINT8;
  std::vector<GgufValue> elems;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<uint64_t> dims;  // ne[0] (innermost, contiguous) first, as stored
  uint64_t offset = 0;         // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;  // into the mapped file

  // Rows x cols view for matrices: cols = dims[0], rows = product of the rest.
  uint64_t cols() const { return dims.empty() ? 1 : dims[0]; }
  uint64_t rows() const { return cols() == 0 ? 0 : n_elements / cols(); }
};

class GgufFile {
 public:
  // Opens and validates a GGUF file (memory-mapped).
  static Result<GgufFile> open(const std::string& path);
  // Parses bytes already in memory (embedded model, tests); `name` is used in errors.
  static Result<GgufFile> parse(std::shared_ptr<const MappedFile> bytes);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::string& name() const { return file_->name(); }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(std::string_view key) const;
  // Typed lookups; the error names the key and what was expected.
  Result<uint64_t> get_u64(std::string_view key) const;
  Result<double> get_f64(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<bool> get_bool(std::string_view key) const;
  // Optional variants: `fallback` when the key is absent, error if of the wrong type.
  Result<uint64_t> get_u64_or(std::string_view key, uint64_t fallback) const;
  Result<double> get_f64_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(std::string_view name) const;
  uint64_t data_offset() const { return data_offset_; }
  uint64_t data_size() const { return file_->size() > data_offset_ ? file_->size() - data_offset_ : 0; }
  uint64_t file_size() const { return file_->size(); }
  std::shared_ptr<const MappedFile> file() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Limits the reader enforces beyond "fits in the file".
inline constexpr uint64_t kGgufMaxAlignment = 1u << 20;  // general.alignment <= 1 MiB
inline constexpr int kGgufMaxArrayDepth = 8;             // arrays of arrays of ...
inline constexpr uint32_t kGgufMaxDims = 4;
// Array elements in all metadata together. Each element is one GgufValue
// (~48 bytes) even when it takes one byte in the file, so this keeps a hostile
// file from turning its size into 48 times as much memory. Real files hold
// about a million (three vocabulary arrays, BPE merges).
inline constexpr uint64_t kGgufMaxMetadataValues = 1ull << 24;

// Writes GGUF v3. Tensors are added with their bytes already in the target type.
// Output is deterministic: keys and tensors in insertion order, each tensor's
// data at the next aligned offset, zero padding.
class GgufWriter {
 public:
  void set(std::string key, GgufValue value);  // replaces an existing key
  // A power of two <= kGgufMaxAlignment (checked); also writes general.alignment.
  void set_alignment(uint32_t alignment);
  // dims as in GGUF (ne[0] first). data.size() must equal the type's byte size.
  Status add_tensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                    std::vector<uint8_t> data);
  Status write(const std::string& path) const;
  std::vector<uint8_t> to_bytes() const;

 private:
  // Emits the file in order: header, metadata, tensor infos, padded data.
  void serialize(const std::function<void(std::span<const uint8_t>)>& emit) const;

  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> dims;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace kp::format
