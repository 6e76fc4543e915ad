// CPU dequantization and quantization of the formats kpath reads and writes.
//
// Dequantization is bit-exact with ggml's reference (dequantize_row_* in
// ggml-quants.c, and gguf-py's gguf.quants): the same float operations in the
// same order. Quantization targets the same block layouts (format/quant_blocks.h);
// the K-quants search each sub-block's scale (and offset) for the least weighted
// squared error, as ggml's reference quantizers do, so files written here are
// of the same quality as llama-quantize's (tests/format/quant_roundtrip_test.cpp,
// tests/model/quantize_model_test.cpp).
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
// F32, F16, BF16, Q8_0, Q4_K, Q6_K. n must be a multiple of the block size.
// Deterministic: the same input gives the same bytes.
Status quantize(GgmlType type, const float* src, void* dst, int64_t n);

// Whether dequantize / quantize accept `type`.
bool can_dequantize(GgmlType type);
bool can_quantize(GgmlType type);

// Per-format entry points; n is a multiple of the format's block size (checked
// with KP_CHECK: callers have validated it). Defined in quant.cpp (plain types,
// Q8_0), quant_k_dequant.cpp and quant_k_quantize.cpp.
void dequantize_f16(const uint16_t* src, float* dst, int64_t n);
void dequantize_bf16(const uint16_t* src, float* dst, int64_t n);
void dequantize_q8_0(const void* src, float* dst, int64_t n);
void dequantize_q4_k(const void* src, float* dst, int64_t n);
void dequantize_q5_k(const void* src, float* dst, int64_t n);
void dequantize_q6_k(const void* src, float* dst, int64_t n);

void quantize_f16(const float* src, uint16_t* dst, int64_t n);
void quantize_bf16(const float* src, uint16_t* dst, int64_t n);
void quantize_q8_0(const float* src, void* dst, int64_t n);
void quantize_q4_k(const float* src, void* dst, int64_t n);
void quantize_q6_k(const float* src, void* dst, int64_t n);

}  // namespace kp::format
