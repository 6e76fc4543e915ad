// attention_rope.cu: rope_neox on q and k followed by attention, in one
// dispatch (logical kernel attention_rope): what attention.cu computes, with
// q rotated once per block, the batch's keys rotated as they are read, and the
// rotated keys written to the cache (which so holds rotated keys, as after a
// rope_neox step).
//   bindings   q [T, QC] f32, k [T, KC] f32, v [T, KC] f32, positions [T, 1] i32,
//              o [T, QC] f32, k_cache [CTX, KC] kv, v_cache [CTX, KC] kv
//   constants  those of attention.cu, and THETA (rope base); the rotation of
//              dimension pair i < HEAD_DIM / 2 uses the f32 frequency
//              THETA^(-2i/HEAD_DIM) evaluated in double and the f32 angle
//              positions[t] * freq, as rope_neox.cu
//   workspace, grid, block: as attention.cu
//   tests      tests/cuda/cuda_ops_test.cpp (the attention cases), tests/cuda/nvrtc_compile_test.cpp
#include "attention.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    attention_rope_main(const KpParams* params, KpStepParams step, const float* q, const float* k, const float* v,
                        const int32_t* positions, float* o, kp_kv* k_cache, kp_kv* v_cache, float* work) {
  kp_attention<true>(params, step, q, k, v, positions, o, k_cache, v_cache, work);
}
