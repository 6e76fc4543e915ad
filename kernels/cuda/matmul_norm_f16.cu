// matmul_norm_f16.cu: y[t, n] = rmsnorm(x[t]) · W[n], W stored as F16 (logical
// kernel matmul_norm_f16): the input norm of a layer fused into the
// matrix-vector product that consumes it. Each block normalizes its token's
// row into shared memory (x * 1 / sqrt(mean(x^2) + EPS) * norm, f32 as
// rmsnorm.cu) and runs matmul_f16's product over it.
//   bindings   x [T, K] f32, w [N, K] F16 bytes, norm [1, K] F32, y [T, N] f32
//   constants  K, N, EPS; ROWS output rows per warp group, WARPS warps per
//              block, KSPLIT warps sharing a group's rows (as matmul_f16)
//   entries    main: grid (cdiv(N, ROWS * (WARPS / KSPLIT)), T); K * 4 bytes of shared memory
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "matvec.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS, 1)
    matmul_norm_f16_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* w,
                         const float* norm, float* y) {
  kp_matvec_norm<KpWeightF16, K, N, ROWS, WARPS, KSPLIT>(x, w, norm, EPS, y);
}
