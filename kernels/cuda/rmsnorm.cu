// rmsnorm.cu: y[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + EPS) * w (logical kernel
// rmsnorm; GGUF norm weights already hold Gemma's +1).
//   bindings   x [T, N] f32, w [1, N] F32, y [T, N] f32 (may alias x)
//   constants  N, EPS; BLOCK threads per row (a multiple of 32)
//   entries    main: every row, grid (T); last_row: only row T-1 (T = params->n_tokens)
//              into y [1, N], grid (1)
//   tests      tests/cuda/cuda_ops_test.cpp (both entries), tests/cuda/nvrtc_compile_test.cpp
#include "norm.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    rmsnorm_main(const KpParams* params, KpStepParams step, const float* x, const float* w, float* y) {
  kp_pdl_entry();
  const size_t row = blockIdx.x;
  kp_rmsnorm_row<N, BLOCK>(x + row * N, w, nullptr, y + row * N, EPS);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
    rmsnorm_last_row(const KpParams* params, KpStepParams step, const float* x, const float* w, float* y) {
  kp_pdl_entry();
  const size_t row = params->n_tokens > 0 ? params->n_tokens - 1 : 0;
  kp_rmsnorm_row<N, BLOCK>(x + row * N, w, nullptr, y, EPS);
}
