// gelu_mul.comp: y = gelu_tanh(g) * u, elementwise over [T, F] (y may alias g);
// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), kp_math.glsl.
// Bindings: 1 g [T, F] f32; 2 u [T, F] f32; 3 y [T, F] f32.
// Constants: F (kernel); WG_SIZE (Vulkan). Grid [cdiv(F, WG_SIZE), T, 1].
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer GBuffer { float g[]; };
layout(set = 0, binding = 2, std430) readonly buffer UBuffer { float u[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

#include "kp_math.glsl"

void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= F) return;
  const uint e = gl_WorkGroupID.y * F + i;
  y[e] = kp_gelu(g[e]) * u[e];
}
