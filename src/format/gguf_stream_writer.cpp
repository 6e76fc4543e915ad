// GgufStreamWriter: see gguf_stream_writer.h. The layout is GGUF v3 as
// GgufWriter writes it: "GGUF", version, tensor count, metadata count, the
// metadata (key, type tag, payload), the tensor infos (name, n_dims, dims,
// type, offset relative to the data section), zero padding to the alignment,
// then each tensor's data padded to the alignment.
#include "format/gguf_stream_writer.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <set>

#include "core/check.h"
#include "format/gguf_encode.h"

namespace kp::format {
namespace {

using gguf_encode::align_up;
using gguf_encode::put;
using gguf_encode::put_bytes;
using gguf_encode::put_string;
using gguf_encode::put_value;

constexpr uint32_t kVersion = 3;

// Byte size of a tensor's data, validated as GgufWriter::add_tensor does.
Result<uint64_t> tensor_size(const GgufTensorSpec& t) {
  const std::optional<TypeTraits> tt = type_traits(static_cast<uint32_t>(t.type));
  if (!tt) return make_error("tensor '{}': type {} is not a GGUF tensor type", t.name, static_cast<uint32_t>(t.type));
  if (t.dims.empty() || t.dims.size() > kGgufMaxDims) {
    return make_error("tensor '{}': {} dims (expected 1 to {})", t.name, t.dims.size(), kGgufMaxDims);
  }
  uint64_t n = 1;
  for (size_t d = 0; d < t.dims.size(); ++d) {
    if (t.dims[d] == 0) return make_error("tensor '{}': dim {} is 0 (expected > 0)", t.name, d);
    if (__builtin_mul_overflow(n, t.dims[d], &n)) {
      return make_error("tensor '{}': element count overflows 64 bits", t.name);
    }
  }
  if (t.dims[0] % tt->block_elems != 0) {
    return make_error("tensor '{}': dim 0 ({}) is not a multiple of the {} block size {}", t.name, t.dims[0],
                      tt->name, tt->block_elems);
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n / tt->block_elems, uint64_t{tt->block_bytes}, &bytes)) {
    return make_error("tensor '{}': byte size overflows 64 bits", t.name);
  }
  return bytes;
}

}  // namespace

Result<GgufStreamWriter> GgufStreamWriter::create(
    const std::string& path, const std::vector<std::pair<std::string, GgufValue>>& metadata,
    std::vector<GgufTensorSpec> tensors) {
  GgufStreamWriter w;
  w.path_ = path;
  std::set<std::string_view> keys;
  for (const auto& [key, value] : metadata) {
    if (key.empty()) return make_error("{}: empty metadata key", path);
    if (!keys.insert(key).second) return make_error("{}: metadata key '{}' given twice", path, key);
    if (key == "general.alignment") {
      if (value.type != GgufValueType::UINT32) {
        return make_error("{}: general.alignment is {} (expected uint32)", path, value_type_name(value.type));
      }
      const uint64_t a = std::get<uint64_t>(value.v);
      if (a == 0 || (a & (a - 1)) != 0 || a > kGgufMaxAlignment) {
        return make_error("{}: general.alignment {} is not a power of two <= {}", path, a, kGgufMaxAlignment);
      }
      w.alignment_ = a;
    }
  }
  std::set<std::string_view> names;
  for (const GgufTensorSpec& t : tensors) {
    if (t.name.empty()) return make_error("{}: tensor {} has an empty name", path, w.sizes_.size());
    if (!names.insert(t.name).second) return make_error("{}: tensor '{}' given twice", path, t.name);
    Result<uint64_t> size = tensor_size(t);
    if (!size) return make_error("{}: {}", path, size.error().message);
    w.sizes_.push_back(*size);
  }
  w.tensors_ = std::move(tensors);

  std::vector<uint8_t> head;
  put_bytes(head, "GGUF", 4);
  put<uint32_t>(head, kVersion);
  put<uint64_t>(head, w.tensors_.size());
  put<uint64_t>(head, metadata.size());
  for (const auto& [key, value] : metadata) {
    put_string(head, key);
    put<uint32_t>(head, static_cast<uint32_t>(value.type));
    put_value(head, value);
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < w.tensors_.size(); ++i) {
    const GgufTensorSpec& t = w.tensors_[i];
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put<uint64_t>(head, d);
    put<uint32_t>(head, static_cast<uint32_t>(t.type));
    put<uint64_t>(head, offset);
    offset = align_up(offset + w.sizes_[i], w.alignment_);
  }
  head.resize(align_up(head.size(), w.alignment_), 0);

  KP_TRY(AtomicFile file, AtomicFile::create(path));
  w.file_.emplace(std::move(file));
  KP_TRY_STATUS(w.write_raw(head));
  // Zero-byte tensors do not exist (dims are > 0), so current_ starts on a
  // tensor with data, or at the end when there are none.
  return w;
}

GgufStreamWriter::GgufStreamWriter(GgufStreamWriter&& o) noexcept
    : path_(std::move(o.path_)),
      file_(std::move(o.file_)),
      tensors_(std::move(o.tensors_)),
      sizes_(std::move(o.sizes_)),
      alignment_(o.alignment_),
      current_(o.current_),
      written_(o.written_),
      finished_(o.finished_) {
  o.file_.reset();
}

Status GgufStreamWriter::write_raw(std::span<const uint8_t> bytes) { return file_->write(bytes); }

Status GgufStreamWriter::write_padding(uint64_t n) {
  static const uint8_t kZeros[256] = {};
  while (n > 0) {
    const uint64_t k = std::min<uint64_t>(n, sizeof kZeros);
    KP_TRY_STATUS(write_raw(std::span<const uint8_t>(kZeros, static_cast<size_t>(k))));
    n -= k;
  }
  return {};
}

Status GgufStreamWriter::append(std::span<const uint8_t> bytes) {
  KP_CHECK(file_.has_value() && !finished_, "append() on an open, unfinished GgufStreamWriter");
  while (!bytes.empty()) {
    if (current_ >= tensors_.size()) {
      return make_error("{}: {} bytes of tensor data past the last tensor", path_, bytes.size());
    }
    const uint64_t left = sizes_[current_] - written_;
    const size_t k = static_cast<size_t>(std::min<uint64_t>(left, bytes.size()));
    KP_TRY_STATUS(write_raw(bytes.first(k)));
    bytes = bytes.subspan(k);
    written_ += k;
    if (written_ == sizes_[current_]) {
      KP_TRY_STATUS(write_padding(align_up(written_, alignment_) - written_));
      ++current_;
      written_ = 0;
    }
  }
  return {};
}

Status GgufStreamWriter::finish() {
  KP_CHECK(file_.has_value() && !finished_, "finish() on an open, unfinished GgufStreamWriter");
  if (current_ < tensors_.size()) {
    return make_error("{}: tensor '{}' has {} of {} bytes; the file is incomplete", path_,
                      tensors_[current_].name, written_, sizes_[current_]);
  }
  const Status committed = file_->commit();
  file_.reset();
  KP_TRY_STATUS(committed);
  finished_ = true;
  return {};
}

}  // namespace kp::format
