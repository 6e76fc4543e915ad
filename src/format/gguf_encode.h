// Encoding GGUF's on-disk values into a byte buffer: the primitives both
// writers (GgufWriter, GgufStreamWriter) share. Little-endian, as GGUF is.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "format/gguf.h"

namespace kp::format::gguf_encode {

void put_bytes(std::vector<uint8_t>& out, const void* p, size_t n);

template <class T>
void put(std::vector<uint8_t>& out, T x) {
  static_assert(std::endian::native == std::endian::little, "GGUF is written by memcpy on a little-endian host");
  put_bytes(out, &x, sizeof(T));
}

// uint64 length, then the bytes (no terminator).
void put_string(std::vector<uint8_t>& out, std::string_view s);

// The payload of `v` (its type tag is written by the caller). Values come from
// GgufValue's factories or a parsed file, so their storage matches their type;
// an array whose elements are not of its element type is a bug (KP_CHECK).
void put_value(std::vector<uint8_t>& out, const GgufValue& v);

inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace kp::format::gguf_encode
