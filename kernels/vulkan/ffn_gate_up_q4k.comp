// ffn_gate_up_q4k.comp: y[t, f] = gelu_tanh(x[t] . G[f]) * (x[t] . U[f]) with G and U
// stored as Q4_K (E a multiple of 256): the gate and up projections and the activation in one pass.
// Bindings: 1 x [T, E] f32; 2 gate [F, E] Q4_K; 3 up [F, E] Q4_K (144-byte blocks read as 16-byte units); 4 y [T, F] f32.
// Constants: E, F (kernel); WG_SIZE, ROWS (Vulkan: invocations and outputs per
// workgroup of the matvec entry).
// Entries (kp_matvec.glsl): main = matvec for any T, gemm = 32 x 64 tiles for prefill.
// Tested by tests/vulkan/vulkan_ops_test.cpp against the CPU backend.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"

KP_CONSTANTS

layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
// The same activations as vec4 (the matvec loads a unit's 4-aligned columns 16 bytes at a time).
layout(set = 0, binding = 1, std430) readonly buffer XBuffer4 { vec4 x4[]; };
layout(set = 0, binding = 2, std430) readonly buffer GateBuffer { uvec4 gate[]; };
layout(set = 0, binding = 3, std430) readonly buffer UpBuffer { uvec4 up[]; };
layout(set = 0, binding = 4, std430) writeonly buffer YBuffer { float y[]; };

vec4 kp_x4(uint i) { return x4[i]; }
uvec4 kp_w16(uint m, uint i) { return m == 0u ? gate[i] : up[i]; }

#define KP_ROW_ELEMS E
#define KP_OUT_COLS F
#define KP_N_MATS 2
#include "kp_q4k.glsl"
#include "kp_matvec.glsl"
