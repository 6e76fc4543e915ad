#include "format/gguf_encode.h"

#include <cstring>

#include "core/check.h"

namespace kp::format::gguf_encode {

void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}

void put_string(std::vector<uint8_t>& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}

void put_value(std::vector<uint8_t>& out, const GgufValue& v) {
  using T = GgufValueType;
  switch (v.type) {
    case T::UINT8: put<uint8_t>(out, static_cast<uint8_t>(std::get<uint64_t>(v.v))); return;
    case T::UINT16: put<uint16_t>(out, static_cast<uint16_t>(std::get<uint64_t>(v.v))); return;
    case T::UINT32: put<uint32_t>(out, static_cast<uint32_t>(std::get<uint64_t>(v.v))); return;
    case T::UINT64: put<uint64_t>(out, std::get<uint64_t>(v.v)); return;
    case T::INT8: put<int8_t>(out, static_cast<int8_t>(std::get<int64_t>(v.v))); return;
    case T::INT16: put<int16_t>(out, static_cast<int16_t>(std::get<int64_t>(v.v))); return;
    case T::INT32: put<int32_t>(out, static_cast<int32_t>(std::get<int64_t>(v.v))); return;
    case T::INT64: put<int64_t>(out, std::get<int64_t>(v.v)); return;
    case T::FLOAT32: put<float>(out, static_cast<float>(std::get<double>(v.v))); return;
    case T::FLOAT64: put<double>(out, std::get<double>(v.v)); return;
    case T::BOOL: put<uint8_t>(out, std::get<bool>(v.v) ? 1 : 0); return;
    case T::STRING: put_string(out, std::get<std::string>(v.v)); return;
    case T::ARRAY: {
      const GgufArray* arr = v.as_array();
      KP_CHECK(arr != nullptr, "an ARRAY value holds an array");
      put<uint32_t>(out, static_cast<uint32_t>(arr->elem_type));
      put<uint64_t>(out, arr->elems.size());
      for (const GgufValue& e : arr->elems) {
        KP_CHECK(e.type == arr->elem_type, "array elements have the array's element type");
        put_value(out, e);
      }
      return;
    }
  }
  KP_CHECK(false, "GGUF value type is one of the 13 defined types");
}

}  // namespace kp::format::gguf_encode
