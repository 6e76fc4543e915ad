// attention.cu: causal grouped-query attention with logit soft-capping and an
// optional sliding window, for one layer (logical kernel attention).
//   bindings   q [T, QC] f32, k [T, KC] f32, v [T, KC] f32, o [T, QC] f32,
//              k_cache [CTX, KC] kv, v_cache [CTX, KC] kv (kv = f32, or f16 with KV_F16)
//   constants  HEAD_DIM, N_HEAD, N_HEAD_KV, SCALE, SOFTCAP (0 = off), CTX;
//              WARPS warps per block, KEYS keys per warp step; KV_F16 (the
//              path's kvDtype is f16)
//   grid       (N_HEAD, T), block 32 * WARPS: one block per (query head, row).
// Row t sits at position p = pos0 + t (pos0 = params->pos0); query head h reads
// KV head h / (N_HEAD / N_HEAD_KV) at the positions j <= p with p - j < window
// when step.window > 0. The block of the first query head of each group writes
// the row's k and v into the caches at row p; keys of the batch (j >= pos0) are
// read from the k / v inputs and earlier ones from the caches, so no block reads
// what another writes in the same dispatch.
// Each warp runs an online softmax over its keys, KEYS at a time (warp w takes
// lo + KEYS*w .. +KEYS-1, then the next WARPS*KEYS), HEAD_DIM / 32 dimensions
// per lane and scores reduced by warp shuffles; the warps' partial (max, sum,
// weighted values) are merged in shared memory.
//   tests      tests/cuda/cuda_ops_test.cpp (windowed and full, f32 caches),
//              tests/cuda/nvrtc_compile_test.cpp
#include "common.cuh"

static_assert(KEYS >= 1 && KEYS <= 8, "KEYS: 1 to 8 keys per warp step");

#if KV_F16
typedef kp_half kp_kv;
__device__ __forceinline__ kp_kv kp_kv_from_f32(float v) { return kp_f2h(v); }
#else
typedef float kp_kv;
__device__ __forceinline__ kp_kv kp_kv_from_f32(float v) { return v; }
#endif

constexpr int kDimsPerLane = HEAD_DIM / 32;
static_assert(HEAD_DIM % 32 == 0, "HEAD_DIM must be a multiple of 32");
static_assert(N_HEAD % N_HEAD_KV == 0, "N_HEAD must be a multiple of N_HEAD_KV");

// kDimsPerLane consecutive values, in 16-, 8- or 4-byte loads as alignment allows.
__device__ __forceinline__ void kp_att_load(const float* p, float* out) {
  if constexpr (kDimsPerLane % 4 == 0) {
#pragma unroll
    for (int i = 0; i < kDimsPerLane; i += 4) {
      const float4 v = *reinterpret_cast<const float4*>(p + i);
      out[i] = v.x; out[i + 1] = v.y; out[i + 2] = v.z; out[i + 3] = v.w;
    }
  } else if constexpr (kDimsPerLane % 2 == 0) {
#pragma unroll
    for (int i = 0; i < kDimsPerLane; i += 2) {
      const float2 v = *reinterpret_cast<const float2*>(p + i);
      out[i] = v.x; out[i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) out[i] = p[i];
  }
}

__device__ __forceinline__ void kp_att_load(const kp_half* p, float* out) {
  if constexpr (kDimsPerLane % 2 == 0) {
#pragma unroll
    for (int i = 0; i < kDimsPerLane; i += 2) {
      const uint32_t v = *reinterpret_cast<const uint32_t*>(p + i);
      out[i] = kp_h2f(kp_half(v & 0xFFFFu));
      out[i + 1] = kp_h2f(kp_half(v >> 16));
    }
  } else {
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) out[i] = kp_h2f(p[i]);
  }
}

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    attention_main(const KpParams* params, KpStepParams step, const float* q, const float* k, const float* v,
                   float* o, kp_kv* k_cache, kp_kv* v_cache) {
  kp_pdl_entry();
  constexpr int kQC = N_HEAD * HEAD_DIM, kKC = N_HEAD_KV * HEAD_DIM, kGroup = N_HEAD / N_HEAD_KV;
  __shared__ float s_max[WARPS], s_sum[WARPS];
  __shared__ __align__(16) float s_acc[WARPS][HEAD_DIM];

  const int h = blockIdx.x, t = blockIdx.y, hk = h / kGroup;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pos0 = int(params->pos0), p = pos0 + t;
  const size_t kv_col = size_t(hk) * HEAD_DIM;

  if (h % kGroup == 0 && p < int(CTX)) {
    for (int d = threadIdx.x; d < HEAD_DIM; d += blockDim.x) {
      k_cache[size_t(p) * kKC + kv_col + d] = kp_kv_from_f32(k[size_t(t) * kKC + kv_col + d]);
      v_cache[size_t(p) * kKC + kv_col + d] = kp_kv_from_f32(v[size_t(t) * kKC + kv_col + d]);
    }
  }

  float qv[kDimsPerLane];
  kp_att_load(q + size_t(t) * kQC + size_t(h) * HEAD_DIM + lane * kDimsPerLane, qv);
  const int window = int(step.window);
  const int lo = (window > 0 && p + 1 > window) ? p + 1 - window : 0;
  const int hi = min(p, int(CTX) - 1);

  // Each warp takes KEYS consecutive keys per step, loading them all before
  // the first use, so KEYS memory latencies overlap.
  float m = -KP_INFINITY, l = 0.0f, acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.0f;
  const size_t lane_off = kv_col + lane * kDimsPerLane;
  for (int j0 = lo + warp * int(KEYS); j0 <= hi; j0 += int(WARPS * KEYS)) {
    float kv[KEYS][kDimsPerLane], vv[KEYS][kDimsPerLane];
#pragma unroll
    for (int u = 0; u < int(KEYS); ++u) {
      const int j = j0 + u;
      if (j > hi) continue;
      if (j >= pos0) {
        kp_att_load(k + size_t(j - pos0) * kKC + lane_off, kv[u]);
        kp_att_load(v + size_t(j - pos0) * kKC + lane_off, vv[u]);
      } else {
        kp_att_load(k_cache + size_t(j) * kKC + lane_off, kv[u]);
        kp_att_load(v_cache + size_t(j) * kKC + lane_off, vv[u]);
      }
    }
    float s[KEYS];
#pragma unroll
    for (int u = 0; u < int(KEYS); ++u) {
      s[u] = 0.0f;
#pragma unroll
      for (int i = 0; i < kDimsPerLane; ++i) s[u] += qv[i] * kv[u][i];
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
#pragma unroll
      for (int u = 0; u < int(KEYS); ++u) s[u] += __shfl_xor_sync(KP_FULL_MASK, s[u], o);
    }
    float m_new = m;
#pragma unroll
    for (int u = 0; u < int(KEYS); ++u) {
      s[u] *= SCALE;
      if (SOFTCAP > 0.0f) s[u] = SOFTCAP * tanhf(s[u] / SOFTCAP);
      if (j0 + u > hi) s[u] = -KP_INFINITY;  // past the last key: weight 0
      m_new = fmaxf(m_new, s[u]);
    }
    const float correction = expf(m - m_new);  // 0 for the first keys (m = -inf)
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= correction;
    l *= correction;
#pragma unroll
    for (int u = 0; u < int(KEYS); ++u) {
      const float e = expf(s[u] - m_new);
      l += e;
      if (j0 + u <= hi) {
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) acc[i] += e * vv[u][i];
      }
    }
    m = m_new;
  }

  if (lane == 0) {
    s_max[warp] = m;
    s_sum[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) s_acc[warp][lane * kDimsPerLane + i] = acc[i];
  __syncthreads();
  float m_all = -KP_INFINITY;
#pragma unroll
  for (int w = 0; w < int(WARPS); ++w) m_all = fmaxf(m_all, s_max[w]);
  float weights[WARPS], total = 0.0f;
#pragma unroll
  for (int w = 0; w < int(WARPS); ++w) {
    weights[w] = s_sum[w] > 0.0f ? expf(s_max[w] - m_all) : 0.0f;  // warps without keys weigh 0
    total += s_sum[w] * weights[w];
  }
  const float inv = 1.0f / total;
  for (int d = threadIdx.x; d < HEAD_DIM; d += blockDim.x) {
    float out = 0.0f;
#pragma unroll
    for (int w = 0; w < int(WARPS); ++w) out += s_acc[w][d] * weights[w];
    o[size_t(t) * kQC + size_t(h) * HEAD_DIM + d] = out * inv;
  }
}
