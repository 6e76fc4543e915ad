// GgufValue: typed accessors and factories, and the value type names.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "core/check.h"
#include "format/gguf.h"

namespace kp::format {

std::string value_type_name(GgufValueType t) {
  switch (t) {
    case GgufValueType::UINT8: return "uint8";
    case GgufValueType::INT8: return "int8";
    case GgufValueType::UINT16: return "uint16";
    case GgufValueType::INT16: return "int16";
    case GgufValueType::UINT32: return "uint32";
    case GgufValueType::INT32: return "int32";
    case GgufValueType::FLOAT32: return "float32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "string";
    case GgufValueType::ARRAY: return "array";
    case GgufValueType::UINT64: return "uint64";
    case GgufValueType::INT64: return "int64";
    case GgufValueType::FLOAT64: return "float64";
  }
  return fmt::format("type {}", static_cast<uint32_t>(t));
}

bool is_value_type(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

namespace {

bool is_unsigned_type(GgufValueType t) {
  return t == GgufValueType::UINT8 || t == GgufValueType::UINT16 || t == GgufValueType::UINT32 ||
         t == GgufValueType::UINT64;
}

bool is_signed_type(GgufValueType t) {
  return t == GgufValueType::INT8 || t == GgufValueType::INT16 || t == GgufValueType::INT32 ||
         t == GgufValueType::INT64;
}

Error wrong_type(std::string_view key, std::string_view expected, GgufValueType got) {
  return make_error("key '{}': expected {}, got {}", key, expected, value_type_name(got));
}

}  // namespace

bool GgufValue::is_integer() const { return is_unsigned_type(type) || is_signed_type(type); }

bool GgufValue::is_float() const {
  return type == GgufValueType::FLOAT32 || type == GgufValueType::FLOAT64;
}

Result<uint64_t> GgufValue::as_u64(std::string_view key) const {
  if (is_unsigned_type(type)) return std::get<uint64_t>(v);
  if (is_signed_type(type)) {
    const int64_t x = std::get<int64_t>(v);
    if (x < 0) return make_error("key '{}': expected a non-negative integer, got {}", key, x);
    return static_cast<uint64_t>(x);
  }
  return wrong_type(key, "an integer", type);
}

Result<int64_t> GgufValue::as_i64(std::string_view key) const {
  if (is_signed_type(type)) return std::get<int64_t>(v);
  if (is_unsigned_type(type)) {
    const uint64_t x = std::get<uint64_t>(v);
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return make_error("key '{}': {} does not fit in a signed 64-bit integer", key, x);
    }
    return static_cast<int64_t>(x);
  }
  return wrong_type(key, "an integer", type);
}

Result<double> GgufValue::as_f64(std::string_view key) const {
  if (is_float()) return std::get<double>(v);
  if (is_unsigned_type(type)) return static_cast<double>(std::get<uint64_t>(v));
  if (is_signed_type(type)) return static_cast<double>(std::get<int64_t>(v));
  return wrong_type(key, "a number", type);
}

Result<bool> GgufValue::as_bool(std::string_view key) const {
  if (type == GgufValueType::BOOL) return std::get<bool>(v);
  return wrong_type(key, "a bool", type);
}

Result<std::string> GgufValue::as_string(std::string_view key) const {
  if (type == GgufValueType::STRING) return std::get<std::string>(v);
  return wrong_type(key, "a string", type);
}

const GgufArray* GgufValue::as_array() const {
  if (type != GgufValueType::ARRAY) return nullptr;
  return std::get<std::shared_ptr<GgufArray>>(v).get();
}

namespace {
GgufValue make_unsigned(GgufValueType t, uint64_t x) {
  GgufValue g;
  g.type = t;
  g.v = x;
  return g;
}
GgufValue make_signed(GgufValueType t, int64_t x) {
  GgufValue g;
  g.type = t;
  g.v = x;
  return g;
}
GgufValue make_float(GgufValueType t, double x) {
  GgufValue g;
  g.type = t;
  g.v = x;
  return g;
}
}  // namespace

GgufValue GgufValue::u8(uint8_t x) { return make_unsigned(GgufValueType::UINT8, x); }
GgufValue GgufValue::i8(int8_t x) { return make_signed(GgufValueType::INT8, x); }
GgufValue GgufValue::u16(uint16_t x) { return make_unsigned(GgufValueType::UINT16, x); }
GgufValue GgufValue::i16(int16_t x) { return make_signed(GgufValueType::INT16, x); }
GgufValue GgufValue::u32(uint32_t x) { return make_unsigned(GgufValueType::UINT32, x); }
GgufValue GgufValue::i32(int32_t x) { return make_signed(GgufValueType::INT32, x); }
GgufValue GgufValue::u64(uint64_t x) { return make_unsigned(GgufValueType::UINT64, x); }
GgufValue GgufValue::i64(int64_t x) { return make_signed(GgufValueType::INT64, x); }
GgufValue GgufValue::f32(float x) { return make_float(GgufValueType::FLOAT32, x); }
GgufValue GgufValue::f64(double x) { return make_float(GgufValueType::FLOAT64, x); }

GgufValue GgufValue::boolean(bool x) {
  GgufValue g;
  g.type = GgufValueType::BOOL;
  g.v = x;
  return g;
}

GgufValue GgufValue::string(std::string s) {
  GgufValue g;
  g.type = GgufValueType::STRING;
  g.v = std::move(s);
  return g;
}

GgufValue GgufValue::array(GgufValueType elem_type, std::vector<GgufValue> elems) {
  for (const GgufValue& e : elems) {
    KP_CHECK(e.type == elem_type, "every element of a GGUF array has the array's element type");
  }
  auto arr = std::make_shared<GgufArray>();
  arr->elem_type = elem_type;
  arr->elems = std::move(elems);
  GgufValue g;
  g.type = GgufValueType::ARRAY;
  g.v = std::move(arr);
  return g;
}

}  // namespace kp::format
