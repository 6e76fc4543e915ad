// kp_common.glsl: the first include of every kpath Vulkan kernel.
//   set 0, binding 0   KpParams kp_params (per batch; kernels/include/kp_params.h)
//   push constants     KpStepParams kp_step (per dispatch)
// and the subgroup extensions when the device has subgroup arithmetic
// (KP_SUBGROUP_ARITH, defined by the backend; docs in src/backend/vulkan/vk_pipeline.h).
// Include it right after #version and GL_GOOGLE_include_directive, before KP_CONSTANTS.
#ifndef KP_COMMON_GLSL
#define KP_COMMON_GLSL

#if KP_SUBGROUP_ARITH
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

#include "kp_params.h"

layout(set = 0, binding = 0, std430) readonly buffer KpParamsBuffer { KpParams kp_params; };
layout(push_constant, std430) uniform KpStepBlock { KpStepParams kp_step; };

#endif  // KP_COMMON_GLSL
