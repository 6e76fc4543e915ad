// attention.comp: causal GQA attention for one layer (docs/kernels.md). For batch
// row t at position p = pos0 + t and query head h (KV head h / (N_HEAD / N_HEAD_KV)):
// keys j <= p, and p - j < window when kp_step.window > 0; s = SCALE q.k, then
// SOFTCAP tanh(s / SOFTCAP) when SOFTCAP > 0; softmax in f32; o = sum softmax * v.
// Keys of the batch itself (j >= pos0) come from the k/v inputs, earlier ones from
// the caches; the first query head of each KV group appends row p of its KV head
// to the caches. Nothing is read back that this dispatch writes.
// Bindings: 1 q [T, QC] f32; 2 k [T, KC] f32; 3 v [T, KC] f32; 4 o [T, QC] f32;
// 5 k_cache [CTX, KC] f32; 6 v_cache [CTX, KC] f32.
// Constants: HEAD_DIM, N_HEAD, N_HEAD_KV, SCALE, SOFTCAP, CTX (kernel); WG_SIZE
// (Vulkan, a multiple of 32).
// Grid [N_HEAD, T, 1]. A workgroup walks the keys in tiles of 32 with an online
// softmax (running max and sum), so any context length fits; WG_SIZE / 32
// invocations share each key's dot product, and each invocation owns
// HEAD_DIM / WG_SIZE output dimensions.
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer QBuffer { float q[]; };
layout(set = 0, binding = 2, std430) readonly buffer KBuffer { float k[]; };
layout(set = 0, binding = 3, std430) readonly buffer VBuffer { float v[]; };
layout(set = 0, binding = 4, std430) writeonly buffer OBuffer { float o[]; };
layout(set = 0, binding = 5, std430) buffer KCacheBuffer { float k_cache[]; };
layout(set = 0, binding = 6, std430) buffer VCacheBuffer { float v_cache[]; };

#include "kp_math.glsl"

#define KP_TILE 32u
const uint QC = N_HEAD * HEAD_DIM;
const uint KC = N_HEAD_KV * HEAD_DIM;
const uint KEY_THREADS = WG_SIZE / KP_TILE;             // invocations per key of a tile
const uint DIMS = (HEAD_DIM + WG_SIZE - 1u) / WG_SIZE;  // output dims per invocation
const float NEG_BIG = -3.0e38;

shared float q_sh[HEAD_DIM];
shared float part_sh[WG_SIZE];
shared float s_sh[KP_TILE];
shared float p_sh[KP_TILE];

// Element d of key (which 0) or value (which 1) j of KV head kvh.
float kv_at(uint which, uint j, uint kvh, uint d, uint pos0) {
  if (j >= pos0) {
    const uint e = (j - pos0) * KC + kvh * HEAD_DIM + d;
    return which == 0u ? k[e] : v[e];
  }
  const uint e = j * KC + kvh * HEAD_DIM + d;
  return which == 0u ? k_cache[e] : v_cache[e];
}

void main() {
  const uint h = gl_WorkGroupID.x;
  const uint t = gl_WorkGroupID.y;
  const uint lid = gl_LocalInvocationID.x;
  const uint pos0 = kp_params.pos0;
  const uint p = pos0 + t;
  const uint group = N_HEAD / N_HEAD_KV;
  const uint kvh = h / group;

  // Append row p of this KV head to the caches.
  if (h % group == 0u && p < CTX) {
    const uint src = t * KC + kvh * HEAD_DIM;
    const uint dst = p * KC + kvh * HEAD_DIM;
    for (uint d = lid; d < HEAD_DIM; d += WG_SIZE) {
      k_cache[dst + d] = k[src + d];
      v_cache[dst + d] = v[src + d];
    }
  }
  for (uint d = lid; d < HEAD_DIM; d += WG_SIZE) q_sh[d] = q[t * QC + h * HEAD_DIM + d];
  barrier();

  const uint window = kp_step.window;
  const uint j_lo = (window > 0u && p + 1u > window) ? p + 1u - window : 0u;
  const uint j_hi = p;  // inclusive
  const uint slot = lid / KEY_THREADS;
  const uint sub = lid % KEY_THREADS;
  float run_max = NEG_BIG;
  float run_sum = 0.0;
  float acc[DIMS];
  for (uint i = 0u; i < DIMS; ++i) acc[i] = 0.0;

  for (uint j0 = j_lo; j0 <= j_hi; j0 += KP_TILE) {
    // Scores of the tile: KEY_THREADS invocations per key.
    const uint j = j0 + slot;
    float dot = 0.0;
    if (j <= j_hi) {
      for (uint d = sub; d < HEAD_DIM; d += KEY_THREADS) dot += q_sh[d] * kv_at(0u, j, kvh, d, pos0);
    }
    part_sh[lid] = dot;
    barrier();
    if (sub == 0u) {
      float s = 0.0;
      for (uint i = 0u; i < KEY_THREADS; ++i) s += part_sh[lid + i];
      s *= SCALE;
      if (SOFTCAP > 0.0) s = SOFTCAP * kp_tanh(s / SOFTCAP);
      s_sh[slot] = j <= j_hi ? s : NEG_BIG;
    }
    barrier();
    // Online softmax: rescale what was accumulated by exp(old max - new max).
    float tile_max = NEG_BIG;
    for (uint i = 0u; i < KP_TILE; ++i) tile_max = max(tile_max, s_sh[i]);
    const float new_max = max(run_max, tile_max);
    const float alpha = exp(run_max - new_max);
    if (lid < KP_TILE) p_sh[lid] = j0 + lid <= j_hi ? exp(s_sh[lid] - new_max) : 0.0;
    barrier();
    const uint n_keys = min(KP_TILE, j_hi - j0 + 1u);
    float tile_sum = 0.0;
    for (uint i = 0u; i < n_keys; ++i) tile_sum += p_sh[i];
    run_sum = run_sum * alpha + tile_sum;
    for (uint i = 0u; i < DIMS; ++i) {
      const uint d = lid + i * WG_SIZE;
      if (d < HEAD_DIM) {
        float a = acc[i] * alpha;
        for (uint jj = 0u; jj < n_keys; ++jj) a += p_sh[jj] * kv_at(1u, j0 + jj, kvh, d, pos0);
        acc[i] = a;
      }
    }
    run_max = new_max;
    barrier();  // part_sh, s_sh and p_sh are rewritten by the next tile
  }
  for (uint i = 0u; i < DIMS; ++i) {
    const uint d = lid + i * WG_SIZE;
    if (d < HEAD_DIM) o[t * QC + h * HEAD_DIM + d] = acc[i] / run_sum;
  }
}
