// kp_f16.glsl: F16 weights, row-major [rows, KP_ROW_ELEMS] halves read as
// 32-bit words (no 16-bit storage feature needed). Rows of a multiple of 8
// halves are read 4 words at a time; other widths element by element.
// Expects: KP_ROW_ELEMS, uint kp_w4(uint m, uint i), uvec4 kp_w16(uint m, uint i),
// float kp_x(uint i) and vec4 kp_x4(uint i) (the last three not with KP_DEQUANT_ONLY).
// Provides: KP_UNIT, kp_dequant8, and (without KP_DEQUANT_ONLY) KP_XCHUNK,
// kp_load_xchunk and kp_unit_dot (see kp_matvec.glsl).
#ifndef KP_F16_GLSL
#define KP_F16_GLSL

#define KP_UNIT 8u

float kp_f16_at(uint m, uint e) { return unpackHalf2x16(kp_w4(m, e >> 1u) >> ((e & 1u) * 16u)).x; }

// Weights 8u..8u+7 of `row` (fewer at the end of a row whose width is not a
// multiple of 8; missing ones are 0).
void kp_dequant8(uint m, uint row, uint k, out float v[8]) {
  const uint e = row * KP_ROW_ELEMS + k;
  if (KP_ROW_ELEMS % 8u == 0u) {
    for (uint i = 0u; i < 4u; ++i) {
      const vec2 p = unpackHalf2x16(kp_w4(m, e / 2u + i));
      v[2u * i] = p.x;
      v[2u * i + 1u] = p.y;
    }
  } else {
    for (uint i = 0u; i < 8u; ++i) v[i] = k + i < KP_ROW_ELEMS ? kp_f16_at(m, e + i) : 0.0;
  }
}

#ifndef KP_DEQUANT_ONLY
// The activations of a unit, loaded once for every row (and matrix) an
// invocation computes; with rows of a multiple of 8 weights a unit is one
// 16-byte load of weights (kp_w16) and two of activations (kp_x4).
#define KP_XCHUNK KpXf16
struct KpXf16 {
  vec4 a, b;
};

KpXf16 kp_load_xchunk(uint u, uint xo) {
  KpXf16 xc;
  const uint c = xo + 8u * u;
  if (KP_ROW_ELEMS % 8u == 0u) {
    xc.a = kp_x4(c / 4u);
    xc.b = kp_x4(c / 4u + 1u);
  } else {
    float v[8];
    for (uint i = 0u; i < 8u; ++i) v[i] = 8u * u + i < KP_ROW_ELEMS ? kp_x(c + i) : 0.0;
    xc.a = vec4(v[0], v[1], v[2], v[3]);
    xc.b = vec4(v[4], v[5], v[6], v[7]);
  }
  return xc;
}

float kp_unit_dot(uint m, uint row, uint u, KpXf16 xc) {
  if (KP_ROW_ELEMS % 8u == 0u) {
    const uvec4 q = kp_w16(m, (row * KP_ROW_ELEMS + 8u * u) / 8u);
    return dot(vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y)), xc.a) +
           dot(vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w)), xc.b);
  }
  float v[8];
  kp_dequant8(m, row, 8u * u, v);  // zero past the row's end
  return dot(vec4(v[0], v[1], v[2], v[3]), xc.a) + dot(vec4(v[4], v[5], v[6], v[7]), xc.b);
}
#endif  // KP_DEQUANT_ONLY

#endif  // KP_F16_GLSL
