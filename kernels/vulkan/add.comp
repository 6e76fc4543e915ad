// add.comp: y = a + b, elementwise over [T, N] (a plain residual add; y may alias b).
// Bindings: 1 a [T, N] f32; 2 b [T, N] f32; 3 y [T, N] f32.
// Constants: N (kernel); WG_SIZE (Vulkan). Grid [cdiv(N, WG_SIZE), T, 1].
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer ABuffer { float a[]; };
layout(set = 0, binding = 2, std430) readonly buffer BBuffer { float b[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= N) return;
  const uint e = gl_WorkGroupID.y * N + i;
  y[e] = a[e] + b[e];
}
