// matmul_q8_0.comp: y[t, n] = sum_k x[t, k] * W[n, k] with W stored as Q8_0 (K a multiple of 32).
// Bindings: 1 x [T, K] f32; 2 w [N, K] Q8_0, 34-byte blocks read as 32-bit words; 3 y [T, N] f32.
// Constants: K, N (kernel); WG_SIZE, ROWS (Vulkan: invocations and outputs per
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
layout(set = 0, binding = 2, std430) readonly buffer WBuffer { uint w[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };

vec4 kp_x4(uint i) { return x4[i]; }
uint kp_w4(uint m, uint i) { return w[i]; }

#define KP_ROW_ELEMS K
#define KP_OUT_COLS N
#define KP_N_MATS 1
#include "kp_q8_0.glsl"
#include "kp_matvec.glsl"
