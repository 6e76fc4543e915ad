// Quantization to Q4_K and Q6_K (256 weights per block).
//
// Two stages per block, as in ggml's reference quantizers:
//  1. each sub-block gets the float scale (and offset) of least weighted squared
//     error (quant_fit.h);
//  2. those floats are themselves quantized against one f16 super-block scale
//     (6-bit scales and mins for Q4_K, int8 scales for Q6_K), and every weight
//     takes its nearest level under the scales the reader will actually use.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/fp16.h"
#include "format/quant.h"
#include "format/quant_blocks.h"
#include "format/quant_fit.h"

namespace kp::format {
namespace {

// Importance of each weight in a Q4_K sub-block: the sub-block's RMS plus the
// weight's magnitude, so that large weights count more without letting the
// few largest decide alone.
void q4_k_importance(const float* x, float* w, int n) {
  float sum_x2 = 0.0f;
  for (int i = 0; i < n; ++i) sum_x2 += x[i] * x[i];
  const float rms = std::sqrt(sum_x2 / static_cast<float>(n));
  for (int i = 0; i < n; ++i) w[i] = rms + std::fabs(x[i]);
}

// Importance in a Q6_K sub-block: x^2, the error relative to each weight's
// own size (at 6 bits the small weights are well resolved anyway).
void q6_k_importance(const float* x, float* w, int n) {
  for (int i = 0; i < n; ++i) w[i] = x[i] * x[i];
}

void quantize_block_q4_k(const float* x, BlockQ4_K& out) {
  constexpr int kSub = 32, kNsub = kQK_K / kSub;
  float scales[kNsub], mins[kNsub], w[kSub];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int j = 0; j < kNsub; ++j) {
    q4_k_importance(x + kSub * j, w, kSub);
    const AffineFit fit = fit_affine(x + kSub * j, w, kSub, 15);
    scales[j] = fit.scale;
    mins[j] = -fit.offset;
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  // Super-block scales; the 6-bit sub-block values are rounded against the
  // stored f16 values, which is what dequantization multiplies by.
  out.d = f32_to_f16(max_scale / 63.0f);
  out.dmin = f32_to_f16(max_min / 63.0f);
  const float d = f16_to_f32(out.d), dmin = f16_to_f32(out.dmin);
  uint8_t sc[kNsub], m[kNsub];
  for (int j = 0; j < kNsub; ++j) {
    sc[j] = d > 0.0f ? static_cast<uint8_t>(nearest_level(scales[j] / d, 0.0f, 63.0f)) : 0;
    m[j] = dmin > 0.0f ? static_cast<uint8_t>(nearest_level(mins[j] / dmin, 0.0f, 63.0f)) : 0;
  }
  // Packing, the inverse of k_scale_min (quant_blocks.h).
  std::memset(out.scales, 0, sizeof out.scales);
  for (int j = 0; j < 4; ++j) {
    out.scales[j] = sc[j];
    out.scales[j + 4] = m[j];
  }
  for (int j = 4; j < kNsub; ++j) {
    out.scales[j + 4] = static_cast<uint8_t>((sc[j] & 0x0f) | ((m[j] & 0x0f) << 4));
    out.scales[j - 4] = static_cast<uint8_t>(out.scales[j - 4] | ((sc[j] >> 4) << 6));
    out.scales[j] = static_cast<uint8_t>(out.scales[j] | ((m[j] >> 4) << 6));
  }
  // Levels under the quantized scales: y = (d * sc) * q - dmin * m.
  uint8_t level[kQK_K];
  for (int j = 0; j < kNsub; ++j) {
    const float step = d * sc[j], shift = dmin * m[j];
    const float inv = step > 0.0f ? 1.0f / step : 0.0f;
    for (int i = 0; i < kSub; ++i) {
      const float v = (x[kSub * j + i] + shift) * inv;
      level[kSub * j + i] = static_cast<uint8_t>(nearest_level(v, 0.0f, 15.0f));
    }
  }
  for (int g = 0; g < 4; ++g) {
    for (int l = 0; l < 32; ++l) {
      out.qs[32 * g + l] = static_cast<uint8_t>(level[64 * g + l] | (level[64 * g + 32 + l] << 4));
    }
  }
}

void quantize_block_q6_k(const float* x, BlockQ6_K& out) {
  constexpr int kSub = 16, kNsub = kQK_K / kSub;
  float scales[kNsub], w[kSub];
  float max_abs = 0.0f, max_scale = 0.0f;
  for (int j = 0; j < kNsub; ++j) {
    q6_k_importance(x + kSub * j, w, kSub);
    scales[j] = fit_symmetric(x + kSub * j, w, kSub, 32);
    if (std::fabs(scales[j]) > max_abs) {
      max_abs = std::fabs(scales[j]);
      max_scale = scales[j];
    }
  }
  std::memset(&out, 0, sizeof out);
  // The largest scale goes to int8 -128 (the sign of d absorbs its sign).
  out.d = f32_to_f16(max_scale / -128.0f);
  const float d = f16_to_f32(out.d);
  if (max_abs == 0.0f || d == 0.0f) return;  // all-zero block: d = 0, every output 0
  for (int j = 0; j < kNsub; ++j) {
    out.scales[j] = static_cast<int8_t>(nearest_level(scales[j] / d, -128.0f, 127.0f));
  }
  uint8_t level[kQK_K];  // q + 32, 0..63
  for (int j = 0; j < kNsub; ++j) {
    const float step = d * out.scales[j];
    const float inv = step != 0.0f ? 1.0f / step : 0.0f;
    for (int i = 0; i < kSub; ++i) {
      level[kSub * j + i] = static_cast<uint8_t>(nearest_level(x[kSub * j + i] * inv, -32.0f, 31.0f) + 32.0f);
    }
  }
  // Packing, the inverse of dequantize_q6_k's layout.
  for (int h = 0; h < 2; ++h) {
    const uint8_t* lv = level + 128 * h;
    uint8_t* ql = out.ql + 64 * h;
    uint8_t* qh = out.qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      const int l0 = lv[l], l1 = lv[l + 32], l2 = lv[l + 64], l3 = lv[l + 96];
      ql[l] = static_cast<uint8_t>((l0 & 0x0f) | ((l2 & 0x0f) << 4));
      ql[l + 32] = static_cast<uint8_t>((l1 & 0x0f) | ((l3 & 0x0f) << 4));
      qh[l] = static_cast<uint8_t>((l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6));
    }
  }
}

}  // namespace

void quantize_q4_k(const float* src, void* dst, int64_t n) {
  KP_CHECK(n % kQK_K == 0, "Q4_K rows are whole blocks");
  auto* blocks = static_cast<BlockQ4_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b) quantize_block_q4_k(src + b * kQK_K, blocks[b]);
}

void quantize_q6_k(const float* src, void* dst, int64_t n) {
  KP_CHECK(n % kQK_K == 0, "Q6_K rows are whole blocks");
  auto* blocks = static_cast<BlockQ6_K*>(dst);
  for (int64_t b = 0; b < n / kQK_K; ++b) quantize_block_q6_k(src + b * kQK_K, blocks[b]);
}

}  // namespace kp::format
