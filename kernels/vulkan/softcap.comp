// softcap.comp: y = CAP * tanh(x / CAP), elementwise over [T, N] (Gemma 2's final
// logit soft-capping; y may alias x). tanh from kp_math.glsl.
// Bindings: 1 x [T, N] f32; 2 y [T, N] f32.
// Constants: N, CAP (kernel); WG_SIZE (Vulkan). Grid [cdiv(N, WG_SIZE), T, 1].
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuffer { float y[]; };

#include "kp_math.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= N) return;
  const uint e = gl_WorkGroupID.y * N + i;
  y[e] = CAP * kp_tanh(x[e] / CAP);
}
