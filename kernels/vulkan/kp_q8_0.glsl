// kp_q8_0.glsl: Q8_0 weights (src/format/quant_blocks.h BlockQ8_0, 34 bytes per
// 32 weights, 2-byte aligned): f16 d at 0, int8 qs[32] at 2; w = d * q.
// Expects: KP_ROW_ELEMS, uint kp_w4(uint m, uint i) and vec4 kp_x4(uint i)
// (activations 4i..4i+3; not needed with KP_DEQUANT_ONLY).
// Provides: KP_UNIT, kp_dequant8, and (without KP_DEQUANT_ONLY) KP_XCHUNK,
// kp_load_xchunk and kp_unit_dot (see kp_matvec.glsl).
#ifndef KP_Q8_0_GLSL
#define KP_Q8_0_GLSL

#include "kp_bytes.glsl"

#define KP_UNIT 8u

#ifndef KP_DEQUANT_ONLY
// The activations of a unit (columns 8u..8u+7), loaded once for every row an
// invocation computes.
#define KP_XCHUNK KpXq8
struct KpXq8 {
  vec4 a, b;
};

KpXq8 kp_load_xchunk(uint u, uint xo) {
  KpXq8 xc;
  xc.a = kp_x4((xo + 8u * u) / 4u);  // rows are whole 32-weight blocks: 4-aligned
  xc.b = kp_x4((xo + 8u * u) / 4u + 1u);
  return xc;
}

// Dot of weights 8u..8u+7 of `row` (block u / 4, quants 8 (u % 4) ..) with the unit's activations.
float kp_unit_dot(uint m, uint row, uint u, KpXq8 xc) {
  const uint base = (row * (KP_ROW_ELEMS / 32u) + u / 4u) * 34u;
  const uint off = base + 2u + 8u * (u % 4u);
  const uint q0 = kp_u32_at(m, off), q1 = kp_u32_at(m, off + 4u);
  const float d = unpackHalf2x16(kp_u16_at(m, base)).x;
  const vec4 w0 = vec4(kp_i8(q0, 0u), kp_i8(q0, 1u), kp_i8(q0, 2u), kp_i8(q0, 3u));
  const vec4 w1 = vec4(kp_i8(q1, 0u), kp_i8(q1, 1u), kp_i8(q1, 2u), kp_i8(q1, 3u));
  return d * (dot(w0, xc.a) + dot(w1, xc.b));
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
