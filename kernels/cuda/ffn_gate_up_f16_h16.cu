// ffn_gate_up_f16_h16.cu: y[t, f] = gelu_tanh(h(x[t]) · h(G[f])) * (h(x[t]) · h(U[f])) on tensor
// cores, G and U stored as F16, h rounding to binary16, sums in f32 (logical kernel ffn_gate_up_f16_h16).
//   bindings   x [T, E] f32, gate [F, E] and up [F, E] F16 bytes, y [T, F] f32
//   constants  E, F; TT tokens per block (and 64 rows of each matrix), KB steps of E
//   entries    gemm: 256 threads, grid (cdiv(F, 64), cdiv(T, TT)) (gemm_h16.cuh)
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "gemm_h16.cuh"

extern "C" __global__ void __launch_bounds__(KP_H16_THREADS)
    ffn_gate_up_f16_h16_gemm(const KpParams* params, KpStepParams step, const float* x, const uint8_t* gate,
                              const uint8_t* up, float* y) {
  kp_pdl_entry();
  kp_gemm_h16<KpWeightF16, E, F, TT, 64, KB, true>(params, x, gate, up, y);
}
