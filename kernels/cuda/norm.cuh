// norm.cuh: one RMS-normalised row, shared by rmsnorm.cu and rmsnorm_residual.cu.
#pragma once

#include "common.cuh"

// y = (residual ? residual : 0) + x / sqrt(mean(x^2) + eps) * w over kCols
// values, by one block of kThreads threads. y may alias x or residual: every
// element is read and written by the same thread.
template <int kCols, int kThreads>
__device__ __forceinline__ void kp_rmsnorm_row(const float* x, const float* w, const float* residual, float* y,
                                               float eps) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "BLOCK must be a multiple of 32, at most 1024");
  __shared__ float scratch[32];
  const int tid = threadIdx.x;
  float ss = 0.0f;
  if constexpr (kCols % 4 == 0) {
    for (int i = 4 * tid; i < kCols; i += 4 * kThreads) {
      const float4 v = *reinterpret_cast<const float4*>(x + i);
      ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
    for (int i = tid; i < kCols; i += kThreads) ss += x[i] * x[i];
  }
  ss = kp_block_sum<kThreads>(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / float(kCols) + eps);
  if constexpr (kCols % 4 == 0) {
    for (int i = 4 * tid; i < kCols; i += 4 * kThreads) {
      const float4 v = *reinterpret_cast<const float4*>(x + i);
      const float4 g = __ldg(reinterpret_cast<const float4*>(w + i));
      float4 r = make_float4(v.x * inv * g.x, v.y * inv * g.y, v.z * inv * g.z, v.w * inv * g.w);
      if (residual != nullptr) {
        const float4 h = *reinterpret_cast<const float4*>(residual + i);
        r.x += h.x; r.y += h.y; r.z += h.z; r.w += h.w;
      }
      *reinterpret_cast<float4*>(y + i) = r;
    }
  } else {
    for (int i = tid; i < kCols; i += kThreads) {
      const float r = x[i] * inv * __ldg(w + i);
      y[i] = residual != nullptr ? residual[i] + r : r;
    }
  }
}
