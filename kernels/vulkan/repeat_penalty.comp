// repeat_penalty.comp: for each distinct id in history[0 .. n_history):
// y[id] = x[id] > 0 ? x[id] / p : x[id] * p (llama.cpp's rule), p =
// kp_params.repeat_penalty; every other y[i] = x[i]. Each invocation owns one
// logit and looks for it in the history (staged through shared memory), so
// repeated ids are penalized once and y may alias x.
// Bindings: 1 x [1, V] f32; 2 history [H, 1] i32; 3 y [1, V] f32.
// Constants: V, H (kernel); WG_SIZE (Vulkan). Grid [cdiv(V, WG_SIZE), 1, 1].
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(local_size_x_id = KP_ID_WG_SIZE) in;

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
layout(set = 0, binding = 2, std430) readonly buffer HistoryBuffer { int history[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

shared int hist_sh[WG_SIZE];

void main() {
  const uint i = gl_GlobalInvocationID.x;
  const uint lid = gl_LocalInvocationID.x;
  const uint n = min(kp_params.n_history, H);
  bool seen = false;
  for (uint c0 = 0u; c0 < n; c0 += WG_SIZE) {
    hist_sh[lid] = c0 + lid < n ? history[c0 + lid] : -1;
    barrier();
    const uint m = min(WG_SIZE, n - c0);
    for (uint c = 0u; c < m; ++c) seen = seen || hist_sh[c] == int(i);
    barrier();
  }
  if (i >= V) return;
  float value = x[i];
  if (seen) {
    const float pen = kp_params.repeat_penalty;
    value = value > 0.0 ? value / pen : value * pen;
  }
  y[i] = value;
}
