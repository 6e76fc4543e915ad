// embed_f32.comp: y[t, :] = dequant(table[ids[t], :]) * SCALE, an embedding lookup of
// F32 rows. An id outside the table gives a row of zeros.
// Bindings: 1 ids [T, 1] i32; 2 table [V, E] F32 (read as uint); 3 y [T, E] f32.
// Constants: E, SCALE (kernel); WG_SIZE (Vulkan). Grid [cdiv(E, 8 WG_SIZE), T, 1]:
// each invocation writes 8 consecutive values.
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer IdsBuffer { int ids[]; };
layout(set = 0, binding = 2, std430) readonly buffer TableBuffer { uint table[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

uint kp_w4(uint m, uint i) { return table[i]; }

#define KP_ROW_ELEMS E
#define KP_DEQUANT_ONLY
#include "kp_f32.glsl"

void main() {
  const uint t = gl_WorkGroupID.y;
  const uint k = 8u * (gl_WorkGroupID.x * WG_SIZE + gl_LocalInvocationID.x);
  if (k >= E) return;
  const int id = ids[t];
  // Rows the binding holds (E * 4u bytes each).
  const uint n_rows = uint(table.length()) * 4u / (E * 4u);
  float v[8];
  if (id >= 0 && uint(id) < n_rows) {
    kp_dequant8(0u, uint(id), k, v);
  } else {
    for (uint i = 0u; i < 8u; ++i) v[i] = 0.0;
  }
  for (uint i = 0u; i < 8u; ++i) {
    if (k + i < E) y[t * E + k + i] = v[i] * SCALE;
  }
}
