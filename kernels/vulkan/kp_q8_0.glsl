// kp_q8_0.glsl: Q8_0 weights (src/format/quant_blocks.h BlockQ8_0, 34 bytes per
// 32 weights, 2-byte aligned): f16 d at 0, int8 qs[32] at 2; w = d * q.
// Expects: KP_ROW_ELEMS, uint kp_w4(uint m, uint i), float kp_x(uint i)
// (not needed with KP_DEQUANT_ONLY, which leaves out kp_unit_dot).
// Provides: KP_UNIT, kp_unit_dot, kp_dequant8 (see kp_matvec.glsl).
#ifndef KP_Q8_0_GLSL
#define KP_Q8_0_GLSL

#include "kp_bytes.glsl"

#define KP_UNIT 8u

#ifndef KP_DEQUANT_ONLY
// Dot of weights 8u..8u+7 of `row` (block u / 4, quants 8 (u % 4) ..).
float kp_unit_dot(uint m, uint row, uint u, uint xo) {
  const uint base = (row * (KP_ROW_ELEMS / 32u) + u / 4u) * 34u;
  const uint off = base + 2u + 8u * (u % 4u);
  const uint q0 = kp_u32_at(m, off), q1 = kp_u32_at(m, off + 4u);
  const float d = unpackHalf2x16(kp_u16_at(m, base)).x;
  const uint c = xo + 8u * u;
  float acc = 0.0;
  for (uint i = 0u; i < 4u; ++i) {
    acc += float(kp_i8(q0, i)) * kp_x(c + i);
    acc += float(kp_i8(q1, i)) * kp_x(c + 4u + i);
  }
  return d * acc;
}
#endif  // KP_DEQUANT_ONLY

void kp_dequant8(uint m, uint row, uint k, out float v[8]) {
  const uint base = (row * (KP_ROW_ELEMS / 32u) + k / 32u) * 34u;
  const uint off = base + 2u + (k % 32u);
  const uint q0 = kp_u32_at(m, off), q1 = kp_u32_at(m, off + 4u);
  const float d = unpackHalf2x16(kp_u16_at(m, base)).x;
  for (uint i = 0u; i < 4u; ++i) {
    v[i] = d * float(kp_i8(q0, i));
    v[4u + i] = d * float(kp_i8(q1, i));
  }
}

#endif  // KP_Q8_0_GLSL
