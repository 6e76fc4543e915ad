// ffn_gate_up_resnorm_q4k.cu: the attention residual, both norms around it
// and ffn_gate_up_q4k in one dispatch (logical kernel ffn_gate_up_resnorm_q4k):
//   h_out[t] = h[t] + rmsnorm(x[t]) * norm_post         (as rmsnorm_residual.cu)
//   y[t, f]  = gelu_tanh(n · G[f]) * (n · U[f]),  n = rmsnorm(h_out[t]) * norm_pre,
// G and U stored as Q4_K. Each block computes h_out[t] and n into shared memory
// (the block at x = 0 also writes h_out), then runs ffn_gate_up_q4k's product.
// h_out must not alias h (other blocks still read h).
//   bindings   x [T, E] f32, h [T, E] f32, gate [F, E] Q4_K, up [F, E] Q4_K,
//              norm_post [1, E] F32, norm_pre [1, E] F32, h_out [T, E] f32, y [T, F] f32
//   constants  E, F, EPS; ROWS rows of G and of U per warp, WARPS warps per block
//   entries    main: grid (cdiv(F, ROWS * WARPS), T); E * 4 bytes of shared memory
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "matvec.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS, 1)
    ffn_gate_up_resnorm_q4k_main(const KpParams* params, KpStepParams step, const float* x, const float* h,
                                 const uint8_t* gate, const uint8_t* up, const float* norm_post,
                                 const float* norm_pre, float* h_out, float* y) {
  kp_ffn_matvec_resnorm<KpWeightQ4_K, E, F, ROWS, 32 * WARPS>(x, h, gate, up, norm_post, norm_pre, EPS, h_out, y);
}
