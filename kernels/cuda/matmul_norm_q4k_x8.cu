// matmul_norm_q4k_x8.cu: y[t, n] = x8(rmsnorm(x[t]) * norm) . W[n], W stored as Q4_K: the input norm
// (in double, rounded to f32 as rmsnorm writes it) and the 8-bit quantization of matmul_q4k_x8 in
// every block's prologue (logical kernel matmul_norm_q4k_x8).
//   bindings   x [T, K] f32, w [N, K] Q4_K bytes, norm [1, K] f32, y [T, N] f32
//   constants  K, N, EPS; ROWS output rows per warp, WARPS warps per block,
//              BLOCKS blocks (each walks row groups of ROWS * WARPS with stride BLOCKS)
//   entries    main: matrix-vector per token (matvec_x8.cuh), grid (BLOCKS, T)
//   tests      tests/cuda/cuda_ops_test.cpp (against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp (compiles, no spills)
#include "matvec_x8.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    matmul_norm_q4k_x8_main(const KpParams* params, KpStepParams step, const float* x, const uint8_t* w,
                            const float* norm, float* y) {
  kp_matvec_norm_x8<KpX8Q4_K, K, N, ROWS, WARPS>(x, w, norm, EPS, y);
}
