// attention.comp: causal GQA attention for one layer (docs/kernels.md). For batch
// row t at position p = pos0 + t and query head h (KV head h / (N_HEAD / N_HEAD_KV)):
// keys j <= p, and p - j < window when kp_step.window > 0; s = SCALE q.k, then
// SOFTCAP tanh(s / SOFTCAP) when SOFTCAP > 0; softmax in f32; o = sum softmax * v.
// Keys of the batch itself (j >= pos0) come from the k/v inputs, earlier ones from
// the caches; the first query head of each KV group appends row p of its KV head
// to the caches. Nothing is read back that this dispatch writes.
// Bindings: 1 q [T, QC] f32; 2 k [T, KC] f32; 3 v [T, KC] f32; 4 o [T, QC] f32;
// 5 k_cache [CTX, KC] f32; 6 v_cache [CTX, KC] f32 (k, v and the caches are also
// read through vec4 views of the same bindings when HEAD_DIM % 4 == 0).
// Constants: HEAD_DIM, N_HEAD, N_HEAD_KV, SCALE, SOFTCAP, CTX (kernel); WG_SIZE,
// KEY_LANES (Vulkan; KEY_LANES divides WG_SIZE).
// Grid [N_HEAD, T, 1]: one workgroup per (query head, row). Decode has only
// N_HEAD workgroups, so each one keeps many keys in flight: it walks the keys in
// tiles of TILE = WG_SIZE / KEY_LANES with an online softmax (any context fits),
// and every invocation works on every tile:
//   scores   KEY_LANES invocations per key, each a strided share of the dot
//            product over vec4 units (the lanes of a key read consecutive
//            16-byte units), partial sums combined through shared memory;
//   weights  tile max (subgroupMax where available), p = exp(s - running max),
//            computed once per key into shared memory;
//   values   VAL_LANES = HEAD_DIM / 4 invocations per value row (one vec4 unit
//            each, coalesced), VAL_SETS = WG_SIZE / VAL_LANES sets of them
//            taking interleaved keys of the tile, VAL_BATCH loads in flight
//            per invocation, each set with its own partial output and sum.
// All sets share the running max, so at the end their outputs and sums simply
// add (one shared-memory combine). Three barriers per tile. Shared memory: about
// 8 TILE + 8 WG_SIZE + 4 HEAD_DIM bytes (6.5 KiB at the defaults and HEAD_DIM 256).
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer QBuffer { float q[]; };
layout(set = 0, binding = 2, std430) readonly buffer KBuffer { float k[]; };
layout(set = 0, binding = 2, std430) readonly buffer K4Buffer { vec4 k4[]; };
layout(set = 0, binding = 3, std430) readonly buffer VBuffer { float v[]; };
layout(set = 0, binding = 3, std430) readonly buffer V4Buffer { vec4 v4[]; };
layout(set = 0, binding = 4, std430) writeonly buffer OBuffer { float o[]; };
layout(set = 0, binding = 5, std430) buffer KCacheBuffer { float k_cache[]; };
layout(set = 0, binding = 5, std430) readonly buffer KCache4Buffer { vec4 k_cache4[]; };
layout(set = 0, binding = 6, std430) buffer VCacheBuffer { float v_cache[]; };
layout(set = 0, binding = 6, std430) readonly buffer VCache4Buffer { vec4 v_cache4[]; };

#include "kp_math.glsl"

const uint QC = N_HEAD * HEAD_DIM;
const uint KC = N_HEAD_KV * HEAD_DIM;
const bool ALIGNED = HEAD_DIM % 4u == 0u;                          // rows start on vec4 units
const uint UNITS = (HEAD_DIM + 3u) / 4u;                           // vec4 units per head row
const uint TILE = WG_SIZE / KEY_LANES;                             // keys per tile
const uint KEY_UNITS = (UNITS + KEY_LANES - 1u) / KEY_LANES;       // units per lane of a score
const uint VAL_LANES = UNITS < WG_SIZE ? UNITS : WG_SIZE;          // invocations per value row
const uint VAL_SETS = WG_SIZE / VAL_LANES;                         // key sets of the value phase
const uint VAL_UNITS = (UNITS + VAL_LANES - 1u) / VAL_LANES;       // units per value invocation
const uint VAL_BATCH = 8u;                                         // value loads in flight per invocation
const float NEG_BIG = -3.0e38;

shared vec4 q_sh[UNITS];                    // the query row, zero-padded to whole units
shared float part_sh[WG_SIZE];              // partial dot products [TILE][KEY_LANES]; the combine
shared float s_sh[TILE];                    // scores of the tile
shared float p_sh[TILE];                    // exp(score - running max)
shared float max_sh[WG_SIZE];               // per-subgroup maxima of the tile
shared float sum_sh[VAL_SETS];              // partial sums of the sets, at the end

// Unit u (elements 4u .. 4u + 3, zero past HEAD_DIM) of key (which 0) or value
// (which 1) j of KV head kvh: the batch's own rows from k/v, earlier from the caches.
vec4 kv_unit(uint which, uint j, uint kvh, uint u, uint pos0) {
  const bool batch = j >= pos0;
  const uint e = (batch ? j - pos0 : j) * KC + kvh * HEAD_DIM;  // first element of the row
  if (ALIGNED) {
    const uint i = e / 4u + u;
    if (batch) return which == 0u ? k4[i] : v4[i];
    return which == 0u ? k_cache4[i] : v_cache4[i];
  }
  vec4 x = vec4(0.0);
  for (uint c = 0u; c < 4u; ++c) {
    const uint d = 4u * u + c;
    if (d < HEAD_DIM) {
      if (batch) {
        x[c] = which == 0u ? k[e + d] : v[e + d];
      } else {
        x[c] = which == 0u ? k_cache[e + d] : v_cache[e + d];
      }
    }
  }
  return x;
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
  for (uint u = lid; u < UNITS; u += WG_SIZE) {
    vec4 x = vec4(0.0);
    for (uint c = 0u; c < 4u; ++c) {
      const uint d = 4u * u + c;
      if (d < HEAD_DIM) x[c] = q[t * QC + h * HEAD_DIM + d];
    }
    q_sh[u] = x;
  }
  barrier();

  const uint window = kp_step.window;
  const uint j_lo = (window > 0u && p + 1u > window) ? p + 1u - window : 0u;
  const uint j_hi = p;  // inclusive
  const uint key_slot = lid / KEY_LANES;
  const uint key_lane = lid % KEY_LANES;
  const uint val_set = lid / VAL_LANES;
  const uint val_lane = lid % VAL_LANES;
  const bool val_active = val_set < VAL_SETS;
  float run_max = NEG_BIG;
  float run_sum = 0.0;  // this set's keys only
  vec4 acc[VAL_UNITS];  // this set's keys only
  for (uint i = 0u; i < VAL_UNITS; ++i) acc[i] = vec4(0.0);

  for (uint j0 = j_lo; j0 <= j_hi; j0 += TILE) {
    const uint n_keys = min(TILE, j_hi - j0 + 1u);
    // Scores: lane key_lane of key key_slot takes units key_lane + m * KEY_LANES.
    float partial = 0.0;
    if (key_slot < n_keys) {
      const uint j = j0 + key_slot;
      [[unroll]] for (uint m = 0u; m < KEY_UNITS; ++m) {
        const uint u = key_lane + m * KEY_LANES;
        if (u < UNITS) partial += dot(q_sh[u], kv_unit(0u, j, kvh, u, pos0));
      }
    }
    part_sh[lid] = partial;
    barrier();
    float s = NEG_BIG;
    if (lid < n_keys) {
      s = 0.0;
      for (uint i = 0u; i < KEY_LANES; ++i) s += part_sh[lid * KEY_LANES + i];
      s *= SCALE;
      if (SOFTCAP > 0.0) s = SOFTCAP * kp_tanh(s / SOFTCAP);
      s_sh[lid] = s;
    }
#if KP_SUBGROUP_ARITH
    s = subgroupMax(s);
    if (subgroupElect()) max_sh[gl_SubgroupID] = s;
#endif
    barrier();
    // Online softmax: what was accumulated is rescaled by exp(old max - new max).
    float tile_max = NEG_BIG;
#if KP_SUBGROUP_ARITH
    for (uint i = 0u; i < gl_NumSubgroups; ++i) tile_max = max(tile_max, max_sh[i]);
#else
    for (uint i = 0u; i < n_keys; ++i) tile_max = max(tile_max, s_sh[i]);
#endif
    const float new_max = max(run_max, tile_max);
    const float alpha = exp(run_max - new_max);
    if (lid < n_keys) p_sh[lid] = exp(s_sh[lid] - new_max);
    barrier();
    // Values: set val_set takes keys val_set, val_set + VAL_SETS, ... of the tile.
    // VAL_BATCH keys at a time, all loads issued before they are used.
    if (val_active) {
      float sum = 0.0;
      for (uint jj = val_set; jj < n_keys; jj += VAL_SETS) sum += p_sh[jj];
      run_sum = run_sum * alpha + sum;
      for (uint i = 0u; i < VAL_UNITS; ++i) {
        const uint u = val_lane + i * VAL_LANES;
        vec4 a = acc[i] * alpha;
        for (uint jb = val_set; jb < n_keys && u < UNITS; jb += VAL_SETS * VAL_BATCH) {
          float w[VAL_BATCH];
          vec4 x[VAL_BATCH];
          [[unroll]] for (uint b = 0u; b < VAL_BATCH; ++b) {
            const uint jj = jb + b * VAL_SETS;
            w[b] = jj < n_keys ? p_sh[jj] : 0.0;
            x[b] = jj < n_keys ? kv_unit(1u, j0 + jj, kvh, u, pos0) : vec4(0.0);
          }
          [[unroll]] for (uint b = 0u; b < VAL_BATCH; ++b) a += w[b] * x[b];
        }
        acc[i] = a;
      }
    }
    run_max = new_max;
    // No barrier: the next tile writes part_sh, s_sh and p_sh only after
    // barriers that every reader of this tile's values has passed.
  }

  // Merge the sets: they share the running max, so outputs and sums add. One
  // component of the units at a time through part_sh (VAL_SETS * VAL_LANES <= WG_SIZE).
  if (val_active && val_lane == 0u) sum_sh[val_set] = run_sum;
  for (uint i = 0u; i < VAL_UNITS; ++i) {
    for (uint c = 0u; c < 4u; ++c) {
      if (val_active) part_sh[val_set * VAL_LANES + val_lane] = acc[i][c];
      barrier();
      const uint d = 4u * (lid + i * VAL_LANES) + c;
      if (lid < VAL_LANES && d < HEAD_DIM) {
        float total = 0.0;
        float a = 0.0;
        for (uint r = 0u; r < VAL_SETS; ++r) {
          total += sum_sh[r];
          a += part_sh[r * VAL_LANES + lid];
        }
        o[t * QC + h * HEAD_DIM + d] = a / total;
      }
      barrier();  // part_sh is rewritten for the next component
    }
  }
}
