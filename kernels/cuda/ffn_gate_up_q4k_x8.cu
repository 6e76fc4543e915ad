// ffn_gate_up_q4k_x8.cu: y[t, f] = gelu_tanh(x8(x[t]) . G[f]) * (x8(x[t]) . U[f]), G and U stored as
// Q4_K (144-byte super-blocks of 256) and x[t] quantized to 8 bits in blocks of 32 inside the kernel
// (logical kernel ffn_gate_up_q4k_x8).
//   bindings   x [T, E] f32, gate [F, E] Q4_K bytes, up [F, E] Q4_K bytes, y [T, F] f32
//   constants  E, F; ROWS rows of G and of U per warp, WARPS warps per block,
//              BLOCKS blocks (each walks row groups of ROWS * WARPS with stride BLOCKS)
//   entries    main: matrix-vector per token (matvec_x8.cuh), grid (BLOCKS, T)
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "matvec_x8.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    ffn_gate_up_q4k_x8_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* gate,
                             const uint8_t* up, float* y) {
  kp_ffn_matvec_x8<KpX8Q4_K, E, F, ROWS, WARPS>(x, gate, up, y);
}
