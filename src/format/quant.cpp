// Dispatch of dequantize / quantize by type, the plain float formats and Q8_0.
// The K-quants live in quant_k_dequant.cpp and quant_k_quantize.cpp.
#include "format/quant.h"

#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/fp16.h"
#include "format/quant_blocks.h"
#include "format/quant_fit.h"

namespace kp::format {
namespace {

Status check_count(GgmlType type, int64_t n, std::string_view what) {
  const TypeTraits& tt = traits(type);
  if (n < 0 || n % tt.block_elems != 0) {
    return make_error("{} {}: {} elements is not a multiple of the block size {}", what, tt.name, n,
                      tt.block_elems);
  }
  return {};
}

}  // namespace

bool can_dequantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

bool can_quantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

Status dequantize(GgmlType type, const void* src, float* dst, int64_t n) {
  const std::optional<TypeTraits> tt = type_traits(static_cast<uint32_t>(type));
  if (!tt || !can_dequantize(type)) {
    return make_error("dequantize: type {} is not supported (F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K are)",
                      tt ? std::string(tt->name) : std::to_string(static_cast<uint32_t>(type)));
  }
  KP_TRY_STATUS(check_count(type, n, "dequantize"));
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); break;
    case GgmlType::F16: dequantize_f16(static_cast<const uint16_t*>(src), dst, n); break;
    case GgmlType::BF16: dequantize_bf16(static_cast<const uint16_t*>(src), dst, n); break;
    case GgmlType::Q8_0: dequantize_q8_0(src, dst, n); break;
    case GgmlType::Q4_K: dequantize_q4_k(src, dst, n); break;
    case GgmlType::Q5_K: dequantize_q5_k(src, dst, n); break;
    case GgmlType::Q6_K: dequantize_q6_k(src, dst, n); break;
    default: KP_CHECK(false, "can_dequantize covers every case");
  }
  return {};
}

Status quantize(GgmlType type, const float* src, void* dst, int64_t n) {
  const std::optional<TypeTraits> tt = type_traits(static_cast<uint32_t>(type));
  if (!tt || !can_quantize(type)) {
    return make_error("quantize: type {} is not a quantization target (F32, F16, BF16, Q8_0, Q4_K, Q6_K are)",
                      tt ? std::string(tt->name) : std::to_string(static_cast<uint32_t>(type)));
  }
  KP_TRY_STATUS(check_count(type, n, "quantize"));
  // Block formats have no encoding for inf or NaN; the float formats keep them.
  if (type == GgmlType::Q8_0 || type == GgmlType::Q4_K || type == GgmlType::Q6_K) {
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(src[i])) {
        return make_error("quantize {}: element {} is {} (only finite values can be quantized)", tt->name, i,
                          src[i]);
      }
    }
  }
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); break;
    case GgmlType::F16: quantize_f16(src, static_cast<uint16_t*>(dst), n); break;
    case GgmlType::BF16: quantize_bf16(src, static_cast<uint16_t*>(dst), n); break;
    case GgmlType::Q8_0: quantize_q8_0(src, dst, n); break;
    case GgmlType::Q4_K: quantize_q4_k(src, dst, n); break;
    case GgmlType::Q6_K: quantize_q6_k(src, dst, n); break;
    default: KP_CHECK(false, "can_quantize covers every case");
  }
  return {};
}

void dequantize_f16(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void dequantize_bf16(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void quantize_f16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

void quantize_bf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

// Q8_0: y[i] = d * qs[i], 32 weights per block.
void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  KP_CHECK(n % kQK8_0 == 0, "Q8_0 rows are whole blocks");
  const auto* blocks = static_cast<const BlockQ8_0*>(src);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float d = f16_to_f32(blocks[b].d);
    for (int i = 0; i < kQK8_0; ++i) dst[b * kQK8_0 + i] = d * static_cast<float>(blocks[b].qs[i]);
  }
}

// Q8_0: d = max|x| / 127 (as f16), q = nearest(x / d). Dividing by the stored
// f16 scale rather than the exact one makes q the best level for the scale the
// reader will use; the clamp covers an f16 d that rounded down.
void quantize_q8_0(const float* src, void* dst, int64_t n) {
  KP_CHECK(n % kQK8_0 == 0, "Q8_0 rows are whole blocks");
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* x = src + b * kQK8_0;
    float amax = 0.0f;
    for (int i = 0; i < kQK8_0; ++i) amax = std::max(amax, std::fabs(x[i]));
    BlockQ8_0& out = blocks[b];
    out.d = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(out.d);
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < kQK8_0; ++i) {
      out.qs[i] = static_cast<int8_t>(nearest_level(x[i] * id, -127.0f, 127.0f));
    }
  }
}

}  // namespace kp::format
