// repeat_penalty.cu: llama.cpp's repetition penalty (logical kernel
// repeat_penalty): for each distinct id in history[0 .. n_history), y[id] =
// x[id] > 0 ? x[id] / p : x[id] * p with p = params->repeat_penalty; every
// other y equals x.
//   bindings   x [1, V] f32, history [H, 1] i32, y [1, V] f32 (may alias x)
//   constants  V, H; BLOCK threads (one block: when y is not x, the copy and
//              the penalties are ordered by a barrier)
//   grid       (1)
//   Ids outside 0..V-1 are skipped; n_history is clamped to H.
//   tests      tests/cuda/cuda_ops_test.cpp, tests/cuda/nvrtc_compile_test.cpp
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    repeat_penalty_main(const KpParams* params, KpStepParams step, const float* x, const int32_t* history,
                        float* y) {
  kp_pdl_entry();
  const int n = min(int(params->n_history), int(H));
  const float penalty = params->repeat_penalty;
  if (y != x) {
    for (int i = threadIdx.x; i < int(V); i += blockDim.x) y[i] = x[i];
    __syncthreads();
  }
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int id = history[i];
    if (id < 0 || id >= int(V)) continue;
    bool first = true;  // only the first occurrence applies the penalty
    for (int j = 0; j < i && first; ++j) first = history[j] != id;
    if (!first) continue;
    const float v = x[id];
    y[id] = v > 0.0f ? v / penalty : v * penalty;
  }
}
