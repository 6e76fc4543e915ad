// matmul_q5k_h16.cu: y[t, n] = sum_k h(x[t, k]) * h(W[n, k]) on tensor cores, W stored as Q5_K and
// decoded inside the kernel, h rounding to binary16, sums in f32 (logical kernel matmul_q5k_h16).
//   bindings   x [T, K] f32, w [N, K] Q5_K bytes, y [T, N] f32
//   constants  K, N; TT tokens and NB output rows per block, KB steps of K
//   entries    gemm: 256 threads, grid (cdiv(N, NB), cdiv(T, TT)) (gemm_h16.cuh)
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "gemm_h16.cuh"

extern "C" __global__ void __launch_bounds__(KP_H16_THREADS)
    matmul_q5k_h16_gemm(const KpParams* params, KpStepParams step, const float* x, const uint8_t* w, float* y) {
  kp_pdl_entry();
  kp_gemm_h16<KpWeightQ5_K, K, N, TT, NB, KB, false>(params, x, w, nullptr, y);
}
