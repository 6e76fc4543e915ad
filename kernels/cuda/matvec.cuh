// matvec.cuh: the matrix-vector products behind the `main` entries of matmul_*,
// matmul_norm_*, ffn_gate_up_* and ffn_gate_up_resnorm_* (decode: one row of
// activations per token). The _norm and _resnorm forms first write the
// normalized row into shared memory (every block computes it; it is a few KB
// read from L2) and run the same product over it.
//
// Layout: a warp owns kRows consecutive output rows of one token; lane l walks
// the chunks c = l, l + 32, ... of those rows (16 bytes of quants per chunk for
// the K-quants, coalesced across the warp), loading the chunk's activations once
// and reusing them for all kRows rows; the partial sums meet in a warp
// shuffle reduction. For long rows (matmul's KSPLIT > 1) several warps share
// the rows, each taking every KSPLIT-th step of 32 chunks. Blocks hold kWarps
// warps; grid = (cdiv(rows, kRows * kWarps / KSPLIT), T). Row t of the batch is
// blockIdx.y, so any T works (each token re-reads W).
// Both wait for the previous kernel themselves (kp_pdl_wait), after asking L2
// for their block's weight rows: entry points call them without kp_pdl_entry.
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

// The rows of a block (a contiguous byte range of W, rows [first, first + n))
// into L2: asked for before the kernel waits for its predecessor, so the
// weights stream in while the previous kernel finishes. Row 0 of the batch asks.
template <class TWeight, int kKDim, int kNDim>
__device__ __forceinline__ void kp_matvec_prefetch(const uint8_t* w, size_t first, size_t n) {
  constexpr size_t kRowBytes = size_t(kKDim / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  kp_prefetch_l2(w + first * kRowBytes, w + (first + n) * kRowBytes, w + size_t(kNDim) * kRowBytes);
}

// Block-wide: xs[0..kCols) = (residual ? residual : 0) + x * inv_rms(x) * g,
// with inv_rms = 1 / sqrt(mean(x^2) + eps) as rmsnorm.cu; x, residual, g in
// global memory, xs in shared memory (read after the caller's barrier).
// `out`, when given, receives a copy of xs (global). kCols % 4 == 0.
template <int kCols, int kThreads>
__device__ __forceinline__ void kp_norm_row_to(const float* x, const float* residual, const float* g, float eps,
                                               float* xs, float* out, float* scratch) {
  static_assert(kCols % 4 == 0, "the normalized row is handled 4 values at a time");
  float ss = 0.0f;
  for (int i = 4 * threadIdx.x; i < kCols; i += 4 * kThreads) {
    const float4 v = kp_load_x4(x + i);
    ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
  }
  ss = kp_block_sum<kThreads>(ss, scratch);
  const float inv = 1.0f / sqrtf(ss / float(kCols) + eps);
  for (int i = 4 * threadIdx.x; i < kCols; i += 4 * kThreads) {
    const float4 v = kp_load_x4(x + i);
    const float4 gv = __ldg(reinterpret_cast<const float4*>(g + i));
    float4 r = make_float4(v.x * inv * gv.x, v.y * inv * gv.y, v.z * inv * gv.z, v.w * inv * gv.w);
    if (residual != nullptr) {
      const float4 hv = kp_load_x4(residual + i);
      r.x += hv.x; r.y += hv.y; r.z += hv.z; r.w += hv.w;
    }
    *reinterpret_cast<float4*>(xs + i) = r;
    if (out != nullptr) *reinterpret_cast<float4*>(out + i) = r;
  }
}

// yt[n] = xt · W[n] for this block's rows (x and y of one token; xt in global
// or shared memory). The block's kWarps warps form kWarps / kSlices groups of
// kRows rows; the kSlices warps of a group split the row length (long rows:
// more warps in flight per row) and meet in shared memory.
template <class TWeight, int kKDim, int kNDim, int kRows, int kWarps, int kSlices>
__device__ __forceinline__ void kp_matvec_block(const float* xt, const uint8_t* w, float* yt) {
  static_assert(kSlices >= 1 && kSlices <= kWarps, "KSPLIT must be 1 .. WARPS");
  constexpr int kGroups = kWarps / kSlices;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int group = warp / kSlices, slice = warp % kSlices;
  // Warps past the last whole group (WARPS not a multiple of KSPLIT) own no rows.
  const int row0 = group < kGroups ? (blockIdx.x * kGroups + group) * kRows : kNDim;
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
  kp_matvec_rows<TWeight, kKDim, kRows, kSlices>(xt, w, row0, kNDim, slice, acc);
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = kp_warp_sum(acc[r]);
  if constexpr (kSlices == 1) {
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (row0 + r < kNDim) yt[row0 + r] = acc[r];
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
      yt[row0 + lane] = sum;
    }
  }
}

// y[t, n] = x[t] · W[n]: x [T, kKDim], W [kNDim, kKDim], y [T, kNDim].
template <class TWeight, int kKDim, int kNDim, int kRows, int kWarps, int kSlices>
__device__ __forceinline__ void kp_matvec(const float* x, const uint8_t* w, float* y) {
  constexpr int kBlockRows = (kWarps / kSlices) * kRows;
  if (threadIdx.x == 0 && blockIdx.y == 0) {
    kp_matvec_prefetch<TWeight, kKDim, kNDim>(w, size_t(blockIdx.x) * kBlockRows, kBlockRows);
  }
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  kp_matvec_block<TWeight, kKDim, kNDim, kRows, kWarps, kSlices>(x + size_t(t) * kKDim, w,
                                                                 y + size_t(t) * kNDim);
}

// y[t, n] = (x[t] * inv_rms(x[t]) * g) · W[n] (matmul_norm_*): the row
// normalized into shared memory first.
template <class TWeight, int kKDim, int kNDim, int kRows, int kWarps, int kSlices>
__device__ __forceinline__ void kp_matvec_norm(const float* x, const uint8_t* w, const float* g, float eps,
                                               float* y) {
  constexpr int kBlockRows = (kWarps / kSlices) * kRows;
  __shared__ __align__(16) float xs[kKDim];
  __shared__ float scratch[32];
  if (threadIdx.x == 0 && blockIdx.y == 0) {
    kp_matvec_prefetch<TWeight, kKDim, kNDim>(w, size_t(blockIdx.x) * kBlockRows, kBlockRows);
  }
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  kp_norm_row_to<kKDim, 32 * kWarps>(x + size_t(t) * kKDim, nullptr, g, eps, xs, nullptr, scratch);
  __syncthreads();
  kp_matvec_block<TWeight, kKDim, kNDim, kRows, kWarps, kSlices>(xs, w, y + size_t(t) * kNDim);
}

// y[t, f] = gelu_tanh(x[t] · G[f]) * (x[t] · U[f]) for this block's rows, xt
// one token's activations (global or shared memory), yt its output row.
// A warp's kRows rows of G and of U share x.
template <class TWeight, int kEDim, int kFDim, int kRows>
__device__ __forceinline__ void kp_ffn_block(const float* xt, const uint8_t* gate, const uint8_t* up, float* yt) {
  static_assert(kEDim % TWeight::kChunkWeights == 0, "row length must be a multiple of the chunk size");
  constexpr int kChunks = kEDim / TWeight::kChunkWeights;
  constexpr size_t kRowBytes = size_t(kEDim / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = (blockIdx.x * (blockDim.x / 32) + warp) * kRows;
  if (row0 >= kFDim) return;
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
      if (row0 + r < kFDim) yt[row0 + r] = kp_gelu_tanh(g[r]) * u[r];
    }
  }
}

// The block's rows of G and U into L2 (threads 0 and 1), before the wait.
template <class TWeight, int kEDim, int kFDim, int kRows>
__device__ __forceinline__ void kp_ffn_prefetch(const uint8_t* gate, const uint8_t* up) {
  if (threadIdx.x < 2 && blockIdx.y == 0) {
    const size_t rows = (blockDim.x / 32) * kRows;
    kp_matvec_prefetch<TWeight, kEDim, kFDim>(threadIdx.x == 0 ? gate : up, size_t(blockIdx.x) * rows, rows);
  }
}

// y[t, f] = gelu_tanh(x[t] · G[f]) * (x[t] · U[f]): x [T, kEDim], G and U
// [kFDim, kEDim], y [T, kFDim].
template <class TWeight, int kEDim, int kFDim, int kRows>
__device__ __forceinline__ void kp_ffn_matvec(const float* x, const uint8_t* gate, const uint8_t* up, float* y) {
  kp_ffn_prefetch<TWeight, kEDim, kFDim, kRows>(gate, up);
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  kp_ffn_block<TWeight, kEDim, kFDim, kRows>(x + size_t(t) * kEDim, gate, up, y + size_t(t) * kFDim);
}

// ffn_gate_up_resnorm_*: h_out[t] = h[t] + rmsnorm(x[t]) * g_post (the block
// at blockIdx.x 0 writes it), n = rmsnorm(h_out[t]) * g_pre in shared memory,
// then y[t] as kp_ffn_matvec over n. kThreads = blockDim.x.
template <class TWeight, int kEDim, int kFDim, int kRows, int kThreads>
__device__ __forceinline__ void kp_ffn_matvec_resnorm(const float* x, const float* h, const uint8_t* gate,
                                                      const uint8_t* up, const float* g_post, const float* g_pre,
                                                      float eps, float* h_out, float* y) {
  __shared__ __align__(16) float xs[kEDim];
  __shared__ float scratch[32];
  kp_ffn_prefetch<TWeight, kEDim, kFDim, kRows>(gate, up);
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  const size_t row = size_t(t) * kEDim;
  // The new residual row: into xs (and h_out from one block); each thread
  // reads back only the values it wrote, so no barrier is needed before the
  // second norm reads xs.
  kp_norm_row_to<kEDim, kThreads>(x + row, h + row, g_post, eps, xs, blockIdx.x == 0 ? h_out + row : nullptr,
                                  scratch);
  kp_norm_row_to<kEDim, kThreads>(xs, nullptr, g_pre, eps, xs, nullptr, scratch);
  __syncthreads();
  kp_ffn_block<TWeight, kEDim, kFDim, kRows>(xs, gate, up, y + size_t(t) * kFDim);
}
