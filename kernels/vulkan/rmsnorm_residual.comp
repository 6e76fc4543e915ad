// rmsnorm_residual.comp: y[t, :] = h[t, :] + x[t, :] / sqrt(mean(x[t, :]^2) + EPS) * w,
// Gemma 2's post-attention / post-FFN norm fused with the residual add. One
// workgroup per row; y may alias h.
// Bindings: 1 x [T, N] f32 (branch output); 2 h [T, N] f32 (residual stream);
// 3 w [1, N] f32; 4 y [T, N] f32.
// Constants: N, EPS (kernel); WG_SIZE (Vulkan, a power of two). Grid [T, 1, 1].
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer HBuffer { float h[]; };
layout(set = 0, binding = 3, std430) readonly buffer WBuffer { float w[]; };
layout(set = 0, binding = 4, std430) writeonly buffer YBuffer { float y[]; };

#include "kp_reduce.glsl"

void main() {
  const uint row = gl_WorkGroupID.x;
  const uint lid = gl_LocalInvocationID.x;
  float ss = 0.0;
  for (uint i = lid; i < N; i += WG_SIZE) {
    const float v = x[row * N + i];
    ss += v * v;
  }
  ss = kp_wg_sum(ss);
  const float inv = 1.0 / sqrt(ss / float(N) + EPS);
  for (uint i = lid; i < N; i += WG_SIZE) {
    const uint e = row * N + i;
    y[e] = h[e] + x[e] * inv * w[i];
  }
}
