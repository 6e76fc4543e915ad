// gemm.cuh: tiled products behind the `gemm` entries of matmul_* and
// ffn_gate_up_* (prefill: many activation rows share each weight tile).
//
// A block of 256 threads computes a 64 (tokens) x 64 (output rows) tile of y,
// stepping over K 32 at a time: each thread loads 8 activations and decodes 8
// weights (TWeight::decode8) into shared memory (k-major, so the inner loop reads
// float4s), prefetching the next step's values into registers while the tile
// is multiplied; each thread accumulates a 4 x 4 block in registers. Plain
// f32 FMAs: activations stay f32 end to end (tensor-core tf32 would cost
// ~1e-3 relative error). Grid = (cdiv(N, 64), cdiv(T, 64)); the token count is
// params->n_tokens, bounded by the grid.
#pragma once

#include "common.cuh"

#define KP_GEMM_THREADS 256

namespace kp_gemm_detail {
constexpr int kTileT = 64, kTileN = 64, kTileK = 32, kPad = 4;
}

// Loads 8 activations x[t][k..k+7] (zeros for rows past the batch).
__device__ __forceinline__ void kp_gemm_load_x(const float* row, bool ok, int k, float* out) {
  if (ok) {
    const float4 a = kp_load_f4(row + k), b = kp_load_f4(row + k + 4);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = 0.0f;
  }
}

template <class TWeight>
__device__ __forceinline__ void kp_gemm_load_w(const uint8_t* row, bool ok, int k, float* out) {
  if (ok) {
    TWeight::decode8(row, k, out);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = 0.0f;
  }
}

// y[t, n] = x[t] · W[n] for t < T, n < kNDim. With kGated, y[t, f] =
// gelu_tanh(x[t] · G[f]) * (x[t] · U[f]) (w = G, w2 = U).
template <class TWeight, int kKDim, int kNDim, bool kGated>
__device__ __forceinline__ void kp_gemm(const KpParams* params, const float* x, const uint8_t* w,
                                        const uint8_t* w2, float* y) {
  using namespace kp_gemm_detail;
  static_assert(kKDim % kTileK == 0, "gemm needs K to be a multiple of 32");
  static_assert(kKDim % TWeight::kBlockWeights == 0, "row length must be a whole number of quant blocks");
  constexpr size_t kRowBytes = size_t(kKDim / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  constexpr int kMats = kGated ? 2 : 1;
  __shared__ __align__(16) float xs[kTileK][kTileT + kPad];
  __shared__ __align__(16) float ws[kMats][kTileK][kTileN + kPad];

  const int tid = threadIdx.x;
  const int n_tok = min(int(params->n_tokens), int(gridDim.y) * kTileT);
  const int t0 = blockIdx.y * kTileT, n0 = blockIdx.x * kTileN;
  if (t0 >= n_tok) return;

  // Loader: tile row lr, 8 values from k offset lk.
  const int lr = tid / 4, lk = (tid % 4) * 8;
  const bool x_ok = t0 + lr < n_tok, w_ok = n0 + lr < kNDim;
  const float* xrow = x + size_t(x_ok ? t0 + lr : 0) * kKDim;
  const size_t woff = size_t(w_ok ? n0 + lr : 0) * kRowBytes;
  // Compute: tokens ty*4 .. +3, rows tx*4 .. +3 of the tile.
  const int ty = tid / 16, tx = tid % 16;

  float acc[kMats][4][4];
#pragma unroll
  for (int m = 0; m < kMats; ++m)
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[m][i][j] = 0.0f;

  float xr[8], wr[kMats][8];
  kp_gemm_load_x(xrow, x_ok, lk, xr);
  kp_gemm_load_w<TWeight>(w + woff, w_ok, lk, wr[0]);
  if (kGated) kp_gemm_load_w<TWeight>(w2 + woff, w_ok, lk, wr[kMats - 1]);

  for (int k0 = 0; k0 < kKDim; k0 += kTileK) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      xs[lk + i][lr] = xr[i];
#pragma unroll
      for (int m = 0; m < kMats; ++m) ws[m][lk + i][lr] = wr[m][i];
    }
    __syncthreads();
    if (k0 + kTileK < kKDim) {  // prefetch the next step while this one is multiplied
      kp_gemm_load_x(xrow, x_ok, k0 + kTileK + lk, xr);
      kp_gemm_load_w<TWeight>(w + woff, w_ok, k0 + kTileK + lk, wr[0]);
      if (kGated) kp_gemm_load_w<TWeight>(w2 + woff, w_ok, k0 + kTileK + lk, wr[kMats - 1]);
    }
#pragma unroll 8
    for (int kk = 0; kk < kTileK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&xs[kk][ty * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
      for (int m = 0; m < kMats; ++m) {
        const float4 b = *reinterpret_cast<const float4*>(&ws[m][kk][tx * 4]);
        const float bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int j = 0; j < 4; ++j) acc[m][i][j] += av[i] * bv[j];
      }
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int t = t0 + ty * 4 + i;
    if (t >= n_tok) break;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx * 4 + j;
      if (n < kNDim) {
        y[size_t(t) * kNDim + n] =
            kGated ? kp_gelu_tanh(acc[0][i][j]) * acc[kMats - 1][i][j] : acc[0][i][j];
      }
    }
  }
}
