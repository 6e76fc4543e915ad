// rope_neox.cu: rotary position embedding, NeoX half split (logical kernel
// rope_neox): for row t, each head and i < HEAD_DIM/2, (x[i], x[i + HEAD_DIM/2])
// is rotated by positions[t] * THETA^(-2i/HEAD_DIM).
//   bindings   x [T, C] f32, positions [T, 1] i32, y [T, C] f32 (may alias x)
//   constants  C (heads * HEAD_DIM), HEAD_DIM, THETA; BLOCK threads per block
//   grid       (cdiv(C / 2, BLOCK), T): one thread per rotated pair
//   The frequency THETA^(-2i/HEAD_DIM) is the f32 power of docs/kernels.md,
//   evaluated in double and rounded once (the correctly rounded f32 result);
//   the angle is the f32 product with the position, as on the CPU.
//   tests      tests/cuda/cuda_ops_test.cpp, tests/cuda/nvrtc_compile_test.cpp
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    rope_neox_main(const KpParams* params, KpStepParams step, const float* x, const int32_t* positions, float* y) {
  kp_pdl_entry();
  static_assert(HEAD_DIM % 2 == 0 && C % HEAD_DIM == 0, "C must be whole heads of even HEAD_DIM");
  constexpr int kHalf = HEAD_DIM / 2;
  const int pair = blockIdx.x * blockDim.x + threadIdx.x;
  if (pair >= int(C / 2)) return;
  const int t = blockIdx.y;
  const int head = pair / kHalf, i = pair % kHalf;
  const float exponent = -2.0f * float(i) / float(HEAD_DIM);
  const float freq = float(pow(double(THETA), double(exponent)));
  const float angle = float(__ldg(positions + t)) * freq;
  float s, c;
  sincosf(angle, &s, &c);
  const size_t at = size_t(t) * C + size_t(head) * HEAD_DIM + i;
  const float x0 = x[at], x1 = x[at + kHalf];
  y[at] = x0 * c - x1 * s;
  y[at + kHalf] = x0 * s + x1 * c;
}
