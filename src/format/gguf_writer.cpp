// GGUF v3 writer. Output is a pure function of the calls made: metadata in
// insertion order, tensor infos in insertion order, each tensor's data at the
// next multiple of the alignment, zero padding (including after the last
// tensor, as llama.cpp writes it).
#include <fmt/format.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/atomic_file.h"
#include "core/check.h"
#include "format/gguf.h"
#include "format/gguf_encode.h"

namespace kp::format {
namespace {

using gguf_encode::align_up;
using gguf_encode::put;
using gguf_encode::put_bytes;
using gguf_encode::put_string;
using gguf_encode::put_value;

constexpr uint32_t kWriteVersion = 3;

// A value's stored alternative must match its type and its range; values come
// from the factories, so a mismatch is a bug in the caller.
void check_value(const GgufValue& v) {
  using T = GgufValueType;
  auto u_fits = [&](uint64_t max) {
    KP_CHECK(std::holds_alternative<uint64_t>(v.v) && std::get<uint64_t>(v.v) <= max,
             "unsigned GGUF value holds a uint64_t within its type's range");
  };
  auto s_fits = [&](int64_t lo, int64_t hi) {
    KP_CHECK(std::holds_alternative<int64_t>(v.v) && std::get<int64_t>(v.v) >= lo &&
                 std::get<int64_t>(v.v) <= hi,
             "signed GGUF value holds an int64_t within its type's range");
  };
  switch (v.type) {
    case T::UINT8: u_fits(std::numeric_limits<uint8_t>::max()); return;
    case T::UINT16: u_fits(std::numeric_limits<uint16_t>::max()); return;
    case T::UINT32: u_fits(std::numeric_limits<uint32_t>::max()); return;
    case T::UINT64: u_fits(std::numeric_limits<uint64_t>::max()); return;
    case T::INT8: s_fits(INT8_MIN, INT8_MAX); return;
    case T::INT16: s_fits(INT16_MIN, INT16_MAX); return;
    case T::INT32: s_fits(INT32_MIN, INT32_MAX); return;
    case T::INT64: s_fits(INT64_MIN, INT64_MAX); return;
    case T::FLOAT32:
    case T::FLOAT64:
      KP_CHECK(std::holds_alternative<double>(v.v), "float GGUF value holds a double");
      return;
    case T::BOOL: KP_CHECK(std::holds_alternative<bool>(v.v), "bool GGUF value holds a bool"); return;
    case T::STRING:
      KP_CHECK(std::holds_alternative<std::string>(v.v), "string GGUF value holds a string");
      return;
    case T::ARRAY: {
      KP_CHECK(std::holds_alternative<std::shared_ptr<GgufArray>>(v.v) &&
                   std::get<std::shared_ptr<GgufArray>>(v.v) != nullptr,
               "array GGUF value holds an array");
      const GgufArray& arr = *std::get<std::shared_ptr<GgufArray>>(v.v);
      KP_CHECK(is_value_type(static_cast<uint32_t>(arr.elem_type)), "array element type is defined");
      for (const GgufValue& e : arr.elems) {
        KP_CHECK(e.type == arr.elem_type, "array element has the array's element type");
        check_value(e);
      }
      return;
    }
  }
  KP_CHECK(false, "GGUF value type is one of the 13 defined types");
}


}  // namespace

void GgufWriter::set(std::string key, GgufValue value) {
  KP_CHECK(!key.empty(), "GGUF keys are non-empty");
  check_value(value);
  if (key == "general.alignment") {
    KP_CHECK(value.type == GgufValueType::UINT32, "general.alignment is a uint32");
    const uint64_t a = std::get<uint64_t>(value.v);
    KP_CHECK(a != 0 && (a & (a - 1)) == 0 && a <= kGgufMaxAlignment,
             "general.alignment is a power of two <= kGgufMaxAlignment");
    alignment_ = static_cast<uint32_t>(a);
  }
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  set("general.alignment", GgufValue::u32(alignment));
}

Status GgufWriter::add_tensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                              std::vector<uint8_t> data) {
  if (name.empty()) return make_error("tensor {}: empty name", tensors_.size());
  for (const Tensor& t : tensors_) {
    if (t.name == name) return make_error("tensor '{}': added twice", name);
  }
  const std::optional<TypeTraits> tt = type_traits(static_cast<uint32_t>(type));
  if (!tt) return make_error("tensor '{}': type {} is not a GGUF tensor type", name, static_cast<uint32_t>(type));
  if (dims.empty() || dims.size() > kGgufMaxDims) {
    return make_error("tensor '{}': {} dims (expected 1 to {})", name, dims.size(), kGgufMaxDims);
  }
  uint64_t n = 1;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 0) return make_error("tensor '{}': dim {} is 0 (expected > 0)", name, d);
    if (__builtin_mul_overflow(n, dims[d], &n)) {
      return make_error("tensor '{}': element count overflows 64 bits", name);
    }
  }
  if (dims[0] % tt->block_elems != 0) {
    return make_error("tensor '{}': dim 0 ({}) is not a multiple of the {} block size {}", name,
                      dims[0], tt->name, tt->block_elems);
  }
  uint64_t expected = 0;
  if (__builtin_mul_overflow(n / tt->block_elems, uint64_t{tt->block_bytes}, &expected)) {
    return make_error("tensor '{}': byte size overflows 64 bits", name);
  }
  if (data.size() != expected) {
    return make_error("tensor '{}': data has {} bytes, expected {} for {} elements of {}", name,
                      data.size(), expected, n, tt->name);
  }
  tensors_.push_back(Tensor{std::move(name), type, std::move(dims), std::move(data)});
  return {};
}

void GgufWriter::serialize(const std::function<void(std::span<const uint8_t>)>& emit) const {
  std::vector<uint8_t> head;
  head.reserve(4096);
  put_bytes(head, "GGUF", 4);
  put<uint32_t>(head, kWriteVersion);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size());
  for (const auto& [key, value] : kv_) {
    put_string(head, key);
    put<uint32_t>(head, static_cast<uint32_t>(value.type));
    put_value(head, value);
  }
  uint64_t offset = 0;  // relative to the data section
  for (const Tensor& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put<uint64_t>(head, d);
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset = align_up(offset + t.data.size(), alignment_);
  }
  head.resize(align_up(head.size(), alignment_), 0);
  emit(head);

  const std::vector<uint8_t> zeros(alignment_, 0);
  for (const Tensor& t : tensors_) {
    emit(t.data);
    const uint64_t pad = align_up(t.data.size(), alignment_) - t.data.size();
    emit(std::span<const uint8_t>(zeros.data(), static_cast<size_t>(pad)));
  }
}

std::vector<uint8_t> GgufWriter::to_bytes() const {
  std::vector<uint8_t> out;
  serialize([&](std::span<const uint8_t> b) { out.insert(out.end(), b.begin(), b.end()); });
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  KP_TRY(AtomicFile f, AtomicFile::create(path));
  Status status;
  serialize([&](std::span<const uint8_t> b) {
    if (status.ok()) status = f.write(b);
  });
  KP_TRY_STATUS(status);
  return f.commit();
}

}  // namespace kp::format
