// ffn_gate_up_q8_0.cu: y[t, f] = gelu_tanh(x[t] . G[f]) * (x[t] . U[f]), G and U
// stored as Q8_0 (34-byte blocks of 32) (logical kernel ffn_gate_up_q8_0): the gate and up
// projections and the activation in one pass over x.
//   bindings   x [T, E] f32, gate [F, E] Q8_0 bytes, up [F, E] Q8_0 bytes, y [T, F] f32
//   constants  E, F; ROWS rows of G and of U per warp and WARPS warps per block (main)
//   entries    main: matrix-vector per token (matvec.cuh), grid (cdiv(F, ROWS*WARPS), T)
//              gemm: 64 x 64 tiles of both products (gemm.cuh), grid (cdiv(F, 64), cdiv(T, 64))
//   tests      tests/cuda/cuda_ops_test.cpp (both entries against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "gemm.cuh"
#include "matvec.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    ffn_gate_up_q8_0_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* gate,
                           const uint8_t* up, float* y) {
  kp_ffn_matvec<KpWeightQ8_0, E, F, ROWS>(x, gate, up, y);
}

extern "C" __global__ void __launch_bounds__(KP_GEMM_THREADS)
    ffn_gate_up_q8_0_gemm(const KpParams* params, KpStepParams step, const float* x, const uint8_t* gate,
                           const uint8_t* up, float* y) {
  kp_pdl_entry();
  kp_gemm<KpWeightQ8_0, E, F, true>(params, x, gate, up, y);
}
