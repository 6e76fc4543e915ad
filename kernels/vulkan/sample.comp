// sample.comp: chooses the next token from logits [1, V] and writes it to token[0].
// Entries:
//   argmax  the index of the largest logit (lowest index on ties)
//   sample  docs/kernels.md's rule with kp_params: greedy when temperature <= 0;
//           p_i = exp((l_i - max) / temperature); candidates l_i >= the top_k-th
//           largest logit (top_k > 0), p_i >= min_p * p_max (min_p > 0; p_max = 1);
//           then, in descending p (ascending index on ties), the shortest prefix
//           whose mass reaches top_p of the candidates' mass (top_p < 1); then the
//           first candidate in that order whose running mass exceeds
//           rand_u * (mass of the candidates).
// One workgroup. Nothing is sorted: each "first in that order whose running mass
// exceeds r" is found by bisection on the bits of p (mass of candidates with
// p >= c, one reduction per bit), then among the ties of that p by bisection on
// the index. When at most CAP candidates survive top_k / min_p they are first
// copied to shared memory, so the searches do not rescan all V logits.
// Each pass reads V / WG_SIZE logits per invocation and a draw takes about a
// hundred passes, hence the large workgroup (1024 by default): llvmpipe
// (lavapipe) also ends every loop of an invocation once the invocation has run
// 65535 loop iterations in all (LP_MAX_TGSI_LOOP_ITERATIONS), which 256000
// logits over 256 invocations would exceed.
// Bindings: 1 logits [1, V] f32; 2 token [1, 1] i32.
// Constants: V (kernel); WG_SIZE (Vulkan, a power of two, at most 1024). Grid [1, 1, 1].
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer LogitsBuffer { float logits[]; };
layout(set = 0, binding = 2, std430) writeonly buffer TokenBuffer { int token[]; };

#include "kp_reduce.glsl"

#define CAP 2048u
const uint NONE = 0xFFFFFFFFu;

shared float arg_v[WG_SIZE];
shared uint arg_i[WG_SIZE];
shared uint cand_idx[CAP];
shared float cand_logit[CAP];
shared uint cand_count;

// The sampling state, the same in every invocation, passed to each pass.
struct Filter {
  float max_logit;
  float temp;
  bool use_topk;
  uint topk_key;   // logit_key of the top_k-th largest logit
  float min_p;
  bool use_topp;
  uint topp_key;   // bits(p) and index of the last candidate kept by top_p
  uint topp_idx;
  bool compact;    // candidates are in cand_idx / cand_logit
  uint n_compact;
};

// Larger float -> larger key (for the top-k threshold on logits).
uint logit_key(float f) {
  const uint u = floatBitsToUint(f);
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

float prob(Filter f, float l) { return exp((l - f.max_logit) / f.temp); }

// Candidate test: top_k, min_p, and top_p once it is known.
bool is_candidate(Filter f, uint i, float l, float p) {
  if (f.use_topk && logit_key(l) < f.topk_key) return false;
  if (f.min_p > 0.0 && p < f.min_p) return false;
  if (f.use_topp) {
    const uint k = floatBitsToUint(p);
    if (k < f.topp_key || (k == f.topp_key && i > f.topp_idx)) return false;
  }
  return true;
}

uint n_elements(Filter f) { return f.compact ? f.n_compact : V; }
void element(Filter f, uint e, out uint i, out float l) {
  if (f.compact) {
    i = cand_idx[e];
    l = cand_logit[e];
  } else {
    i = e;
    l = logits[e];
  }
}

// Largest logit, lowest index on ties, over all V logits.
void find_argmax(out float best_v, out uint best_i) {
  float bv = 0.0;
  uint bi = NONE;
  for (uint i = gl_LocalInvocationID.x; i < V; i += WG_SIZE) {
    const float l = logits[i];
    if (bi == NONE || l > bv) {
      bv = l;
      bi = i;
    }
  }
  arg_v[gl_LocalInvocationID.x] = bv;
  arg_i[gl_LocalInvocationID.x] = bi;
  barrier();
  for (uint stride = WG_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (gl_LocalInvocationID.x < stride) {
      const float v2 = arg_v[gl_LocalInvocationID.x + stride];
      const uint i2 = arg_i[gl_LocalInvocationID.x + stride];
      const float v1 = arg_v[gl_LocalInvocationID.x];
      const uint i1 = arg_i[gl_LocalInvocationID.x];
      if (i2 != NONE && (i1 == NONE || v2 > v1 || (v2 == v1 && i2 < i1))) {
        arg_v[gl_LocalInvocationID.x] = v2;
        arg_i[gl_LocalInvocationID.x] = i2;
      }
    }
    barrier();
  }
  best_v = arg_v[0];
  best_i = arg_i[0];
  barrier();
}

// Mass of candidates with bits(p) >= c.
float mass_at_least(Filter f, uint c) {
  float s = 0.0;
  for (uint e = gl_LocalInvocationID.x; e < n_elements(f); e += WG_SIZE) {
    uint i;
    float l;
    element(f, e, i, l);
    const float p = prob(f, l);
    if (floatBitsToUint(p) >= c && is_candidate(f, i, l, p)) s += p;
  }
  return kp_wg_sum(s);
}

// Mass of candidates with bits(p) > c and the number with bits(p) == c.
void mass_above_and_ties(Filter f, uint c, out float above, out float ties) {
  float s = 0.0, n = 0.0;
  for (uint e = gl_LocalInvocationID.x; e < n_elements(f); e += WG_SIZE) {
    uint i;
    float l;
    element(f, e, i, l);
    const float p = prob(f, l);
    if (!is_candidate(f, i, l, p)) continue;
    const uint k = floatBitsToUint(p);
    if (k > c) s += p;
    if (k == c) n += 1.0;
  }
  above = kp_wg_sum(s);
  ties = kp_wg_sum(n);
}

// Candidates with bits(p) == c and index <= idx.
float ties_up_to(Filter f, uint c, uint idx) {
  float n = 0.0;
  for (uint e = gl_LocalInvocationID.x; e < n_elements(f); e += WG_SIZE) {
    uint i;
    float l;
    element(f, e, i, l);
    const float p = prob(f, l);
    if (i <= idx && floatBitsToUint(p) == c && is_candidate(f, i, l, p)) n += 1.0;
  }
  return kp_wg_sum(n);
}

// The first candidate in (p descending, index ascending) order whose running
// mass exceeds `target` (or reaches it, `inclusive`): its bits(p) and index.
void first_crossing(Filter f, float target, bool inclusive, out uint key, out uint idx) {
  const float total = mass_at_least(f, 0u);
  if (inclusive ? !(total >= target) : !(total > target)) {
    // Only rounding gets here (target = fraction * total): take the last
    // candidate that carries mass.
    target = total;
    inclusive = true;
  }
  uint v = 0u;
  for (int bit = 29; bit >= 0; --bit) {  // p <= 1: bits(p) <= 0x3f800000 < 2^30
    const uint c = v | (1u << uint(bit));
    const float m = mass_at_least(f, c);
    if (inclusive ? m >= target : m > target) v = c;
  }
  float above, ties;
  mass_above_and_ties(f, v, above, ties);
  const float pv = uintBitsToFloat(v);
  // How many of the tied candidates the running mass needs.
  float need = 1.0;
  if (pv > 0.0) need = inclusive ? ceil((target - above) / pv) : floor((target - above) / pv) + 1.0;
  need = clamp(need, 1.0, max(ties, 1.0));
  uint lo = 0u, hi = V - 1u;
  while (lo < hi) {
    const uint mid = lo + (hi - lo) / 2u;
    if (ties_up_to(f, v, mid) >= need) {
      hi = mid;
    } else {
      lo = mid + 1u;
    }
  }
  key = v;
  idx = lo;
}

void main() {
  const uint lid = gl_LocalInvocationID.x;
  float best_v;
  uint best_i;
  find_argmax(best_v, best_i);
#if ENTRY_sample
  Filter f;
  f.max_logit = best_v;
  f.temp = kp_params.temperature;
  f.use_topk = false;
  f.topk_key = 0u;
  f.min_p = kp_params.min_p;
  f.use_topp = false;
  f.topp_key = 0u;
  f.topp_idx = 0u;
  f.compact = false;
  f.n_compact = 0u;
  if (f.temp > 0.0) {
    const uint top_k = kp_params.top_k;
    if (top_k > 0u && top_k < V) {
      // The top_k-th largest logit: the largest key with at least top_k logits >= it.
      uint v = 0u;
      for (int bit = 31; bit >= 0; --bit) {
        const uint c = v | (1u << uint(bit));
        float n = 0.0;
        for (uint i = lid; i < V; i += WG_SIZE) n += logit_key(logits[i]) >= c ? 1.0 : 0.0;
        if (kp_wg_sum(n) >= float(top_k)) v = c;
      }
      f.use_topk = true;
      f.topk_key = v;
    }

    // Copy the candidates to shared memory when they fit.
    if (lid == 0u) cand_count = 0u;
    barrier();
    float n_cand = 0.0;
    for (uint i = lid; i < V; i += WG_SIZE) {
      const float l = logits[i];
      if (is_candidate(f, i, l, prob(f, l))) n_cand += 1.0;
    }
    n_cand = kp_wg_sum(n_cand);
    if (n_cand <= float(CAP)) {
      for (uint i = lid; i < V; i += WG_SIZE) {
        const float l = logits[i];
        if (is_candidate(f, i, l, prob(f, l))) {
          const uint slot = atomicAdd(cand_count, 1u);
          cand_idx[slot] = i;
          cand_logit[slot] = l;
        }
      }
      barrier();
      f.compact = true;
      f.n_compact = cand_count;
    }

    if (n_cand > 0.0) {
      float mass = mass_at_least(f, 0u);
      if (kp_params.top_p < 1.0) {
        uint key, idx;
        first_crossing(f, kp_params.top_p * mass, true, key, idx);
        f.use_topp = true;
        f.topp_key = key;
        f.topp_idx = idx;
        mass = mass_at_least(f, 0u);
      }
      uint key;
      first_crossing(f, kp_params.rand_u * mass, false, key, best_i);
    }
  }
#endif
  if (lid == 0u) token[0] = int(best_i);
}
