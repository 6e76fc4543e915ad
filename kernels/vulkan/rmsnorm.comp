// rmsnorm.comp: y[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + EPS) * w (GGUF norm
// weights already hold Gemma's +1). One workgroup per row; y may alias x
// (each invocation reads its elements before it writes them).
// Bindings: 1 x [T, N] f32; 2 w [1, N] f32; 3 y [T, N] f32 ([1, N] for last_row).
// Constants: N, EPS (kernel); WG_SIZE (Vulkan, a power of two).
// Entries: main (grid [T, 1, 1]), last_row (grid [1, 1, 1]: only row T - 1,
// T = x.length() / N since x is bound to exactly the batch's rows).
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer WBuffer { float w[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

#include "kp_reduce.glsl"

void main() {
#if ENTRY_last_row
  const uint row = uint(x.length()) / N - 1u;
  const uint out_row = 0u;
#else
  const uint row = gl_WorkGroupID.x;
  const uint out_row = row;
#endif
  const uint lid = gl_LocalInvocationID.x;
  float ss = 0.0;
  for (uint i = lid; i < N; i += WG_SIZE) {
    const float v = x[row * N + i];
    ss += v * v;
  }
  ss = kp_wg_sum(ss);
  const float inv = 1.0 / sqrt(ss / float(N) + EPS);
  for (uint i = lid; i < N; i += WG_SIZE) y[out_row * N + i] = x[row * N + i] * inv * w[i];
}
