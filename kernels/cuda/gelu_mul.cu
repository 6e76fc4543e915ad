// gelu_mul.cu: y = gelu_tanh(g) * u elementwise, gelu_tanh(x) = 0.5 x (1 +
// tanh(sqrt(2/pi) (x + 0.044715 x^3))) (logical kernel gelu_mul).
//   bindings   g [T, F] f32, u [T, F] f32, y [T, F] f32 (may alias g)
//   constants  F; BLOCK threads per block
//   grid       (cdiv(F, 4 * BLOCK), T)
//   tests      tests/cuda/cuda_ops_test.cpp, tests/cuda/nvrtc_compile_test.cpp
#include "elementwise.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    gelu_mul_main(const KpParams* params, KpStepParams step, const float* g, const float* u, float* y) {
  kp_pdl_entry();
  kp_rowwise4<F>([&](size_t i) { y[i] = kp_gelu_tanh(g[i]) * u[i]; });
}
