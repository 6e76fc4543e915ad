// matvec.cuh: the matrix-vector products behind the `main` entries of matmul_*
// and ffn_gate_up_* (decode: one row of activations per token).
//
// Layout: a warp owns kRows consecutive output rows of one token; lane l walks
// the chunks c = l, l + 32, ... of those rows (16 bytes of quants per chunk for
// the K-quants, coalesced across the warp), loading the chunk's activations once
// and reusing them for all kRows rows; the partial sums meet in a warp
// shuffle reduction. For long rows (matmul's KSPLIT > 1) several warps share
// the rows, each taking every KSPLIT-th step of 32 chunks. Blocks hold kWarps
// warps; grid = (cdiv(rows, kRows * kWarps / KSPLIT), T). Row t of the batch is
// blockIdx.y, so any T works (each token re-reads W).
#pragma once

#include "common.cuh"

// Iterations of a lane over `chunks` chunks in steps of `stride`, and how many
// of them to unroll: short loops whole, so that every load is in flight at
// once; longer ones two at a time (an odd count is left rolled: ptxas spills
// on unroll-by-2 remainders).
template <int kChunks, int kStride>
struct KpChunkLoop {
  static constexpr int kIters = (kChunks + kStride - 1) / kStride;
  static constexpr int kUnroll = kIters <= 4 ? kIters : (kIters % 2 == 0 ? 2 : 1);
};

// acc[r] += x · W[row0 + r] over this lane's chunks c = lane + 32 * (slice +
// kSlices * i) (rows past n_rows add nothing); x is one activation row.
template <class TWeight, int kKDim, int kRows, int kSlices>
__device__ __forceinline__ void kp_matvec_rows(const float* x, const uint8_t* w, int row0, int n_rows, int slice,
                                               float* acc) {
  static_assert(kKDim % TWeight::kBlockWeights == 0, "row length must be a whole number of quant blocks");
  static_assert(kKDim % TWeight::kChunkWeights == 0, "row length must be a multiple of the chunk size");
  constexpr int kChunks = kKDim / TWeight::kChunkWeights;
  constexpr size_t kRowBytes = size_t(kKDim / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  typedef KpChunkLoop<kChunks, 32 * kSlices> Loop;
  const int lane = threadIdx.x % 32;
#pragma unroll Loop::kUnroll
  for (int it = 0; it < Loop::kIters; ++it) {
    const int c = lane + 32 * (slice + kSlices * it);
    if (kChunks % (32 * kSlices) != 0 && c >= kChunks) break;
    float xv[TWeight::kChunkWeights];
    TWeight::load_x(x, c, xv);
    const typename TWeight::Aux aux = TWeight::aux(xv);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (row0 + r < n_rows) acc[r] += TWeight::dot(w + size_t(row0 + r) * kRowBytes, c, xv, aux);
    }
  }
}

// y[t, n] = x[t] · W[n]: x [T, kKDim], W [kNDim, kKDim], y [T, kNDim].
// The block's kWarps warps form kWarps / kSlices groups of kRows rows; the
// kSlices warps of a group split the row length (long rows: more warps in
// flight per row) and meet in shared memory.
template <class TWeight, int kKDim, int kNDim, int kRows, int kWarps, int kSlices>
__device__ __forceinline__ void kp_matvec(const float* x, const uint8_t* w, float* y) {
  static_assert(kSlices >= 1 && kSlices <= kWarps, "KSPLIT must be 1 .. WARPS");
  constexpr int kGroups = kWarps / kSlices;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp / kSlices, slice = warp % kSlices;
  const int t = blockIdx.y;
  // Warps past the last whole group (WARPS not a multiple of KSPLIT) own no rows.
  const int row0 = group < kGroups ? (blockIdx.x * kGroups + group) * kRows : kNDim;
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  kp_matvec_rows<TWeight, kKDim, kRows, kSlices>(x + size_t(t) * kKDim, w, row0, kNDim, slice, acc);
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = kp_warp_sum(acc[r]);
  if constexpr (kSlices == 1) {
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (row0 + r < kNDim) y[size_t(t) * kNDim + row0 + r] = acc[r];
      }
    }
  } else {
    __shared__ float part[kWarps][kRows];
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) part[warp][r] = acc[r];
    }
    __syncthreads();
    if (slice == 0 && lane < kRows && row0 + lane < kNDim) {
      float sum = 0.0f;
#pragma unroll
      for (int s = 0; s < kSlices; ++s) sum += part[warp + s][lane];
      y[size_t(t) * kNDim + row0 + lane] = sum;
    }
  }
}

// y[t, f] = gelu_tanh(x[t] · G[f]) * (x[t] · U[f]): x [T, kEDim], G and U
// [kFDim, kEDim], y [T, kFDim]. A warp's kRows rows of G and of U share x.
template <class TWeight, int kEDim, int kFDim, int kRows>
__device__ __forceinline__ void kp_ffn_matvec(const float* x, const uint8_t* gate, const uint8_t* up, float* y) {
  static_assert(kEDim % TWeight::kChunkWeights == 0, "row length must be a multiple of the chunk size");
  constexpr int kChunks = kEDim / TWeight::kChunkWeights;
  constexpr size_t kRowBytes = size_t(kEDim / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int t = blockIdx.y;
  const int row0 = (blockIdx.x * (blockDim.x / 32) + warp) * kRows;
  if (row0 >= kFDim) return;
  const float* xt = x + size_t(t) * kEDim;
  float g[kRows], u[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) g[r] = u[r] = 0.0f;
  typedef KpChunkLoop<kChunks, 32> Loop;
#pragma unroll Loop::kUnroll
  for (int it = 0; it < Loop::kIters; ++it) {
    const int c = lane + 32 * it;
    if (kChunks % 32 != 0 && c >= kChunks) break;
    float xv[TWeight::kChunkWeights];
    TWeight::load_x(xt, c, xv);
    const typename TWeight::Aux aux = TWeight::aux(xv);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (row0 + r < kFDim) {
        g[r] += TWeight::dot(gate + size_t(row0 + r) * kRowBytes, c, xv, aux);
        u[r] += TWeight::dot(up + size_t(row0 + r) * kRowBytes, c, xv, aux);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    g[r] = kp_warp_sum(g[r]);
    u[r] = kp_warp_sum(u[r]);
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (row0 + r < kFDim) y[size_t(t) * kFDim + row0 + r] = kp_gelu_tanh(g[r]) * u[r];
    }
  }
}
