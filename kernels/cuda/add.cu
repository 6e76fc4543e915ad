// add.cu: y = a + b elementwise, the plain residual add (logical kernel add).
//   bindings   a [T, N] f32, b [T, N] f32, y [T, N] f32 (may alias b)
//   constants  N; BLOCK threads per block
//   grid       (cdiv(N, 4 * BLOCK), T)
//   tests      tests/cuda/cuda_ops_test.cpp, tests/cuda/nvrtc_compile_test.cpp
#include "elementwise.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    add_main(const KpParams* params, KpStepParams step, const float* a, const float* b, float* y) {
  kp_pdl_entry();
  kp_rowwise4<N>([&](size_t i) { y[i] = a[i] + b[i]; });
}
