// kp_q6k.glsl: Q6_K weights (src/format/quant_blocks.h BlockQ6_K, 210 bytes per
// 256 weights, 2-byte aligned): ql[128] at 0, qh[64] at 128, int8 scales[16]
// at 192, f16 d at 208. For half n (0, 1) and l < 32, with A = ql[64n + l],
// B = ql[64n + l + 32], H = qh[32n + l], is = 8n + l / 16:
//   w[128n + l]      = d * sc[is]     * ((A & 15 | (H & 3) << 4) - 32)
//   w[128n + l + 32] = d * sc[is + 2] * ((B & 15 | (H >> 2 & 3) << 4) - 32)
//   w[128n + l + 64] = d * sc[is + 4] * ((A >> 4 | (H >> 4 & 3) << 4) - 32)
//   w[128n + l + 96] = d * sc[is + 6] * ((B >> 4 | (H >> 6 & 3) << 4) - 32)
// Expects: KP_ROW_ELEMS, uint kp_w4(uint m, uint i), float kp_x(uint i) and
// vec4 kp_x4(uint i) (activations i and 4i..4i+3; not needed with
// KP_DEQUANT_ONLY, which leaves out the dot products).
// Provides: KP_UNIT, kp_unit_dot, kp_dequant8, and the shared-activation
// form KP_XCHUNK, kp_load_xchunk, kp_unit_dot_x (see kp_matvec.glsl).
#ifndef KP_Q6K_GLSL
#define KP_Q6K_GLSL

#include "kp_bytes.glsl"

#define KP_UNIT 32u

#ifndef KP_DEQUANT_ONLY
// Dot of 32 weights of `row`: unit u covers block u / 8, half n = (u % 8) / 4,
// l = 8 * (u % 4) .. +7, i.e. 8 columns in each of the four quarters of the half.
float kp_unit_dot(uint m, uint row, uint u, uint xo) {
  const uint base = (row * (KP_ROW_ELEMS / 256u) + u / 8u) * 210u;
  const uint part = u % 8u;
  const uint n = part / 4u;
  const uint l0 = (part % 4u) * 8u;
  const uint a0 = kp_u32_at(m, base + 64u * n + l0), a1 = kp_u32_at(m, base + 64u * n + l0 + 4u);
  const uint b0 = kp_u32_at(m, base + 64u * n + l0 + 32u), b1 = kp_u32_at(m, base + 64u * n + l0 + 36u);
  const uint h0 = kp_u32_at(m, base + 128u + 32u * n + l0), h1 = kp_u32_at(m, base + 128u + 32u * n + l0 + 4u);
  const uint is = 8u * n + l0 / 16u;
  // scales is, is+2, is+4, is+6 (is = 8n or 8n+1) from the words at 8n and 8n+4
  const uint scw0 = kp_u32_at(m, base + 192u + 8u * n);
  const uint scw1 = kp_u32_at(m, base + 192u + 8u * n + 4u);
  const uint so = is & 1u;
  const float s1 = float(kp_i8(scw0, so));
  const float s2 = float(kp_i8(scw0, so + 2u));
  const float s3 = float(kp_i8(scw1, so));
  const float s4 = float(kp_i8(scw1, so + 2u));
  const float d = unpackHalf2x16(kp_u16_at(m, base + 208u)).x;
  const uint c = xo + (u / 8u) * 256u + 128u * n + l0;
  float q1 = 0.0, q2 = 0.0, q3 = 0.0, q4 = 0.0;
  for (uint i = 0u; i < 8u; ++i) {
    const uint a = kp_u8(i < 4u ? a0 : a1, i % 4u);
    const uint b = kp_u8(i < 4u ? b0 : b1, i % 4u);
    const uint h = kp_u8(i < 4u ? h0 : h1, i % 4u);
    q1 += float(int((a & 15u) | ((h & 3u) << 4u)) - 32) * kp_x(c + i);
    q2 += float(int((b & 15u) | (((h >> 2u) & 3u) << 4u)) - 32) * kp_x(c + 32u + i);
    q3 += float(int((a >> 4u) | (((h >> 4u) & 3u) << 4u)) - 32) * kp_x(c + 64u + i);
    q4 += float(int((b >> 4u) | (((h >> 6u) & 3u) << 4u)) - 32) * kp_x(c + 96u + i);
  }
  return d * (s1 * q1 + s2 * q2 + s3 * q3 + s4 * q4);
}

// The activations of a unit, loaded once for every row an invocation computes:
// 8 columns in each quarter of the half (x[q][0..1] = columns c + 32q .. +7).
#define KP_XCHUNK KpXq6k
struct KpXq6k {
  vec4 x[4][2];
};

KpXq6k kp_load_xchunk(uint u, uint xo) {
  const uint part = u % 8u;
  const uint c = xo + (u / 8u) * 256u + 128u * (part / 4u) + (part % 4u) * 8u;
  KpXq6k xc;
  for (uint q = 0u; q < 4u; ++q) {
    for (uint h = 0u; h < 2u; ++h) {
      xc.x[q][h] = kp_x4((c + 32u * q + 4u * h) / 4u);  // c is a multiple of 8
    }
  }
  return xc;
}

// kp_unit_dot with the unit's activations already loaded.
float kp_unit_dot_x(uint m, uint row, uint u, KpXq6k xc) {
  const uint base = (row * (KP_ROW_ELEMS / 256u) + u / 8u) * 210u;
  const uint part = u % 8u;
  const uint n = part / 4u;
  const uint l0 = (part % 4u) * 8u;
  const uint is = 8u * n + l0 / 16u;
  const uint scw0 = kp_u32_at(m, base + 192u + 8u * n);
  const uint scw1 = kp_u32_at(m, base + 192u + 8u * n + 4u);
  const uint so = is & 1u;
  const float d = unpackHalf2x16(kp_u16_at(m, base + 208u)).x;
  vec4 acc = vec4(0.0);  // the four quarters
  for (uint h = 0u; h < 2u; ++h) {
    const uint a = kp_u32_at(m, base + 64u * n + l0 + 4u * h);
    const uint b = kp_u32_at(m, base + 64u * n + l0 + 32u + 4u * h);
    const uint hb = kp_u32_at(m, base + 128u + 32u * n + l0 + 4u * h);
    const uvec4 av = uvec4(a, a >> 8u, a >> 16u, a >> 24u) & 0xFFu;
    const uvec4 bv = uvec4(b, b >> 8u, b >> 16u, b >> 24u) & 0xFFu;
    const uvec4 hv = uvec4(hb, hb >> 8u, hb >> 16u, hb >> 24u) & 0xFFu;
    const vec4 w1 = vec4(ivec4((av & 15u) | ((hv & 3u) << 4u)) - 32);
    const vec4 w2 = vec4(ivec4((bv & 15u) | (((hv >> 2u) & 3u) << 4u)) - 32);
    const vec4 w3 = vec4(ivec4((av >> 4u) | (((hv >> 4u) & 3u) << 4u)) - 32);
    const vec4 w4 = vec4(ivec4((bv >> 4u) | (((hv >> 6u) & 3u) << 4u)) - 32);
    acc += vec4(dot(w1, xc.x[0][h]), dot(w2, xc.x[1][h]), dot(w3, xc.x[2][h]), dot(w4, xc.x[3][h]));
  }
  const vec4 sc = vec4(float(kp_i8(scw0, so)), float(kp_i8(scw0, so + 2u)), float(kp_i8(scw1, so)),
                       float(kp_i8(scw1, so + 2u)));
  return d * dot(sc, acc);
}
#endif  // KP_DEQUANT_ONLY

// Weights k..k+7 of `row` (k a multiple of 8): one quarter qq of half n.
void kp_dequant8(uint m, uint row, uint k, out float v[8]) {
  const uint base = (row * (KP_ROW_ELEMS / 256u) + k / 256u) * 210u;
  const uint kk = k % 256u;
  const uint n = kk / 128u;
  const uint qq = (kk % 128u) / 32u;
  const uint l = kk % 32u;
  const uint ql_off = base + 64u * n + l + (qq & 1u) * 32u;
  const uint qh_off = base + 128u + 32u * n + l;
  const uint q0 = kp_u32_at(m, ql_off), q1 = kp_u32_at(m, ql_off + 4u);
  const uint h0 = kp_u32_at(m, qh_off), h1 = kp_u32_at(m, qh_off + 4u);
  const uint sc_off = base + 192u + 8u * n + l / 16u + 2u * qq;
  const int sc = bitfieldExtract(int(kp_u16_at(m, sc_off & ~1u)), int((sc_off & 1u) * 8u), 8);
  const float scale = unpackHalf2x16(kp_u16_at(m, base + 208u)).x * float(sc);
  const uint nib = (qq / 2u) * 4u;
  for (uint i = 0u; i < 8u; ++i) {
    const uint ql = kp_u8(i < 4u ? q0 : q1, i % 4u);
    const uint qh = kp_u8(i < 4u ? h0 : h1, i % 4u);
    v[i] = scale * float(int(((ql >> nib) & 15u) | (((qh >> (2u * qq)) & 3u) << 4u)) - 32);
  }
}

#endif  // KP_Q6K_GLSL
