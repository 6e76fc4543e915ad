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
  if constexpr (kCols % 4 == 0) {
    // Every load of the row (x, w and the residual) is issued before the sum
    // of squares is reduced, so the block waits on memory once, not once per
    // step; the per-thread sum keeps the order of the loop it replaces.
    constexpr int kQuads = kCols / 4;
    constexpr int kIters = (kQuads + kThreads - 1) / kThreads;
    float4 v[kIters], g[kIters], h[kIters];
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const int q = tid + i * kThreads;
      if (q < kQuads) {
        v[i] = *reinterpret_cast<const float4*>(x + 4 * q);
        g[i] = __ldg(reinterpret_cast<const float4*>(w + 4 * q));
        h[i] = residual != nullptr ? *reinterpret_cast<const float4*>(residual + 4 * q) : make_float4(0, 0, 0, 0);
      }
    }
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      if (tid + i * kThreads < kQuads) ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
    }
    ss = kp_block_sum<kThreads>(ss, scratch);
    const float inv = 1.0f / sqrtf(ss / float(kCols) + eps);
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const int q = tid + i * kThreads;
      if (q >= kQuads) continue;
      float4 r = make_float4(v[i].x * inv * g[i].x, v[i].y * inv * g[i].y, v[i].z * inv * g[i].z, v[i].w * inv * g[i].w);
      if (residual != nullptr) {
        r.x += h[i].x; r.y += h[i].y; r.z += h[i].z; r.w += h[i].w;
      }
      *reinterpret_cast<float4*>(y + 4 * q) = r;
    }
  } else {
    float ss = 0.0f;
    for (int i = tid; i < kCols; i += kThreads) ss += x[i] * x[i];
    ss = kp_block_sum<kThreads>(ss, scratch);
    const float inv = 1.0f / sqrtf(ss / float(kCols) + eps);
    for (int i = tid; i < kCols; i += kThreads) {
      const float r = x[i] * inv * __ldg(w + i);
      y[i] = residual != nullptr ? residual[i] + r : r;
    }
  }
}
