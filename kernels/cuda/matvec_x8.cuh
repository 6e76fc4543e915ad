// matvec_x8.cuh: matrix-vector products over activations quantized to 8 bits,
// the `main` entries of matmul_q4k_x8, matmul_q6k_x8, ffn_gate_up_q4k_x8 and
// ffn_gate_up_q6k_x8, and of their fused forms matmul_norm_*_x8 (the input
// norm first) and ffn_gate_up_resnorm_*_x8 (the attention residual and both
// FFN-side norms first) (decode: one row of activations per token).
//
// Each block first quantizes its token's activation row (normalized first in
// registers by the fused forms) into shared memory:
// blocks of 32 values, d = amax / 127 and q = round-half-even(x * (1 / d)) (0
// where d is below FLT_MIN, zero or subnormal), each an IEEE-rounded f32
// operation, exactly as the CPU reference
// (src/backend/cpu/cpu_kernels_matmul.cpp, quantize_x8); beside q it keeps d
// and d * sum(q) of every block (the latter for the K-quant mins). The products
// then run on integers: four 8-bit products per dp4a, where the f32 kernels of
// matvec.cuh spend two instructions per weight and read four bytes of
// activations per weight.
//
// Layout as matvec.cuh: a warp owns kRows consecutive rows; lane l walks the
// chunks c = l, l + 32, ... (16 bytes of quants each), loading the chunk's
// activations once for all kRows rows; partial sums meet in a warp shuffle.
// A block holds kWarps warps, i.e. kRows * kWarps rows, and walks row groups
// blockIdx.x, blockIdx.x + gridDim.x, ... (a grid smaller than the number of
// groups quantizes x fewer times: the output head's 256,000 rows). Row t of the
// batch is blockIdx.y.
#pragma once

#include "common.cuh"
#include "matvec.cuh"

// One token's activations as 8-bit integers: q[k] for k < kKDim, and per block
// b of 32 values d[b] and s[b] = d[b] * sum(q of block b).
template <int kKDim>
struct KpX8Row {
  static_assert(kKDim % 32 == 0, "rows of 8-bit activations are whole blocks of 32");
  int8_t q[kKDim];
  float d[kKDim / 32];
  float s[kKDim / 32];
};

// A row of kKDim values spread over a block of kThreads threads as float4s:
// thread i holds quads i, i + kThreads, ... (eight consecutive lanes hold one
// block of 32). Every load is issued before the first use.
template <int kKDim, int kThreads>
struct KpX8Regs {
  static_assert(kThreads % 32 == 0 && kKDim % 32 == 0, "whole warps, whole blocks of 32");
  static constexpr int kQuads = kKDim / 4;
  static constexpr int kIters = (kQuads + kThreads - 1) / kThreads;
  float4 v[kIters];
  static __device__ __forceinline__ bool has(int i) { return int(threadIdx.x) + i * kThreads < kQuads; }
  static __device__ __forceinline__ int quad(int i) { return int(threadIdx.x) + i * kThreads; }
  __device__ __forceinline__ void load(const float* x) {
#pragma unroll
    for (int i = 0; i < kIters; ++i) v[i] = has(i) ? kp_load_x4(x + 4 * quad(i)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
};

// Sum of a double over a block of kThreads threads; every thread gets it.
// `scratch` holds 32 doubles of shared memory.
template <int kThreads>
__device__ __forceinline__ double kp_block_sum_f64(double v, double* scratch) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(KP_FULL_MASK, v, o);
  if (kThreads == 32) return v;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = lane < kThreads / 32 ? scratch[lane] : 0.0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) total += __shfl_xor_sync(KP_FULL_MASK, total, o);
  return total;
}

// In registers: r = (residual ? residual : 0) + x * inv_rms(x) * g, rounded to
// f32, with the CPU's arithmetic (src/backend/cpu/cpu_kernels_norm.cpp): the
// sum of squares and the products in double, so the rounded values agree with
// the CPU's but for sums landing within a double rounding of an f32 boundary,
// and the 8-bit quantization that follows sees the same values. `out`, when
// given, receives r (global memory).
template <int kKDim, int kThreads>
__device__ __forceinline__ void kp_x8_norm(KpX8Regs<kKDim, kThreads>& x, const float* residual, const float* g,
                                           float eps, float* out, double* scratch) {
  typedef KpX8Regs<kKDim, kThreads> Regs;
  double ss = 0.0;
#pragma unroll
  for (int i = 0; i < Regs::kIters; ++i) {
    const float4 v = x.v[i];
    ss += double(v.x) * double(v.x) + double(v.y) * double(v.y) + double(v.z) * double(v.z) + double(v.w) * double(v.w);
  }
  ss = kp_block_sum_f64<kThreads>(ss, scratch);
  const double s = 1.0 / sqrt(ss / double(kKDim) + double(eps));
#pragma unroll
  for (int i = 0; i < Regs::kIters; ++i) {
    if (!Regs::has(i)) continue;
    const int k = 4 * Regs::quad(i);
    const float4 gv = __ldg(reinterpret_cast<const float4*>(g + k));
    const float4 v = x.v[i];
    double r[4] = {double(v.x) * s * double(gv.x), double(v.y) * s * double(gv.y), double(v.z) * s * double(gv.z),
                   double(v.w) * s * double(gv.w)};
    if (residual != nullptr) {
      const float4 h = kp_load_x4(residual + k);
      r[0] += double(h.x); r[1] += double(h.y); r[2] += double(h.z); r[3] += double(h.w);
    }
    x.v[i] = make_float4(float(r[0]), float(r[1]), float(r[2]), float(r[3]));
    if (out != nullptr) *reinterpret_cast<float4*>(out + k) = x.v[i];
  }
}

// Block-wide: quantizes a row held in registers into `row` (shared memory;
// read after the caller's barrier).
template <int kKDim, int kThreads>
__device__ __forceinline__ void kp_x8_quantize(const KpX8Regs<kKDim, kThreads>& x, KpX8Row<kKDim>& row) {
  typedef KpX8Regs<kKDim, kThreads> Regs;
#pragma unroll
  for (int i = 0; i < Regs::kIters; ++i) {
    const float4 v = x.v[i];
    // kQuads is a multiple of 8, so a group of 8 lanes is wholly in or out.
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(KP_FULL_MASK, amax, o));
    const float d = __fdiv_rn(amax, 127.0f);
    int q[4] = {0, 0, 0, 0};
    if (d >= 1.17549435e-38f) {  // FLT_MIN: below it 1 / d overflows; such a block quantizes to zeros
      const float id = __fdiv_rn(1.0f, d);
      const float e[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k) q[k] = max(-127, min(127, __float2int_rn(__fmul_rn(e[k], id))));
    }
    int sum = q[0] + q[1] + q[2] + q[3];
#pragma unroll
    for (int o = 4; o > 0; o >>= 1) sum += __shfl_xor_sync(KP_FULL_MASK, sum, o);
    if (Regs::has(i)) {
      const int quad = Regs::quad(i);
      const uint32_t packed = (uint32_t(q[0]) & 0xFFu) | ((uint32_t(q[1]) & 0xFFu) << 8) |
                              ((uint32_t(q[2]) & 0xFFu) << 16) | ((uint32_t(q[3]) & 0xFFu) << 24);
      *reinterpret_cast<uint32_t*>(row.q + 4 * quad) = packed;
      if (quad % 8 == 0) {
        row.d[quad / 8] = d;
        row.s[quad / 8] = d * float(sum);
      }
    }
  }
}

// Q4_K over 8-bit activations. Chunk c as KpWeightQ4_K: block c/8, i = c%8,
// qs bytes [16i, 16i+16): 16 weights of sub-block 2j (low nibbles) and 16 of
// sub-block 2j+1 (high nibbles), j = i/2, h = i%2. The sub-blocks of 32 are
// the activation blocks 8 * (c/8) + 2j and + 1; the lane with h = 0 adds the
// mins' term of both whole sub-blocks.
struct KpX8Q4_K {
  static constexpr int kBlockWeights = 256, kBlockBytes = 144, kChunkWeights = 32;
  struct X {
    int4 lo, hi;
    float d_lo, d_hi, s_lo, s_hi;
  };
  template <int kKDim>
  static __device__ __forceinline__ X load_x(const KpX8Row<kKDim>& row, int c) {
    const int i = c % 8, base = 256 * (c / 8) + 64 * (i / 2) + 16 * (i % 2), b = base / 32;
    X x;
    x.lo = *reinterpret_cast<const int4*>(row.q + base);
    x.hi = *reinterpret_cast<const int4*>(row.q + base + 32);
    x.d_lo = row.d[b];
    x.d_hi = row.d[b + 1];
    x.s_lo = i % 2 == 0 ? row.s[b] : 0.0f;
    x.s_hi = i % 2 == 0 ? row.s[b + 1] : 0.0f;
    return x;
  }
  static __device__ __forceinline__ float dot(const uint8_t* w_row, int c, const X& x) {
    const uint8_t* b = w_row + (c / 8) * kBlockBytes;
    const int i = c % 8, j = i / 2;
    const uint4 h = __ldg(reinterpret_cast<const uint4*>(b));
    const uint4 q = __ldg(reinterpret_cast<const uint4*>(b + 16 + 16 * i));
    int s_lo = 0, s_hi = 0;
    s_lo = __dp4a(int(q.x & 0x0F0F0F0Fu), x.lo.x, s_lo);
    s_lo = __dp4a(int(q.y & 0x0F0F0F0Fu), x.lo.y, s_lo);
    s_lo = __dp4a(int(q.z & 0x0F0F0F0Fu), x.lo.z, s_lo);
    s_lo = __dp4a(int(q.w & 0x0F0F0F0Fu), x.lo.w, s_lo);
    s_hi = __dp4a(int((q.x >> 4) & 0x0F0F0F0Fu), x.hi.x, s_hi);
    s_hi = __dp4a(int((q.y >> 4) & 0x0F0F0F0Fu), x.hi.y, s_hi);
    s_hi = __dp4a(int((q.z >> 4) & 0x0F0F0F0Fu), x.hi.z, s_hi);
    s_hi = __dp4a(int((q.w >> 4) & 0x0F0F0F0Fu), x.hi.w, s_hi);
    float sc_lo, m_lo, sc_hi, m_hi;
    kp_kquant_scale_min(h.y, h.z, h.w, 2 * j, &sc_lo, &m_lo);
    kp_kquant_scale_min(h.y, h.z, h.w, 2 * j + 1, &sc_hi, &m_hi);
    const float d = kp_h2f(kp_half(h.x & 0xFFFFu)), dmin = kp_h2f(kp_half(h.x >> 16));
    return d * (sc_lo * x.d_lo * float(s_lo) + sc_hi * x.d_hi * float(s_hi)) -
           dmin * (m_lo * x.s_lo + m_hi * x.s_hi);
  }
};

// Q6_K over 8-bit activations. Chunk c as KpWeightQ6_K: block c/8, i = c%8,
// half n = i/4, l0 = 8 * (i%4): four runs of 8 weights at 128n + 32r + l0
// (r = 0..3), each in activation block 8 * (c/8) + 4n + r and under scale
// 8n + l0/16 + 2r. Bytes of q - 32 (signed) go straight into dp4a.
struct KpX8Q6_K {
  static constexpr int kBlockWeights = 256, kBlockBytes = 210, kChunkWeights = 32;
  struct X {
    int2 run[4];
    float d[4];
  };
  template <int kKDim>
  static __device__ __forceinline__ X load_x(const KpX8Row<kKDim>& row, int c) {
    const int i = c % 8, base = 256 * (c / 8) + 128 * (i / 4), l0 = 8 * (i % 4);
    X x;
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      x.run[r] = *reinterpret_cast<const int2*>(row.q + base + 32 * r + l0);
      x.d[r] = row.d[base / 32 + r];
    }
    return x;
  }
  static __device__ __forceinline__ float dot(const uint8_t* w_row, int c, const X& x) {
    const uint8_t* b = w_row + (c / 8) * kBlockBytes;
    const int i = c % 8, n = i / 4, l0 = 8 * (i % 4);
    const uint2 ql0 = kp_load_u64_a2_inner(b + 64 * n + l0);
    const uint2 ql1 = kp_load_u64_a2_inner(b + 64 * n + 32 + l0);
    const uint2 qh = kp_load_u64_a2_inner(b + 128 + 32 * n + l0);
    const uint32_t lo[2] = {ql0.x, ql0.y}, hi[2] = {ql1.x, ql1.y}, hb[2] = {qh.x, qh.y};
    int s[4] = {0, 0, 0, 0};
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      const uint32_t q0 = (lo[w] & 0x0F0F0F0Fu) | ((hb[w] << 4) & 0x30303030u);
      const uint32_t q1 = (hi[w] & 0x0F0F0F0Fu) | ((hb[w] << 2) & 0x30303030u);
      const uint32_t q2 = ((lo[w] >> 4) & 0x0F0F0F0Fu) | (hb[w] & 0x30303030u);
      const uint32_t q3 = ((hi[w] >> 4) & 0x0F0F0F0Fu) | ((hb[w] >> 2) & 0x30303030u);
      const int xw[4] = {w == 0 ? x.run[0].x : x.run[0].y, w == 0 ? x.run[1].x : x.run[1].y,
                         w == 0 ? x.run[2].x : x.run[2].y, w == 0 ? x.run[3].x : x.run[3].y};
      s[0] = __dp4a(int(__vsub4(q0, 0x20202020u)), xw[0], s[0]);
      s[1] = __dp4a(int(__vsub4(q1, 0x20202020u)), xw[1], s[1]);
      s[2] = __dp4a(int(__vsub4(q2, 0x20202020u)), xw[2], s[2]);
      s[3] = __dp4a(int(__vsub4(q3, 0x20202020u)), xw[3], s[3]);
    }
    const int s0 = 8 * n + l0 / 16;
    const float d = kp_h2f(__ldg(reinterpret_cast<const uint16_t*>(b + 208)));
    return d * (KpWeightQ6_K::scale(b, s0) * x.d[0] * float(s[0]) + KpWeightQ6_K::scale(b, s0 + 2) * x.d[1] * float(s[1]) +
                KpWeightQ6_K::scale(b, s0 + 4) * x.d[2] * float(s[2]) + KpWeightQ6_K::scale(b, s0 + 6) * x.d[3] * float(s[3]));
  }
};

// yt[n] = row · W[n] for the rows of this block's groups (blockIdx.x,
// blockIdx.x + gridDim.x, ...); `row` is one token's quantized activations.
template <class TX8, int kKDim, int kNDim, int kRows, int kWarps>
__device__ __forceinline__ void kp_matvec_x8_rows(const KpX8Row<kKDim>& row, const uint8_t* w, float* yt) {
  constexpr int kGroupRows = kRows * kWarps;
  constexpr int kGroups = (kNDim + kGroupRows - 1) / kGroupRows;
  constexpr int kChunks = kKDim / TX8::kChunkWeights;
  constexpr size_t kRowBytes = size_t(kKDim / TX8::kBlockWeights) * TX8::kBlockBytes;
  static_assert(kKDim % TX8::kBlockWeights == 0, "row length must be a whole number of quant blocks");
  typedef KpChunkLoop<kChunks, 32> Loop;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int group = blockIdx.x; group < kGroups; group += gridDim.x) {
    const int row0 = group * kGroupRows + warp * kRows;
    if (row0 >= kNDim) break;
    float acc[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = 0.0f;
#pragma unroll Loop::kUnroll
    for (int it = 0; it < Loop::kIters; ++it) {
      const int c = lane + 32 * it;
      if (kChunks % 32 != 0 && c >= kChunks) break;
      const typename TX8::X xc = TX8::load_x(row, c);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (row0 + r < kNDim) acc[r] += TX8::dot(w + size_t(row0 + r) * kRowBytes, c, xc);
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = kp_warp_sum(acc[r]);
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (row0 + r < kNDim) yt[row0 + r] = acc[r];
      }
    }
  }
}

// yt[f] = gelu_tanh(row · G[f]) * (row · U[f]) for the rows of this block's
// groups; a warp's kRows rows of G and of U share the activations.
template <class TX8, int kEDim, int kFDim, int kRows, int kWarps>
__device__ __forceinline__ void kp_ffn_x8_rows(const KpX8Row<kEDim>& row, const uint8_t* gate, const uint8_t* up,
                                               float* yt) {
  constexpr int kGroupRows = kRows * kWarps;
  constexpr int kGroups = (kFDim + kGroupRows - 1) / kGroupRows;
  constexpr int kChunks = kEDim / TX8::kChunkWeights;
  constexpr size_t kRowBytes = size_t(kEDim / TX8::kBlockWeights) * TX8::kBlockBytes;
  static_assert(kEDim % TX8::kBlockWeights == 0, "row length must be a whole number of quant blocks");
  typedef KpChunkLoop<kChunks, 32> Loop;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int group = blockIdx.x; group < kGroups; group += gridDim.x) {
    const int row0 = group * kGroupRows + warp * kRows;
    if (row0 >= kFDim) break;
    float g[kRows], u[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) g[r] = u[r] = 0.0f;
#pragma unroll Loop::kUnroll
    for (int it = 0; it < Loop::kIters; ++it) {
      const int c = lane + 32 * it;
      if (kChunks % 32 != 0 && c >= kChunks) break;
      const typename TX8::X xc = TX8::load_x(row, c);
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        if (row0 + r < kFDim) {
          g[r] += TX8::dot(gate + size_t(row0 + r) * kRowBytes, c, xc);
          u[r] += TX8::dot(up + size_t(row0 + r) * kRowBytes, c, xc);
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
}

// The first row group of the block into L2 (threads 0 and, for a second
// weight, 1), before the wait: the weights depend on no earlier kernel.
template <class TX8, int kKDim, int kNDim, int kGroupRows>
__device__ __forceinline__ void kp_x8_prefetch(const uint8_t* w0, const uint8_t* w1) {
  if (blockIdx.y != 0) return;
  if (threadIdx.x == 0 || (threadIdx.x == 1 && w1 != nullptr)) {
    kp_matvec_prefetch<TX8, kKDim, kNDim>(threadIdx.x == 0 ? w0 : w1, size_t(blockIdx.x) * kGroupRows, kGroupRows);
  }
}

// matmul_*_x8: y[t, n] = x8(x[t]) · W[n]; x [T, kKDim] f32, W [kNDim, kKDim], y [T, kNDim].
template <class TX8, int kKDim, int kNDim, int kRows, int kWarps>
__device__ __forceinline__ void kp_matvec_x8(const float* x, const uint8_t* w, float* y) {
  __shared__ __align__(16) KpX8Row<kKDim> row;
  kp_x8_prefetch<TX8, kKDim, kNDim, kRows * kWarps>(w, nullptr);
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  KpX8Regs<kKDim, 32 * kWarps> xr;
  xr.load(x + size_t(t) * kKDim);
  kp_x8_quantize(xr, row);
  __syncthreads();
  kp_matvec_x8_rows<TX8, kKDim, kNDim, kRows, kWarps>(row, w, y + size_t(t) * kNDim);
}

// matmul_norm_*_x8: y[t, n] = x8(rmsnorm(x[t]) * g) · W[n].
template <class TX8, int kKDim, int kNDim, int kRows, int kWarps>
__device__ __forceinline__ void kp_matvec_norm_x8(const float* x, const uint8_t* w, const float* g, float eps,
                                                  float* y) {
  __shared__ __align__(16) KpX8Row<kKDim> row;
  __shared__ double scratch[32];
  kp_x8_prefetch<TX8, kKDim, kNDim, kRows * kWarps>(w, nullptr);
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  KpX8Regs<kKDim, 32 * kWarps> xr;
  xr.load(x + size_t(t) * kKDim);
  kp_x8_norm(xr, nullptr, g, eps, nullptr, scratch);
  kp_x8_quantize(xr, row);
  __syncthreads();
  kp_matvec_x8_rows<TX8, kKDim, kNDim, kRows, kWarps>(row, w, y + size_t(t) * kNDim);
}

// ffn_gate_up_*_x8: y[t, f] = gelu_tanh(x8(x[t]) · G[f]) * (x8(x[t]) · U[f]);
// x [T, kEDim] f32, G and U [kFDim, kEDim], y [T, kFDim].
template <class TX8, int kEDim, int kFDim, int kRows, int kWarps>
__device__ __forceinline__ void kp_ffn_matvec_x8(const float* x, const uint8_t* gate, const uint8_t* up,
                                                 float* y) {
  __shared__ __align__(16) KpX8Row<kEDim> row;
  kp_x8_prefetch<TX8, kEDim, kFDim, kRows * kWarps>(gate, up);
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  KpX8Regs<kEDim, 32 * kWarps> xr;
  xr.load(x + size_t(t) * kEDim);
  kp_x8_quantize(xr, row);
  __syncthreads();
  kp_ffn_x8_rows<TX8, kEDim, kFDim, kRows, kWarps>(row, gate, up, y + size_t(t) * kFDim);
}

// ffn_gate_up_resnorm_*_x8: h_out[t] = h[t] + rmsnorm(x[t]) * g_post (written
// by the blocks at blockIdx.x 0; h_out must not be h: other blocks still read
// it), n = rmsnorm(h_out[t]) * g_pre, then y[t] as kp_ffn_matvec_x8 over n.
template <class TX8, int kEDim, int kFDim, int kRows, int kWarps>
__device__ __forceinline__ void kp_ffn_matvec_resnorm_x8(const float* x, const float* h, const uint8_t* gate,
                                                         const uint8_t* up, const float* g_post, const float* g_pre,
                                                         float eps, float* h_out, float* y) {
  __shared__ __align__(16) KpX8Row<kEDim> row;
  __shared__ double scratch[32];
  kp_x8_prefetch<TX8, kEDim, kFDim, kRows * kWarps>(gate, up);
  kp_pdl_wait();
  kp_pdl_trigger();
  const int t = blockIdx.y;
  const size_t at = size_t(t) * kEDim;
  KpX8Regs<kEDim, 32 * kWarps> xr;
  xr.load(x + at);
  kp_x8_norm(xr, h + at, g_post, eps, blockIdx.x == 0 ? h_out + at : nullptr, scratch);
  kp_x8_norm(xr, nullptr, g_pre, eps, nullptr, scratch);
  kp_x8_quantize(xr, row);
  __syncthreads();
  kp_ffn_x8_rows<TX8, kEDim, kFDim, kRows, kWarps>(row, gate, up, y + size_t(t) * kFDim);
}
