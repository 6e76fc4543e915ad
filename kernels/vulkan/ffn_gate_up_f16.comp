// ffn_gate_up_f16.comp: y[t, f] = gelu_tanh(x[t] . G[f]) * (x[t] . U[f]) with G and U
// stored as F16: the gate and up projections and the activation in one pass.
// Bindings: 1 x [T, E] f32; 2 gate [F, E] F16; 3 up [F, E] F16 (half weights read as 32-bit words (two per word)); 4 y [T, F] f32.
// Constants: E, F (kernel); WG_SIZE, ROWS (Vulkan: invocations and outputs per
// workgroup of the matvec entry).
// Entries (kp_matvec.glsl): main = matvec for any T, gemm = 32 x 64 tiles for prefill.
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
// The same activations as vec4, for 16-byte loads.
layout(set = 0, binding = 1, std430) readonly buffer XBuffer4 { vec4 x4[]; };
layout(set = 0, binding = 2, std430) readonly buffer GateBuffer { uint gate[]; };
layout(set = 0, binding = 3, std430) readonly buffer UpBuffer { uint up[]; };
// The same weights as 16-byte units.
layout(set = 0, binding = 2, std430) readonly buffer GateBuffer16 { uvec4 gate16[]; };
layout(set = 0, binding = 3, std430) readonly buffer UpBuffer16 { uvec4 up16[]; };
layout(set = 0, binding = 4, std430) writeonly buffer YBuffer { float y[]; };

float kp_x(uint i) { return x[i]; }
vec4 kp_x4(uint i) { return x4[i]; }
uvec4 kp_w16(uint m, uint i) { return m == 0u ? gate16[i] : up16[i]; }
uint kp_w4(uint m, uint i) { return m == 0u ? gate[i] : up[i]; }

#define KP_ROW_ELEMS E
#define KP_OUT_COLS F
#define KP_N_MATS 2
#include "kp_f16.glsl"
#include "kp_matvec.glsl"
