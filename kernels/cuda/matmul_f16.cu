// matmul_f16.cu: y[t, n] = sum_k x[t, k] * W[n, k], W stored as F16 (binary16) and
// decoded inside the kernel (logical kernel matmul_f16).
//   bindings   x [T, K] f32, w [N, K] F16 bytes, y [T, N] f32
//   constants  K, N; for main: ROWS output rows per warp group, WARPS warps per
//              block, KSPLIT warps sharing a group's rows (long rows)
//   entries    main: matrix-vector per token (matvec.cuh), grid (cdiv(N, ROWS * (WARPS / KSPLIT)), T)
//              gemm: 64 x 64 tiles (gemm.cuh), grid (cdiv(N, 64), cdiv(T, 64))
//   tests      tests/cuda/cuda_ops_test.cpp (both entries against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "gemm.cuh"
#include "matvec.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    matmul_f16_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* w, float* y) {
  kp_matvec<KpWeightF16, K, N, ROWS, WARPS, KSPLIT>(x, w, y);
}

extern "C" __global__ void __launch_bounds__(KP_GEMM_THREADS)
    matmul_f16_gemm(const KpParams* params, KpStepParams step, const float* x, const uint8_t* w, float* y) {
  kp_pdl_entry();
  kp_gemm<KpWeightF16, K, N, false>(params, x, w, nullptr, y);
}
