// gemm_h16.cuh: prefill products on tensor cores, behind the `gemm` entries of
// matmul_*_h16 and ffn_gate_up_*_h16. Operands are binary16 (activations and
// the decoded weights each rounded to nearest even), products summed in f32 by
// mma.sync.m16n8k16 (sm_80 and later: registry feature "mma_f16").
//
// A block of 256 threads (8 warps, 2 along tokens x 4 along outputs) computes a
// TT (tokens) x NB (output rows) tile of y, stepping over K KB at a time. Each
// step, every thread issues the loads of its share of the activations (f32) and
// weights (TWeight::load8, the raw bytes) of the step after next into registers
// before the warps multiply the current step from shared memory (ldmatrix
// fragments, rows padded by 16 bytes so the eight rows an ldmatrix reads fall
// in distinct banks); after the products it converts the next step's (loaded
// one step earlier; f32 -> f16, TWeight::decode8 -> f16) into the other of two
// shared buffers: each load has two steps of products to arrive, one barrier
// per step. The gated form (ffn_gate_up) holds NB rows of
// the gate and the same NB rows of the up projection, and its epilogue forms
// gelu_tanh(g) * u in registers.
// Grid = (cdiv(N, NB), cdiv(T, TT)); the token count is params->n_tokens,
// bounded by the grid. Rows past N and tokens past the batch read as zeros.
#pragma once

#include "mma.cuh"

#define KP_H16_THREADS 256

namespace kp_h16_detail {
constexpr int kWarpsT = 2, kWarpsN = 4;
}  // namespace kp_h16_detail

// Weights k..k+7 of a row (loaded by TWeight::load8) as four f16x2 words.
template <class TWeight>
__device__ __forceinline__ uint4 kp_h16_decode8(const typename TWeight::Raw& raw, int k) {
  float f[8];
  TWeight::decode8(raw, k, f);
  return make_uint4(kp_pack_h2(f[0], f[1]), kp_pack_h2(f[2], f[3]), kp_pack_h2(f[4], f[5]), kp_pack_h2(f[6], f[7]));
}

template <>
__device__ __forceinline__ uint4 kp_h16_decode8<KpWeightF16>(const uint4& raw, int) {
  return raw;
}

// y[t, n] = h(x[t]) · h(W[n]) for t < T, n < kNDim (h: round to f16). With
// kGated, y[t, f] = gelu_tanh(h(x[t]) · h(G[f])) * (h(x[t]) · h(U[f])) (w = G,
// w2 = U).
template <class TWeight, int kKDim, int kNDim, int kTT, int kNB, int kTileK, bool kGated>
__device__ __forceinline__ void kp_gemm_h16(const KpParams* params, const float* x, const uint8_t* w, const uint8_t* w2,
                                            float* y) {
  using namespace kp_h16_detail;
  static_assert(kTileK == 32 || kTileK == 64, "KB is 32 or 64");
  static_assert(kKDim % kTileK == 0, "gemm_h16 needs K to be a multiple of KB");
  constexpr int kStride = kTileK + 8;  // halves per shared row
  static_assert(kKDim % TWeight::kBlockWeights == 0, "row length must be a whole number of quant blocks");
  static_assert(kTT == 64 || kTT == 128, "TT is 64 or 128");
  constexpr int kMats = kGated ? 2 : 1;
  constexpr int kRowsB = kMats * kNB;  // weight rows in shared memory
  static_assert(kRowsB == 64 || kRowsB == 128, "NB (times 2 when gated) is 64 or 128");
  constexpr size_t kRowBytes = size_t(kKDim / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  // Per warp: kWT tokens (kMT fragments of 16) x kNW rows of each matrix (kTPM
  // fragments of 8).
  constexpr int kWT = kTT / kWarpsT, kMT = kWT / 16;
  constexpr int kNW = kNB / kWarpsN, kTPM = kNW / 8, kNT = kMats * kTPM;
  static_assert(kTPM % 2 == 0, "each warp needs an even number of 8-row fragments per matrix");
  // Loaders: kXT threads per activation row, kXV values each; kWTh threads per
  // weight row, kWV weights each.
  constexpr int kXT = KP_H16_THREADS / kTT, kXV = kTileK / kXT;
  constexpr int kWTh = KP_H16_THREADS / kRowsB, kWV = kTileK / kWTh;
  static_assert(kXV % 8 == 0 && kWV % 8 == 0, "loaders move whole runs of 8");
  static_assert(2 * (kTT + kRowsB) * kStride * 2 <= 48 * 1024,
                "two buffers of TT + NB (x2 gated) rows of KB halves must fit "
                "in 48 KiB of shared memory");

  __shared__ __align__(16) uint16_t xs[2][kTT][kStride];
  __shared__ __align__(16) uint16_t ws[2][kRowsB][kStride];

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int n_tok = min(int(params->n_tokens), int(gridDim.y) * kTT);
  const int t0 = blockIdx.y * kTT, n0 = blockIdx.x * kNB;
  if (t0 >= n_tok) return;

  const int xr = tid / kXT, xk = (tid % kXT) * kXV;
  const bool x_ok = t0 + xr < n_tok;
  const float* xrow = x + size_t(x_ok ? t0 + xr : 0) * kKDim;
  const int wr = tid / kWTh, wk = (tid % kWTh) * kWV;
  const int wn = n0 + wr % kNB;
  const bool w_ok = wn < kNDim;
  const uint8_t* wrow = (kGated && wr >= kNB ? w2 : w) + size_t(w_ok ? wn : 0) * kRowBytes;

  // Two register slots of loaded steps: step s + 2 loads into the slot step s
  // was stored from, so each load has two steps of products to arrive.
  float4 xv[2][kXV / 4];
  typename TWeight::Raw wv[2][kWV / 8];
  auto load = [&](int slot, int k0) {
#pragma unroll
    for (int i = 0; i < kXV / 4; ++i) xv[slot][i] = x_ok ? kp_load_f4(xrow + k0 + xk + 4 * i) : make_float4(0, 0, 0, 0);
    if (w_ok) {
#pragma unroll
      for (int i = 0; i < kWV / 8; ++i) wv[slot][i] = TWeight::load8(wrow, k0 + wk + 8 * i);
    }
  };
  auto store = [&](int slot, int buf, int k0) {
#pragma unroll
    for (int i = 0; i < kXV / 8; ++i) {
      const float4 a = xv[slot][2 * i], b = xv[slot][2 * i + 1];
      *reinterpret_cast<uint4*>(&xs[buf][xr][xk + 8 * i]) =
          make_uint4(kp_pack_h2(a.x, a.y), kp_pack_h2(a.z, a.w), kp_pack_h2(b.x, b.y), kp_pack_h2(b.z, b.w));
    }
#pragma unroll
    for (int i = 0; i < kWV / 8; ++i) {
      *reinterpret_cast<uint4*>(&ws[buf][wr][wk + 8 * i]) =
          w_ok ? kp_h16_decode8<TWeight>(wv[slot][i], k0 + wk + 8 * i) : make_uint4(0u, 0u, 0u, 0u);
    }
  };

  const int warp_t = warp / kWarpsN, warp_n = warp % kWarpsN;
  // Shared row of this warp's weight fragment j (matrix j / kTPM).
  auto b_row = [&](int j) { return (j / kTPM) * kNB + warp_n * kNW + (j % kTPM) * 8; };

  float acc[kMT][kNT][4];
#pragma unroll
  for (int i = 0; i < kMT; ++i)
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

  constexpr int kSteps = kKDim / kTileK;
  load(0, 0);
  if (kSteps > 1) load(1, kTileK);
  store(0, 0, 0);
  __syncthreads();
  // Steps in pairs, so that slots and buffers are known at compile time: step
  // s = s0 + buf multiplies shared buffer buf while slot buf ^ 1 holds s + 1.
  for (int s0 = 0; s0 < kSteps; s0 += 2) {
#pragma unroll
    for (int buf = 0; buf < 2; ++buf) {
      const int s = s0 + buf;
      if (s >= kSteps) break;
      if (s + 2 < kSteps) load(buf, (s + 2) * kTileK);
#pragma unroll
      for (int kk = 0; kk < kTileK; kk += 16) {
        uint32_t a[kMT][4], b[kNT][2];
#pragma unroll
        for (int i = 0; i < kMT; ++i) {
          kp_ldsm_x4(a[i], &xs[buf][warp_t * kWT + i * 16 + lane % 16][kk + (lane / 16) * 8]);
        }
#pragma unroll
        for (int j = 0; j < kNT; j += 2) {
          uint32_t r[4];
          kp_ldsm_x4(r, &ws[buf][b_row(j) + lane % 8 + (lane / 16) * 8][kk + ((lane / 8) % 2) * 8]);
          b[j][0] = r[0];
          b[j][1] = r[1];
          b[j + 1][0] = r[2];
          b[j + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < kMT; ++i)
#pragma unroll
          for (int j = 0; j < kNT; ++j) kp_mma_h16(acc[i][j], a[i], b[j]);
      }
      if (s + 1 < kSteps) store(buf ^ 1, buf ^ 1, (s + 1) * kTileK);
      __syncthreads();
    }
  }

  // Fragment element e of acc[i][j]: token row g (+8 for e >= 2), column 2q +
  // (e & 1).
  const int g = lane / 4, q = lane % 4;
#pragma unroll
  for (int i = 0; i < kMT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int t = t0 + warp_t * kWT + i * 16 + g + 8 * h;
      if (t >= n_tok) continue;
      float* yrow = y + size_t(t) * kNDim;
#pragma unroll
      for (int j = 0; j < kTPM; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int n = n0 + warp_n * kNW + j * 8 + 2 * q + e;
          if (n >= kNDim) continue;
          const float v = acc[i][j][2 * h + e];
          yrow[n] = kGated ? kp_gelu_tanh(v) * acc[i][j + kTPM][2 * h + e] : v;
        }
      }
    }
  }
}
