// Dequantization of the K-quants Q4_K, Q5_K and Q6_K (256 weights per block).
//
// Bit-exact with ggml's dequantize_row_q{4,5,6}_K and gguf-py: each output is
// computed with the same float operations in the same order, e.g. Q4_K's
// (d * sc) * q - (dmin * m) and Q6_K's (d * sc) * q
// (tests/format/quant_dequant_test.cpp checks against gguf-py's output).
#include <cstdint>

#include "core/check.h"
#include "core/fp16.h"
#include "format/quant.h"
#include "format/quant_blocks.h"

namespace kp::format {

// Q4_K: 4 groups of 64 weights; in group g, byte l of qs[32g..32g+32) holds
// weight 64g + l in its low nibble (sub-block 2g) and 64g + 32 + l in its high
// nibble (sub-block 2g + 1). y = d * sc * q - dmin * m.
void dequantize_q4_k(const void* src, float* dst, int64_t n) {
  KP_CHECK(n % kQK_K == 0, "Q4_K rows are whole blocks");
  const auto* blocks = static_cast<const BlockQ4_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ4_K& x = blocks[b];
    const float d = f16_to_f32(x.d);
    const float dmin = f16_to_f32(x.dmin);
    float* y = dst + b * kQK_K;
    for (int g = 0; g < 4; ++g) {
      const uint8_t* q = x.qs + 32 * g;
      uint8_t sc = 0, m = 0;
      k_scale_min(2 * g, x.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(2 * g + 1, x.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) y[64 * g + l] = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) y[64 * g + 32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// Q5_K: as Q4_K, plus a fifth bit per weight: bit 2g of qh[l] for weight
// 64g + l, bit 2g + 1 for weight 64g + 32 + l.
void dequantize_q5_k(const void* src, float* dst, int64_t n) {
  KP_CHECK(n % kQK_K == 0, "Q5_K rows are whole blocks");
  const auto* blocks = static_cast<const BlockQ5_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ5_K& x = blocks[b];
    const float d = f16_to_f32(x.d);
    const float dmin = f16_to_f32(x.dmin);
    float* y = dst + b * kQK_K;
    for (int g = 0; g < 4; ++g) {
      const uint8_t* ql = x.qs + 32 * g;
      const uint8_t lo_bit = static_cast<uint8_t>(1u << (2 * g));
      const uint8_t hi_bit = static_cast<uint8_t>(2u << (2 * g));
      uint8_t sc = 0, m = 0;
      k_scale_min(2 * g, x.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      k_scale_min(2 * g + 1, x.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] & 0x0f) + ((x.qh[l] & lo_bit) ? 16 : 0);
        y[64 * g + l] = d1 * static_cast<float>(q) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] >> 4) + ((x.qh[l] & hi_bit) ? 16 : 0);
        y[64 * g + 32 + l] = d2 * static_cast<float>(q) - m2;
      }
    }
  }
}

// Q6_K: 2 halves of 128 weights; in half h, with ql = ql + 64h, qh = qh + 32h,
// for l in 0..32 the weights 128h + l + 32k (k = 0..3) take their low 4 bits
// from ql[l] (k = 0 low, k = 2 high nibble) or ql[l + 32] (k = 1, 3) and their
// high 2 bits from bits 2k..2k+1 of qh[l]. Sub-block = weight index / 16.
// y = d * scales[sub] * (q - 32).
void dequantize_q6_k(const void* src, float* dst, int64_t n) {
  KP_CHECK(n % kQK_K == 0, "Q6_K rows are whole blocks");
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    const BlockQ6_K& x = blocks[b];
    const float d = f16_to_f32(x.d);
    float* y = dst + b * kQK_K;
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x.ql + 64 * h;
      const uint8_t* qh = x.qh + 32 * h;
      const int8_t* sc = x.scales + 8 * h;
      float* yh = y + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        yh[l] = d * sc[is + 0] * static_cast<float>(q1);
        yh[l + 32] = d * sc[is + 2] * static_cast<float>(q2);
        yh[l + 64] = d * sc[is + 4] * static_cast<float>(q3);
        yh[l + 96] = d * sc[is + 6] * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace kp::format
