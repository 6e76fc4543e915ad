// ffn_gate_up_f16.cu: y[t, f] = gelu_tanh(x[t] . G[f]) * (x[t] . U[f]), G and U
// stored as F16 (binary16) (logical kernel ffn_gate_up_f16): the gate and up
// projections and the activation in one pass over x.
//   bindings   x [T, E] f32, gate [F, E] F16 bytes, up [F, E] F16 bytes, y [T, F] f32
//   constants  E, F; ROWS rows of G and of U per warp and WARPS warps per block (main)
//   entries    main: matrix-vector per token (matvec.cuh), grid (cdiv(F, ROWS*WARPS), T)
//              gemm: 64 x 64 tiles of both products (gemm.cuh), grid (cdiv(F, 64), cdiv(T, 64))
//   tests      tests/cuda/cuda_ops_test.cpp (both entries against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "gemm.cuh"
#include "matvec.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    ffn_gate_up_f16_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* gate,
                           const uint8_t* up, float* y) {
  kp_ffn_matvec<KpWeightF16, E, F, ROWS>(x, gate, up, y);
}

extern "C" __global__ void __launch_bounds__(KP_GEMM_THREADS)
    ffn_gate_up_f16_gemm(const KpParams* params, KpStepParams step, const float* x, const uint8_t* gate,
                           const uint8_t* up, float* y) {
  kp_pdl_entry();
  kp_gemm<KpWeightF16, E, F, true>(params, x, gate, up, y);
}
