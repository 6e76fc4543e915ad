// rope_neox.comp: rotary position embedding, NeoX half split. For row t, head
// hd and i < HEAD_DIM / 2: theta = positions[t] * THETA^(-2i / HEAD_DIM) and
// (x[i], x[i + HEAD_DIM/2]) is rotated by theta. As docs/kernels.md says, the
// frequency is the f32 pow (correctly rounded here, kp_pow_exact) and theta its
// f32 product with the position; sin/cos accurate at large angles. y may alias x.
// Bindings: 1 x [T, C] f32; 2 positions [T, 1] i32; 3 y [T, C] f32.
// Constants: C, HEAD_DIM, THETA (kernel); WG_SIZE (Vulkan).
// Grid [cdiv(C / 2, WG_SIZE), T, 1]: one invocation per rotated pair.
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer PosBuffer { int positions[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

#include "kp_math.glsl"

void main() {
  const uint pair = gl_GlobalInvocationID.x;
  const uint half_dim = HEAD_DIM / 2u;
  if (pair >= C / 2u) return;
  const uint t = gl_WorkGroupID.y;
  const uint head = pair / half_dim;
  const uint i = pair % half_dim;
  const uint e = t * C + head * HEAD_DIM + i;
  const float freq = kp_pow_exact(THETA, -float(2u * i) / float(HEAD_DIM));
  const float theta = float(positions[t]) * freq;
  float s, c;
  kp_sincos(theta, s, c);
  const float x0 = x[e];
  const float x1 = x[e + half_dim];
  y[e] = x0 * c - x1 * s;
  y[e + half_dim] = x0 * s + x1 * c;
}
