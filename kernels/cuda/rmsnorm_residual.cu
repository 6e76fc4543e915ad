// rmsnorm_residual.cu: y[t, :] = h[t, :] + rmsnorm(x[t, :]) * w, the norm of a
// branch output fused with the residual add (logical kernel rmsnorm_residual).
//   bindings   x [T, N] f32 (branch output), h [T, N] f32 (residual stream),
//              w [1, N] F32, y [T, N] f32 (may alias h)
//   constants  N, EPS; BLOCK threads per row (a multiple of 32)
//   grid       (T)
//   tests      tests/cuda/cuda_ops_test.cpp, tests/cuda/nvrtc_compile_test.cpp
#include "norm.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    rmsnorm_residual_main(const KpParams* params, KpStepParams step, const float* x, const float* h,
                          const float* w, float* y) {
  kp_pdl_entry();
  const size_t row = blockIdx.x;
  kp_rmsnorm_row<N, BLOCK>(x + row * N, w, h + row * N, y + row * N, EPS);
}
