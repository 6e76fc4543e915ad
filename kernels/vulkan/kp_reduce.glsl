// kp_reduce.glsl: sums and maxima over a workgroup of WG_SIZE invocations
// (WG_SIZE: a power of two, declared through KP_CONSTANTS before this include).
// Every invocation must call them (they contain barriers) and gets the result.
// With subgroup arithmetic: subgroupAdd, then one value per subgroup in shared
// memory; otherwise a tree in shared memory.
#ifndef KP_REDUCE_GLSL
#define KP_REDUCE_GLSL

shared float kp_red[WG_SIZE];

float kp_wg_sum(float v) {
#if KP_SUBGROUP_ARITH
  v = subgroupAdd(v);
  if (subgroupElect()) kp_red[gl_SubgroupID] = v;
  barrier();
  float s = 0.0;
  for (uint i = 0u; i < gl_NumSubgroups; ++i) s += kp_red[i];
  barrier();
  return s;
#else
  const uint lid = gl_LocalInvocationIndex;
  kp_red[lid] = v;
  barrier();
  for (uint stride = WG_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) kp_red[lid] += kp_red[lid + stride];
    barrier();
  }
  const float s = kp_red[0];
  barrier();
  return s;
#endif
}

float kp_wg_max(float v) {
#if KP_SUBGROUP_ARITH
  v = subgroupMax(v);
  if (subgroupElect()) kp_red[gl_SubgroupID] = v;
  barrier();
  float m = kp_red[0];
  for (uint i = 1u; i < gl_NumSubgroups; ++i) m = max(m, kp_red[i]);
  barrier();
  return m;
#else
  const uint lid = gl_LocalInvocationIndex;
  kp_red[lid] = v;
  barrier();
  for (uint stride = WG_SIZE / 2u; stride > 0u; stride >>= 1u) {
    if (lid < stride) kp_red[lid] = max(kp_red[lid], kp_red[lid + stride]);
    barrier();
  }
  const float m = kp_red[0];
  barrier();
  return m;
#endif
}

#endif  // KP_REDUCE_GLSL
