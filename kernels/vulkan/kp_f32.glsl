// kp_f32.glsl: F32 weights, row-major [rows, KP_ROW_ELEMS] read as 32-bit words.
// Expects: KP_ROW_ELEMS, uint kp_w4(uint m, uint i), uvec4 kp_w16(uint m, uint i),
// float kp_x(uint i) and vec4 kp_x4(uint i) (the last three not with KP_DEQUANT_ONLY).
// Provides: KP_UNIT, kp_dequant8, and (without KP_DEQUANT_ONLY) KP_XCHUNK,
// kp_load_xchunk and kp_unit_dot (see kp_matvec.glsl).
#ifndef KP_F32_GLSL
#define KP_F32_GLSL

#define KP_UNIT 4u

// Weights k..k+7 of `row`; those past the end of the row are 0.
void kp_dequant8(uint m, uint row, uint k, out float v[8]) {
  const uint e = row * KP_ROW_ELEMS + k;
  for (uint i = 0u; i < 8u; ++i) {
    v[i] = (KP_ROW_ELEMS % 8u == 0u || k + i < KP_ROW_ELEMS) ? uintBitsToFloat(kp_w4(m, e + i)) : 0.0;
  }
}

#ifndef KP_DEQUANT_ONLY
// The activations of a unit, loaded once for every row (and matrix) an
// invocation computes; with rows of a multiple of 4 weights a unit is one
// 16-byte load of weights (kp_w16) and one of activations (kp_x4).
#define KP_XCHUNK vec4

vec4 kp_load_xchunk(uint u, uint xo) {
  const uint c = xo + 4u * u;
  if (KP_ROW_ELEMS % 4u == 0u) return kp_x4(c / 4u);
  vec4 v;
  for (uint i = 0u; i < 4u; ++i) v[i] = 4u * u + i < KP_ROW_ELEMS ? kp_x(c + i) : 0.0;
  return v;
}

float kp_unit_dot(uint m, uint row, uint u, vec4 xc) {
  const uint e = row * KP_ROW_ELEMS + 4u * u;
  if (KP_ROW_ELEMS % 4u == 0u) return dot(uintBitsToFloat(kp_w16(m, e / 4u)), xc);
  float acc = 0.0;
  for (uint i = 0u; i < 4u; ++i) {
    if (4u * u + i < KP_ROW_ELEMS) acc += uintBitsToFloat(kp_w4(m, e + i)) * xc[i];
  }
  return acc;
}
#endif  // KP_DEQUANT_ONLY

#endif  // KP_F32_GLSL
