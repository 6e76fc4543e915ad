// matmul_q6k_x8.cu: y[t, n] = sum_k x8(x[t])[k] * W[n, k], W stored as Q6_K (210-byte super-blocks of 256)
// and x[t] quantized to 8 bits in blocks of 32 inside the kernel (logical kernel matmul_q6k_x8).
//   bindings   x [T, K] f32, w [N, K] Q6_K bytes, y [T, N] f32
//   constants  K, N; ROWS output rows per warp, WARPS warps per block, BLOCKS
//              blocks (each walks row groups of ROWS * WARPS with stride BLOCKS)
//   entries    main: matrix-vector per token (matvec_x8.cuh), grid (BLOCKS, T)
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "matvec_x8.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    matmul_q6k_x8_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* w, float* y) {
  kp_matvec_x8<KpX8Q6_K, K, N, ROWS, WARPS>(x, w, y);
}
