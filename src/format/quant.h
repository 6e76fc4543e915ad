// CPU dequantization and quantization of the formats kpath reads and writes.
#pragma once

#include <cstdint>
#include <span>

#include "core/result.h"
#include "format/ggml_type.h"

namespace kp::format {

// Dequantizes n elements of `type` starting at `src` into dst[0..n).
// n must be a multiple of the type's block size. Supported: F32, F16, BF16,
// Q8_0, Q4_K, Q5_K, Q6_K. Returns an error naming the type otherwise.
Status dequantize(GgmlType type, const void* src, float* dst, int64_t n);

// Quantizes n floats into `dst` (row_bytes(type, n) bytes). Supported targets:
// F32, F16, BF16, Q8_0, Q4_K, Q6_K.
Status quantize(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace kp::format
