// ffn_gate_up_resnorm_q6k_x8.cu: h_out[t] = h[t] + rmsnorm(x[t]) * norm_post; then
// y[t, f] = gelu_tanh(x8(n[t]) . G[f]) * (x8(n[t]) . U[f]) with n[t] = rmsnorm(h_out[t]) * norm_pre,
// G and U stored as Q6_K: the attention residual, both FFN-side norms (in double, rounded to f32
// as rmsnorm_residual and rmsnorm write them) and the 8-bit quantization in every block's prologue
// (logical kernel ffn_gate_up_resnorm_q6k_x8).
//   bindings   x [T, E] f32, h [T, E] f32, gate [F, E] Q6_K bytes, up [F, E] Q6_K bytes,
//              norm_post [1, E] f32, norm_pre [1, E] f32, h_out [T, E] f32, y [T, F] f32
//   constants  E, F, EPS; ROWS rows of G and of U per warp, WARPS warps per block,
//              BLOCKS blocks (each walks row groups of ROWS * WARPS with stride BLOCKS)
//   entries    main: matrix-vector per token (matvec_x8.cuh), grid (BLOCKS, T)
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "matvec_x8.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    ffn_gate_up_resnorm_q6k_x8_main(const KpParams* params, KpStepParams step, const float* x, const float* h,
                                    const uint8_t* gate, const uint8_t* up, const float* norm_post,
                                    const float* norm_pre, float* h_out, float* y) {
  kp_ffn_matvec_resnorm_x8<KpX8Q6_K, E, F, ROWS, WARPS>(x, h, gate, up, norm_post, norm_pre, EPS, h_out, y);
}
