/* kp_params.h: the one definition of the parameter blocks every kernel receives,
 * shared verbatim by C++ (backends, executor), GLSL (kernels/vulkan) and CUDA
 * (kernels/cuda). Only 4-byte scalars, so std430 / push-constant layout equals
 * the C layout; tests/runtime/params_layout_test.cpp checks the offsets.
 *
 *   KpParams      per batch: a small device buffer the host rewrites before each
 *                 submission (Vulkan: set 0 binding 0, readonly storage buffer;
 *                 CUDA: first kernel argument, const KpParams*).
 *   KpStepParams  per dispatch, fixed when the dispatch is recorded (Vulkan: push
 *                 constants; CUDA: second kernel argument, by value).
 */
#ifndef KP_PARAMS_H
#define KP_PARAMS_H

#if defined(VULKAN)
#define KP_U32 uint
#define KP_F32 float
#else
#include <stdint.h>
#define KP_U32 uint32_t
#define KP_F32 float
#endif

struct KpParams {
  KP_U32 n_tokens;        /* T: rows of the activations in this batch */
  KP_U32 pos0;            /* position of row 0 in the sequence */
  KP_U32 kv_len;          /* pos0 + n_tokens: cache rows valid after this batch */
  KP_U32 n_history;       /* valid entries in the token-history slot (repetition penalty) */
  KP_F32 temperature;     /* sampling; <= 0 means greedy */
  KP_U32 top_k;           /* 0 = off */
  KP_F32 top_p;           /* 1 = off */
  KP_F32 min_p;           /* 0 = off */
  KP_F32 rand_u;          /* uniform [0,1) drawn by the host for this token */
  KP_F32 repeat_penalty;  /* 1 = off */
  KP_U32 reserved0;
  KP_U32 reserved1;
};

struct KpStepParams {
  KP_U32 layer;           /* layer index, 0 outside the layers */
  KP_U32 window;          /* sliding window of this layer; 0 = full attention */
  KP_U32 reserved0;
  KP_U32 reserved1;
};

#endif /* KP_PARAMS_H */
