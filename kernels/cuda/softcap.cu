// softcap.cu: y = CAP * tanh(x / CAP) elementwise (logical kernel softcap; Gemma's
// final logit soft-capping).
//   bindings   x [T, N] f32, y [T, N] f32 (may alias x)
//   constants  N, CAP; BLOCK threads per block
//   grid       (cdiv(N, 4 * BLOCK), T)
//   tests      tests/cuda/cuda_ops_test.cpp, tests/cuda/nvrtc_compile_test.cpp
#include "elementwise.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    softcap_main(const KpParams* params, KpStepParams step, const float* x, float* y) {
  kp_pdl_entry();
  kp_rowwise4<N>([&](size_t i) { y[i] = CAP * tanhf(x[i] / CAP); });
}
