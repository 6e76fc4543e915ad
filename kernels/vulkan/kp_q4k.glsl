// kp_q4k.glsl: Q4_K weights (src/format/quant_blocks.h BlockQ4_K, 144 bytes =
// nine 16-byte units per 256 weights): unit 0 = d, dmin (f16) and the 12 bytes
// of packed 6-bit scales/mins; units 1..8 = qs[128]. qs bytes 32j..32j+31 hold
// weights 64j..64j+31 (low nibbles, sub-block 2j) and 64j+32..64j+63 (high
// nibbles, sub-block 2j+1). y = d * sc[s] * q - dmin * m[s].
// Expects: KP_ROW_ELEMS (weights per row), uvec4 kp_w16(uint m, uint i) (unit i
// of weight matrix m), vec4 kp_x4(uint i) (activations 4i..4i+3; not needed
// with KP_DEQUANT_ONLY).
// Provides: KP_UNIT, kp_dequant8, and (without KP_DEQUANT_ONLY) KP_XCHUNK,
// kp_load_xchunk and kp_unit_dot (see kp_matvec.glsl).
#ifndef KP_Q4K_GLSL
#define KP_Q4K_GLSL

#define KP_UNIT 32u

// Scale and min of sub-block s (0..7) from the header unit h (ggml's get_scale_min_k4).
void kp_q4k_scale_min(uvec4 h, uint s, out float sc, out float mn) {
  // scales byte b lives in h[1 + b / 4]
  if (s < 4u) {
    sc = float((h[1u + s / 4u] >> ((s % 4u) * 8u)) & 63u);
    mn = float((h[1u + (s + 4u) / 4u] >> (((s + 4u) % 4u) * 8u)) & 63u);
  } else {
    const uint b_hi = (h[1u + (s + 4u) / 4u] >> (((s + 4u) % 4u) * 8u)) & 0xFFu;  // byte s+4
    const uint b_lo = (h[1u + (s - 4u) / 4u] >> (((s - 4u) % 4u) * 8u)) & 0xFFu;  // byte s-4
    const uint b_s = (h[1u + s / 4u] >> ((s % 4u) * 8u)) & 0xFFu;                  // byte s
    sc = float((b_hi & 0xFu) | ((b_lo >> 6u) << 4u));
    mn = float((b_hi >> 4u) | ((b_s >> 6u) << 4u));
  }
}

#ifndef KP_DEQUANT_ONLY
// The activations a unit meets, loaded once and shared by every row (and both
// matrices of ffn_gate_up) an invocation computes: the 16 columns of the low
// nibbles, the 16 of the high nibbles, and their sums (the mins' term).
#define KP_XCHUNK KpXq4k
struct KpXq4k {
  vec4 lo[4];
  vec4 hi[4];
  float sum_lo, sum_hi;
};

KpXq4k kp_load_xchunk(uint u, uint xo) {
  const uint part = u % 8u;
  const uint c = xo + (u / 8u) * 256u + 64u * (part / 2u) + 16u * (part % 2u);
  KpXq4k xc;
  vec4 slo = vec4(0.0), shi = vec4(0.0);
  for (uint w = 0u; w < 4u; ++w) {
    const uint i = c + 4u * w;  // a multiple of 4
    xc.lo[w] = kp_x4(i / 4u);
    xc.hi[w] = kp_x4(i / 4u + 8u);
    slo += xc.lo[w];
    shi += xc.hi[w];
  }
  xc.sum_lo = slo.x + slo.y + slo.z + slo.w;
  xc.sum_hi = shi.x + shi.y + shi.z + shi.w;
  return xc;
}

// Dot of 32 weights of `row` (unit u: block u / 8, qs unit u % 8 = 16 low and
// 16 high nibbles) with the unit's activations.
float kp_unit_dot(uint m, uint row, uint u, KpXq4k xc) {
  const uint blk = row * (KP_ROW_ELEMS / 256u) + u / 8u;
  const uint part = u % 8u;
  const uint j = part / 2u;
  const uvec4 h = kp_w16(m, blk * 9u);
  const uvec4 q = kp_w16(m, blk * 9u + 1u + part);
  const vec2 dm = unpackHalf2x16(h.x);
  float sc_lo, mn_lo, sc_hi, mn_hi;
  kp_q4k_scale_min(h, 2u * j, sc_lo, mn_lo);
  kp_q4k_scale_min(h, 2u * j + 1u, sc_hi, mn_hi);
  float dot_lo = 0.0, dot_hi = 0.0;
  for (uint w = 0u; w < 4u; ++w) {
    const uint word = q[w];
    const vec4 ql = vec4(uvec4(word, word >> 8u, word >> 16u, word >> 24u) & 0xFu);
    const vec4 qh = vec4(uvec4(word >> 4u, word >> 12u, word >> 20u, word >> 28u) & 0xFu);
    dot_lo += dot(ql, xc.lo[w]);
    dot_hi += dot(qh, xc.hi[w]);
  }
  return dm.x * (sc_lo * dot_lo + sc_hi * dot_hi) - dm.y * (mn_lo * xc.sum_lo + mn_hi * xc.sum_hi);
}
#endif  // KP_DEQUANT_ONLY

// Weights k..k+7 of `row` (k a multiple of 8).
void kp_dequant8(uint m, uint row, uint k, out float v[8]) {
  const uint blk = row * (KP_ROW_ELEMS / 256u) + k / 256u;
  const uint kk = k % 256u;
  const uint j = kk / 64u;
  const uint hi = (kk % 64u) / 32u;
  const uint byte0 = 32u * j + kk % 32u;  // first qs byte
  const uvec4 h = kp_w16(m, blk * 9u);
  const uvec4 q = kp_w16(m, blk * 9u + 1u + byte0 / 16u);
  const uint wi = (byte0 % 16u) / 4u;
  const vec2 dm = unpackHalf2x16(h.x);
  float sc, mn;
  kp_q4k_scale_min(h, 2u * j + hi, sc, mn);
  const float scale = dm.x * sc, offset = dm.y * mn;
  for (uint i = 0u; i < 8u; ++i) {
    const uint word = q[wi + i / 4u];
    v[i] = scale * float((word >> (8u * (i % 4u) + 4u * hi)) & 0xFu) - offset;
  }
}

#endif  // KP_Q4K_GLSL
