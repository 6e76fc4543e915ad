// kp_q6k.glsl: Q6_K weights (src/format/quant_blocks.h BlockQ6_K, 210 bytes per
// 256 weights, 2-byte aligned): ql[128] at 0, qh[64] at 128, int8 scales[16]
// at 192, f16 d at 208. For half n (0, 1) and l < 32, with A = ql[64n + l],
// B = ql[64n + l + 32], H = qh[32n + l], is = 8n + l / 16:
//   w[128n + l]      = d * sc[is]     * ((A & 15 | (H & 3) << 4) - 32)
//   w[128n + l + 32] = d * sc[is + 2] * ((B & 15 | (H >> 2 & 3) << 4) - 32)
//   w[128n + l + 64] = d * sc[is + 4] * ((A >> 4 | (H >> 4 & 3) << 4) - 32)
//   w[128n + l + 96] = d * sc[is + 6] * ((B >> 4 | (H >> 6 & 3) << 4) - 32)
// Expects: KP_ROW_ELEMS, uint kp_w4(uint m, uint i), vec4 kp_x4(uint i)
// (activations 4i..4i+3; not needed with KP_DEQUANT_ONLY).
// Provides: KP_UNIT, kp_dequant8, and (without KP_DEQUANT_ONLY) KP_XCHUNK,
// kp_load_xchunk and kp_unit_dot (see kp_matvec.glsl).
#ifndef KP_Q6K_GLSL
#define KP_Q6K_GLSL

#include "kp_bytes.glsl"

#define KP_UNIT 32u

#ifndef KP_DEQUANT_ONLY
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

// Dot of 32 weights of `row`: unit u covers block u / 8, half n = (u % 8) / 4,
// l = 8 * (u % 4) .. +7, i.e. 8 columns in each of the four quarters of the half.
float kp_unit_dot(uint m, uint row, uint u, KpXq6k xc) {
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
