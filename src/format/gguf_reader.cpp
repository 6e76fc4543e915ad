// GGUF reader. Layout (little-endian, versions 2 and 3):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv
//   n_kv x    { string key, u32 value_type, value }
//   n_tensors x { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
//   padding to general.alignment (default 32), then the data section;
//   each tensor's data at data_offset + offset.
// string = u64 length + bytes; array = u32 elem_type, u64 count, elements.
//
// Nothing read from the file is trusted: each count is compared with the bytes
// that remain before anything is reserved (every element of every kind takes
// at least one byte, so no count can make us allocate more than a small
// multiple of the file size), and every error names the file, the field and
// what was expected.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "format/gguf.h"

namespace kp::format {
namespace {

constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;  // magic, version, n_tensors, n_kv
// Smallest encodings, used to bound counts before reserving:
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;          // empty-name string, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name, n_dims, 1 dim, type, offset

// Where in the file we are, for error messages: "key 4 'tokenizer.ggml.tokens' element 17".
struct Field {
  std::string prefix;              // "key 4 'name'" or "tensor 2 'name'"
  std::vector<uint64_t> elements;  // array element path while reading nested arrays

  std::string str() const {
    std::string s = prefix;
    for (uint64_t e : elements) s += fmt::format(" element {}", e);
    return s;
  }
};

// Escapes a name taken from the file so that a hostile name cannot forge lines
// or terminal sequences in an error message; long names are cut.
std::string printable(std::string_view s) {
  std::string out;
  const size_t n = std::min<size_t>(s.size(), 96);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else if (c >= 0x80) {
      out += static_cast<char>(c);  // UTF-8 bytes pass through
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (s.size() > n) out += fmt::format("...({} bytes)", s.size());
  return out;
}

uint64_t fixed_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    case GgufValueType::STRING: case GgufValueType::ARRAY: return 0;
  }
  return 0;
}

// Smallest encoding of one value of type t: bounds array counts.
uint64_t min_value_bytes(GgufValueType t) {
  if (t == GgufValueType::STRING) return 8;      // u64 length
  if (t == GgufValueType::ARRAY) return 4 + 8;   // u32 elem_type, u64 count
  return fixed_size(t);
}

class Reader {
 public:
  Reader(const std::string& file, std::span<const uint8_t> bytes) : file_(file), bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  // Counts `n` more array elements; false once they pass kGgufMaxMetadataValues.
  bool add_array_values(uint64_t n) {
    if (n > kGgufMaxMetadataValues - array_values_) return false;
    array_values_ += n;
    return true;
  }

  template <class... Args>
  Error fail(const Field& at, fmt::format_string<Args...> f, Args&&... args) const {
    return Error{fmt::format("{}: {}: {}", file_, at.str(),
                             fmt::format(f, std::forward<Args>(args)...))};
  }

  Status need(const Field& at, std::string_view what, uint64_t n) const {
    if (n > remaining()) {
      return fail(at, "truncated: {} needs {} bytes at offset {}, but the file ends at {}", what,
                  n, pos_, bytes_.size());
    }
    return {};
  }

  template <class T>
  Result<T> scalar(const Field& at, std::string_view what) {
    KP_TRY_STATUS(need(at, what, sizeof(T)));
    T x;
    std::memcpy(&x, bytes_.data() + pos_, sizeof(T));  // the host is little-endian, as GGUF
    pos_ += sizeof(T);
    return x;
  }

  Result<std::string> string(const Field& at, std::string_view what) {
    KP_TRY(const uint64_t len, scalar<uint64_t>(at, fmt::format("{} length", what)));
    if (len > remaining()) {
      return fail(at, "{} length {} exceeds the {} bytes left in the file", what, len, remaining());
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

 private:
  const std::string& file_;
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
  uint64_t array_values_ = 0;  // array elements so far, bounded by kGgufMaxMetadataValues
};

static_assert(std::endian::native == std::endian::little, "GGUF is read by memcpy on a little-endian host");

Result<GgufValue> read_value(Reader& r, Field& at, GgufValueType type, int depth);

Result<GgufValue> read_array(Reader& r, Field& at, int depth) {
  if (depth >= kGgufMaxArrayDepth) {
    return r.fail(at, "arrays nested deeper than {} levels", kGgufMaxArrayDepth);
  }
  KP_TRY(const uint32_t raw_elem, r.scalar<uint32_t>(at, "array element type"));
  if (!is_value_type(raw_elem)) {
    return r.fail(at, "array element type {} is not a GGUF value type (expected 0 to 12)", raw_elem);
  }
  const auto elem_type = static_cast<GgufValueType>(raw_elem);
  KP_TRY(const uint64_t count, r.scalar<uint64_t>(at, "array count"));
  const uint64_t min_bytes = min_value_bytes(elem_type);
  if (count > r.remaining() / min_bytes) {
    return r.fail(at, "array count {} of {} exceeds what the {} bytes left in the file can hold", count,
                  value_type_name(elem_type), r.remaining());
  }
  if (!r.add_array_values(count)) {
    return r.fail(at, "array count {} takes the metadata past the limit of {} array elements in all", count,
                  kGgufMaxMetadataValues);
  }
  std::vector<GgufValue> elems;
  elems.reserve(static_cast<size_t>(count));
  at.elements.push_back(0);
  for (uint64_t i = 0; i < count; ++i) {
    at.elements.back() = i;
    KP_TRY(GgufValue e, read_value(r, at, elem_type, depth + 1));
    elems.push_back(std::move(e));
  }
  at.elements.pop_back();
  auto arr = std::make_shared<GgufArray>();
  arr->elem_type = elem_type;
  arr->elems = std::move(elems);
  GgufValue g;
  g.type = GgufValueType::ARRAY;
  g.v = std::move(arr);
  return g;
}

template <class Stored, class T>
Result<GgufValue> read_scalar(Reader& r, const Field& at, GgufValueType type, std::string_view what) {
  KP_TRY(const T x, r.scalar<T>(at, what));
  GgufValue g;
  g.type = type;
  g.v = static_cast<Stored>(x);
  return g;
}

// depth: number of arrays enclosing this value.
Result<GgufValue> read_value(Reader& r, Field& at, GgufValueType type, int depth) {
  using T = GgufValueType;
  switch (type) {
    case T::UINT8: return read_scalar<uint64_t, uint8_t>(r, at, type, "uint8 value");
    case T::UINT16: return read_scalar<uint64_t, uint16_t>(r, at, type, "uint16 value");
    case T::UINT32: return read_scalar<uint64_t, uint32_t>(r, at, type, "uint32 value");
    case T::UINT64: return read_scalar<uint64_t, uint64_t>(r, at, type, "uint64 value");
    case T::INT8: return read_scalar<int64_t, int8_t>(r, at, type, "int8 value");
    case T::INT16: return read_scalar<int64_t, int16_t>(r, at, type, "int16 value");
    case T::INT32: return read_scalar<int64_t, int32_t>(r, at, type, "int32 value");
    case T::INT64: return read_scalar<int64_t, int64_t>(r, at, type, "int64 value");
    case T::FLOAT32: return read_scalar<double, float>(r, at, type, "float32 value");
    case T::FLOAT64: return read_scalar<double, double>(r, at, type, "float64 value");
    case T::BOOL: {
      KP_TRY(const uint8_t b, r.scalar<uint8_t>(at, "bool value"));
      if (b > 1) return r.fail(at, "bool value {} is neither 0 nor 1", b);
      return GgufValue::boolean(b == 1);
    }
    case T::STRING: {
      KP_TRY(std::string s, r.string(at, "string"));
      return GgufValue::string(std::move(s));
    }
    case T::ARRAY: return read_array(r, at, depth);
  }
  return r.fail(at, "value type {} is not a GGUF value type", static_cast<uint32_t>(type));
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

Result<GgufFile> GgufFile::open(const std::string& path) {
  KP_TRY(std::shared_ptr<const MappedFile> f, MappedFile::open(path));
  return parse(std::move(f));
}

Result<GgufFile> GgufFile::parse(std::shared_ptr<const MappedFile> bytes) {
  GgufFile g;
  g.file_ = std::move(bytes);
  const std::string& name = g.file_->name();
  Reader r(name, g.file_->bytes());
  Field header{"header", {}};

  // Header: magic, version, counts.
  if (g.file_->size() < 4) {
    return make_error("{}: not a GGUF file: {} bytes, too short for the magic 'GGUF'", name,
                      g.file_->size());
  }
  if (std::memcmp(g.file_->data(), "GGUF", 4) != 0) {
    const std::string_view magic(reinterpret_cast<const char*>(g.file_->data()), 4);
    return make_error("{}: not a GGUF file: magic '{}', expected 'GGUF'", name, printable(magic));
  }
  if (g.file_->size() < kHeaderBytes) {
    return make_error("{}: truncated header: {} bytes, a GGUF header needs {}", name,
                      g.file_->size(), kHeaderBytes);
  }
  (void)r.scalar<uint32_t>(header, "magic").value();
  const uint32_t version = r.scalar<uint32_t>(header, "version").value();
  if (version == 1) {
    return make_error("{}: GGUF version 1 is not supported (only versions 2 and 3; "
                      "re-convert the model with a current converter)", name);
  }
  if (version != 2 && version != 3) {
    if ((version & 0xffffu) == 0 && (version >> 24) >= 1 && (version >> 24) <= 3) {
      return make_error("{}: big-endian GGUF is not supported (version field 0x{:08x})", name, version);
    }
    return make_error("{}: GGUF version {} is not supported (expected 2 or 3)", name, version);
  }
  g.version_ = version;
  const uint64_t n_tensors = r.scalar<uint64_t>(header, "tensor count").value();
  const uint64_t n_kv = r.scalar<uint64_t>(header, "metadata count").value();
  if (n_tensors > r.remaining() / kMinTensorInfoBytes) {
    return r.fail(header, "tensor count {} exceeds what the {} bytes after the header can hold "
                  "(each tensor info takes at least {} bytes)", n_tensors, r.remaining(),
                  kMinTensorInfoBytes);
  }
  if (n_kv > r.remaining() / kMinKvBytes) {
    return r.fail(header, "metadata count {} exceeds what the {} bytes after the header can hold "
                  "(each key-value takes at least {} bytes)", n_kv, r.remaining(), kMinKvBytes);
  }

  // Metadata.
  g.kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    Field at{fmt::format("key {}", i), {}};
    KP_TRY(std::string key, r.string(at, "key name"));
    if (key.empty()) return r.fail(at, "empty key name");
    at.prefix = fmt::format("key {} '{}'", i, printable(key));
    if (auto it = g.kv_index_.find(key); it != g.kv_index_.end()) {
      return r.fail(at, "duplicate key (first defined as key {})", it->second);
    }
    KP_TRY(const uint32_t raw_type, r.scalar<uint32_t>(at, "value type"));
    if (!is_value_type(raw_type)) {
      return r.fail(at, "value type {} is not a GGUF value type (expected 0 to 12)", raw_type);
    }
    KP_TRY(GgufValue value, read_value(r, at, static_cast<GgufValueType>(raw_type), 0));
    g.kv_index_.emplace(key, g.kv_.size());
    g.kv_.emplace_back(std::move(key), std::move(value));
  }

  // general.alignment: a nonzero power of two, bounded.
  if (const GgufValue* a = g.find("general.alignment"); a != nullptr) {
    Result<uint64_t> a64 = a->as_u64("general.alignment");
    if (!a64) return make_error("{}: {}", name, a64.error().message);
    const uint64_t alignment = *a64;
    if (alignment == 0) {
      return make_error("{}: key 'general.alignment': 0 is invalid (expected a nonzero power of two)",
                        name);
    }
    if ((alignment & (alignment - 1)) != 0) {
      return make_error("{}: key 'general.alignment': {} is not a power of two", name, alignment);
    }
    if (alignment > kGgufMaxAlignment) {
      return make_error("{}: key 'general.alignment': {} exceeds the limit of {}", name, alignment,
                        kGgufMaxAlignment);
    }
    g.alignment_ = alignment;
  }

  // Tensor infos.
  g.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Field at{fmt::format("tensor {}", i), {}};
    GgufTensorInfo t;
    KP_TRY(t.name, r.string(at, "name"));
    if (t.name.empty()) return r.fail(at, "empty tensor name");
    at.prefix = fmt::format("tensor {} '{}'", i, printable(t.name));
    if (auto it = g.tensor_index_.find(t.name); it != g.tensor_index_.end()) {
      return r.fail(at, "duplicate tensor name (first defined as tensor {})", it->second);
    }
    KP_TRY(const uint32_t n_dims, r.scalar<uint32_t>(at, "n_dims"));
    if (n_dims < 1 || n_dims > kGgufMaxDims) {
      return r.fail(at, "n_dims {} is out of range (expected 1 to {})", n_dims, kGgufMaxDims);
    }
    t.dims.resize(n_dims);
    t.n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      KP_TRY(t.dims[d], r.scalar<uint64_t>(at, fmt::format("dim {}", d)));
      if (t.dims[d] == 0) return r.fail(at, "dim {} is 0 (expected > 0)", d);
      if (__builtin_mul_overflow(t.n_elements, t.dims[d], &t.n_elements)) {
        return r.fail(at, "element count of dims {} overflows 64 bits", fmt::join(t.dims, " x "));
      }
    }
    KP_TRY(const uint32_t raw_type, r.scalar<uint32_t>(at, "type"));
    const std::optional<TypeTraits> tt = type_traits(raw_type);
    if (!tt) return r.fail(at, "type {} is not a GGUF tensor type", raw_type);
    t.type = static_cast<GgmlType>(raw_type);
    if (t.dims[0] % tt->block_elems != 0) {
      return r.fail(at, "dim 0 ({}) is not a multiple of the {} block size {}", t.dims[0], tt->name,
                    tt->block_elems);
    }
    if (__builtin_mul_overflow(t.n_elements / tt->block_elems, uint64_t{tt->block_bytes}, &t.n_bytes)) {
      return r.fail(at, "byte size of {} {} elements overflows 64 bits", t.n_elements, tt->name);
    }
    KP_TRY(t.offset, r.scalar<uint64_t>(at, "offset"));
    if (t.offset % g.alignment_ != 0) {
      return r.fail(at, "offset {} is not a multiple of the alignment {}", t.offset, g.alignment_);
    }
    g.tensor_index_.emplace(t.name, g.tensors_.size());
    g.tensors_.push_back(std::move(t));
  }

  // Data section: at the first aligned offset after the infos. A file without
  // tensors may end before that padding.
  g.data_offset_ = align_up(r.pos(), g.alignment_);
  if (!g.tensors_.empty() && g.data_offset_ >= g.file_->size()) {
    return make_error("{}: truncated: the data section of {} tensors starts at offset {}, "
                      "but the file ends at {}", name, g.tensors_.size(), g.data_offset_,
                      g.file_->size());
  }
  const uint64_t data_size = g.data_size();
  for (size_t i = 0; i < g.tensors_.size(); ++i) {
    GgufTensorInfo& t = g.tensors_[i];
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return make_error("{}: tensor {} '{}': data [{}, {}) lies outside the data section ({} bytes)",
                        name, i, printable(t.name), t.offset,
                        t.offset > std::numeric_limits<uint64_t>::max() - t.n_bytes
                            ? std::numeric_limits<uint64_t>::max() : t.offset + t.n_bytes,
                        data_size);
    }
    t.data = g.file_->data() + g.data_offset_ + t.offset;
  }

  // No two tensors may share bytes: sort by offset and compare neighbours.
  std::vector<size_t> order(g.tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return g.tensors_[a].offset != g.tensors_[b].offset ? g.tensors_[a].offset < g.tensors_[b].offset
                                                        : a < b;
  });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = g.tensors_[order[k - 1]];
    const GgufTensorInfo& cur = g.tensors_[order[k]];
    if (prev.offset + prev.n_bytes > cur.offset) {
      const size_t hi = std::max(order[k - 1], order[k]);
      const size_t lo = std::min(order[k - 1], order[k]);
      const GgufTensorInfo& a = g.tensors_[hi];
      const GgufTensorInfo& b = g.tensors_[lo];
      return make_error("{}: tensor {} '{}': data [{}, {}) overlaps tensor {} '{}' [{}, {})", name, hi,
                        printable(a.name), a.offset, a.offset + a.n_bytes, lo, printable(b.name),
                        b.offset, b.offset + b.n_bytes);
    }
  }
  return g;
}

}  // namespace kp::format
