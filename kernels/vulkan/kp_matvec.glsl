// kp_matvec.glsl: the two entries shared by matmul_* and ffn_gate_up_*.
//
// Expects (defined by the kernel file before this include):
//   KP_ROW_ELEMS  weights per row (K or E)      KP_OUT_COLS  outputs per batch row (N or F)
//   KP_N_MATS     1 (y = W x) or 2 (y = gelu_tanh(G x) * (U x))
//   x[]           activations [T, KP_ROW_ELEMS], float y[] outputs [T, KP_OUT_COLS]
//   a weight-type header: KP_UNIT; KP_XCHUNK (a type) and KP_XCHUNK
//   kp_load_xchunk(unit, xo) = the activations x[xo + .] that weights
//   [KP_UNIT*unit, KP_UNIT*(unit+1)) of a row meet (and what depends on them
//   alone), loaded once per unit for every row and matrix; float
//   kp_unit_dot(m, row, unit, xc) = their dot with those weights of `row` of
//   matrix m; and void kp_dequant8(m, row, k, out float v[8]) = weights k..k+7
//   of `row` (the gemm entry)
//   constants WG_SIZE (power of two) and ROWS (outputs per workgroup) for main
//
// ENTRY_main (matvec, any T; grid [min(cdiv(OUT, ROWS), 65535), T, 1]): a
//   workgroup computes ROWS outputs of batch row gl_WorkGroupID.y, striding on
//   when the grid is narrower than OUT / ROWS. Consecutive invocations read
//   consecutive units of a weight row (coalesced), every invocation keeps ROWS
//   (x KP_N_MATS) partial sums, reduced by subgroupAdd when available.
// ENTRY_gemm (tiled, for prefill; grid [cdiv(OUT, 64), cdiv(T, 32), 1]):
//   tiles of 32 batch rows x 64 outputs, K in steps of 32 staged in shared
//   memory (weights dequantized once per tile); 256 invocations of 2 x 4 outputs.
//   T = x.length() / KP_ROW_ELEMS: the binding holds exactly the batch's rows.
#ifndef KP_MATVEC_GLSL
#define KP_MATVEC_GLSL

#if KP_N_MATS == 2
#include "kp_math.glsl"
#endif

void kp_store(uint idx, float a, float b) {
#if KP_N_MATS == 2
  y[idx] = kp_gelu(a) * b;
#else
  y[idx] = a;
#endif
}

#if ENTRY_main

layout(local_size_x_id = KP_ID_WG_SIZE) in;

// Partial sums: [value][invocation] without subgroups, [value][subgroup] with.
shared float kp_mv_red[KP_N_MATS * ROWS * WG_SIZE];

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  const uint xo = t * KP_ROW_ELEMS;
  const uint n_units = (KP_ROW_ELEMS + KP_UNIT - 1u) / KP_UNIT;
  const uint n_values = KP_N_MATS * ROWS;
  for (uint row0 = gl_WorkGroupID.x * ROWS; row0 < KP_OUT_COLS; row0 += gl_NumWorkGroups.x * ROWS) {
    float acc[KP_N_MATS * ROWS];
    for (uint i = 0u; i < n_values; ++i) acc[i] = 0.0;
    for (uint u = lid; u < n_units; u += WG_SIZE) {
      const KP_XCHUNK xc = kp_load_xchunk(u, xo);  // once for all rows and matrices
      for (uint r = 0u; r < ROWS; ++r) {
        const uint row = min(row0 + r, KP_OUT_COLS - 1u);  // past the end: computed, never stored
        for (uint mat = 0u; mat < KP_N_MATS; ++mat) acc[mat * ROWS + r] += kp_unit_dot(mat, row, u, xc);
      }
    }
#if KP_SUBGROUP_ARITH
    for (uint i = 0u; i < n_values; ++i) {
      const float s = subgroupAdd(acc[i]);
      if (subgroupElect()) kp_mv_red[i * gl_NumSubgroups + gl_SubgroupID] = s;
    }
    barrier();
    if (lid < ROWS && row0 + lid < KP_OUT_COLS) {
      float sums[KP_N_MATS];
      for (uint mat = 0u; mat < KP_N_MATS; ++mat) {
        float s = 0.0;
        const uint v = mat * ROWS + lid;
        for (uint g = 0u; g < gl_NumSubgroups; ++g) s += kp_mv_red[v * gl_NumSubgroups + g];
        sums[mat] = s;
      }
      kp_store(t * KP_OUT_COLS + row0 + lid, sums[0], sums[KP_N_MATS - 1u]);
    }
#else
    for (uint i = 0u; i < n_values; ++i) kp_mv_red[i * WG_SIZE + lid] = acc[i];
    barrier();
    for (uint stride = WG_SIZE / 2u; stride > 0u; stride >>= 1u) {
      if (lid < stride) {
        for (uint i = 0u; i < n_values; ++i) kp_mv_red[i * WG_SIZE + lid] += kp_mv_red[i * WG_SIZE + lid + stride];
      }
      barrier();
    }
    if (lid < ROWS && row0 + lid < KP_OUT_COLS) {
      kp_store(t * KP_OUT_COLS + row0 + lid, kp_mv_red[lid * WG_SIZE],
               kp_mv_red[((KP_N_MATS - 1u) * ROWS + lid) * WG_SIZE]);
    }
#endif
    barrier();  // kp_mv_red is reused by the next rows
  }
}

#endif  // ENTRY_main

#if ENTRY_gemm

#define KP_BM 32u
#define KP_BN 64u
#define KP_BK 32u

layout(local_size_x = 256) in;

shared float kp_xs[KP_BK * KP_BM];              // x tile, [k][m]
shared float kp_ws[KP_N_MATS * KP_BK * KP_BN];  // weight tiles, [mat][k][n]

void main() {
  const uint lid = gl_LocalInvocationID.x;
  const uint T = x.length() / KP_ROW_ELEMS;
  const uint m0 = gl_WorkGroupID.y * KP_BM;
  const uint n0 = gl_WorkGroupID.x * KP_BN;
  const uint tm = lid / 16u;  // rows m0 + tm + 16 i, i < 2
  const uint tn = lid % 16u;  // outputs n0 + tn + 16 j, j < 4
  float acc[KP_N_MATS * 8];
  for (uint i = 0u; i < KP_N_MATS * 8u; ++i) acc[i] = 0.0;

  // Staging assignments: x tile 32 x 32 (4 values each), weights 64 x 32 (8 each).
  const uint xr = lid / 8u, xc = (lid % 8u) * 4u;
  const uint wn = lid / 4u, wc = (lid % 4u) * 8u;
  const uint w_row = min(n0 + wn, KP_OUT_COLS - 1u);
  for (uint k0 = 0u; k0 < KP_ROW_ELEMS; k0 += KP_BK) {
    for (uint i = 0u; i < 4u; ++i) {
      const uint k = k0 + xc + i;
      const uint m = m0 + xr;
      kp_xs[(xc + i) * KP_BM + xr] = (m < T && k < KP_ROW_ELEMS) ? x[m * KP_ROW_ELEMS + k] : 0.0;
    }
    for (uint mat = 0u; mat < KP_N_MATS; ++mat) {
      float v[8];
      if (k0 + wc < KP_ROW_ELEMS) {
        kp_dequant8(mat, w_row, k0 + wc, v);
      } else {
        for (uint i = 0u; i < 8u; ++i) v[i] = 0.0;
      }
      for (uint i = 0u; i < 8u; ++i) kp_ws[(mat * KP_BK + wc + i) * KP_BN + wn] = v[i];
    }
    barrier();
    for (uint kk = 0u; kk < KP_BK; ++kk) {
      const float x0 = kp_xs[kk * KP_BM + tm];
      const float x1 = kp_xs[kk * KP_BM + tm + 16u];
      for (uint mat = 0u; mat < KP_N_MATS; ++mat) {
        for (uint j = 0u; j < 4u; ++j) {
          const float wv = kp_ws[(mat * KP_BK + kk) * KP_BN + tn + 16u * j];
          acc[mat * 8u + j] += x0 * wv;
          acc[mat * 8u + 4u + j] += x1 * wv;
        }
      }
    }
    barrier();
  }
  for (uint i = 0u; i < 2u; ++i) {
    const uint m = m0 + tm + 16u * i;
    for (uint j = 0u; j < 4u; ++j) {
      const uint n = n0 + tn + 16u * j;
      if (m < T && n < KP_OUT_COLS) {
        kp_store(m * KP_OUT_COLS + n, acc[i * 4u + j], acc[(KP_N_MATS - 1u) * 8u + i * 4u + j]);
      }
    }
  }
}

#endif  // ENTRY_gemm

#endif  // KP_MATVEC_GLSL
