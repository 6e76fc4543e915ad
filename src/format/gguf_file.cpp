// GgufFile lookups: metadata by key, tensors by name. Errors are prefixed
// with the file's name ("model.gguf: key 'x': expected a string, got uint32").
#include <optional>

#include "format/gguf.h"

namespace kp::format {
namespace {

template <class T>
Result<T> prefixed(const std::string& file, Result<T> r) {
  if (r) return r;
  return make_error("{}: {}", file, r.error().message);
}

}  // namespace

const GgufValue* GgufFile::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::tensor(std::string_view tensor_name) const {
  const auto it = tensor_index_.find(tensor_name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// The value of `key` through `accessor`; `fallback` (when given) if absent.
template <class T>
Result<T> lookup(const GgufFile& f, std::string_view key, std::optional<T> fallback,
                 Result<T> (GgufValue::*accessor)(std::string_view) const) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) {
    if (fallback) return *fallback;
    return make_error("{}: missing key '{}'", f.name(), key);
  }
  return prefixed(f.name(), (v->*accessor)(key));
}

}  // namespace

Result<uint64_t> GgufFile::get_u64(std::string_view key) const {
  return lookup<uint64_t>(*this, key, std::nullopt, &GgufValue::as_u64);
}
Result<double> GgufFile::get_f64(std::string_view key) const {
  return lookup<double>(*this, key, std::nullopt, &GgufValue::as_f64);
}
Result<std::string> GgufFile::get_string(std::string_view key) const {
  return lookup<std::string>(*this, key, std::nullopt, &GgufValue::as_string);
}
Result<bool> GgufFile::get_bool(std::string_view key) const {
  return lookup<bool>(*this, key, std::nullopt, &GgufValue::as_bool);
}
Result<uint64_t> GgufFile::get_u64_or(std::string_view key, uint64_t fallback) const {
  return lookup<uint64_t>(*this, key, fallback, &GgufValue::as_u64);
}
Result<double> GgufFile::get_f64_or(std::string_view key, double fallback) const {
  return lookup<double>(*this, key, fallback, &GgufValue::as_f64);
}
Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return lookup<bool>(*this, key, fallback, &GgufValue::as_bool);
}

}  // namespace kp::format
