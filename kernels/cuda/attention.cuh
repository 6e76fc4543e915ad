// attention.cuh: the body of attention.cu and attention_rope.cu. See
// attention.cu for what it computes, the bindings, constants and grid.
#pragma once

// THETA is a constant of attention_rope only.
#ifdef THETA
#define KP_ATT_THETA THETA
#else
#define KP_ATT_THETA 0.0f
#endif

#include "common.cuh"

static_assert(KEYS >= 1 && KEYS <= 8, "KEYS: 1 to 8 keys per warp step");
static_assert(SPLITS >= 1 && MIN_KEYS >= 1, "SPLITS and MIN_KEYS: at least 1");

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

// Rotates the kDimsPerLane values a lane holds of one head (lane l holds
// dimensions l * kDimsPerLane ..; the pair of dimension i < HEAD_DIM / 2 is held
// by lane l ^ 16) by pos * freq (freq: this lane's pair frequencies), as
// rope_neox.cu does. Every lane of the warp must call it.
__device__ __forceinline__ void kp_att_rope(float* x, const float* freq, int pos, int lane) {
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const float other = __shfl_xor_sync(KP_FULL_MASK, x[i], 16);
    float s, c;
    sincosf(float(pos) * freq[i], &s, &c);
    x[i] = lane < 16 ? x[i] * c - other * s : other * s + x[i] * c;
  }
}

// The body of attention_main (kRope = false) and attention_rope_main (q and
// k rotated first: q once, the batch's keys as they are read and as they are
// written to the cache; positions[t] is row t's position).
template <bool kRope>
__device__ __forceinline__ void kp_attention(const KpParams* params, const KpStepParams& step, const float* q,
                                             const float* k, const float* v, const int32_t* positions, float* o,
                                             kp_kv* k_cache, kp_kv* v_cache, float* work) {
  kp_pdl_entry();
  constexpr int kQC = N_HEAD * HEAD_DIM, kKC = N_HEAD_KV * HEAD_DIM, kGroup = N_HEAD / N_HEAD_KV;
  __shared__ float s_max[WARPS], s_sum[WARPS];
  __shared__ bool s_last;
  __shared__ __align__(16) float s_acc[WARPS][HEAD_DIM];

  const int h = blockIdx.x, t = blockIdx.y, hk = h / kGroup;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int pos0 = int(params->pos0), p = pos0 + t;
  const size_t kv_col = size_t(hk) * HEAD_DIM;

  const int window = int(step.window);
  const int lo_all = (window > 0 && p + 1 > window) ? p + 1 - window : 0;
  const int hi_all = min(p, int(CTX) - 1);
  const int n_keys = max(hi_all - lo_all + 1, 0);
  const int n_splits = max(1, min(int(gridDim.z), (n_keys + int(MIN_KEYS) - 1) / int(MIN_KEYS)));
  const int z = blockIdx.z;
  if (z >= n_splits) return;
  const int per_split = (n_keys + n_splits - 1) / n_splits;
  const int lo = lo_all + z * per_split;
  const int hi = min(hi_all, lo + per_split - 1);

  float freq[kDimsPerLane];  // this lane's rotation frequencies (kRope)
  if constexpr (kRope) {
    // One double-precision power per pair (HEAD_DIM / 2 of them, computed by
    // as many threads at once) into shared memory, then each lane's share.
    __shared__ float s_freq[HEAD_DIM / 2];
    for (int i = threadIdx.x; i < HEAD_DIM / 2; i += blockDim.x) {
      const float exponent = -2.0f * float(i) / float(HEAD_DIM);
      s_freq[i] = float(pow(double(KP_ATT_THETA), double(exponent)));
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) freq[i] = s_freq[(lane & 15) * kDimsPerLane + i];
  }

  if (z == 0 && h % kGroup == 0 && p < int(CTX)) {
    if constexpr (kRope) {
      if (warp == 0) {
        float kr[kDimsPerLane];
        kp_att_load(k + size_t(t) * kKC + kv_col + lane * kDimsPerLane, kr);
        kp_att_rope(kr, freq, __ldg(positions + t), lane);
#pragma unroll
        for (int i = 0; i < kDimsPerLane; ++i) {
          k_cache[size_t(p) * kKC + kv_col + lane * kDimsPerLane + i] = kp_kv_from_f32(kr[i]);
        }
      }
    }
    for (int d = threadIdx.x; d < HEAD_DIM; d += blockDim.x) {
      if constexpr (!kRope) k_cache[size_t(p) * kKC + kv_col + d] = kp_kv_from_f32(k[size_t(t) * kKC + kv_col + d]);
      v_cache[size_t(p) * kKC + kv_col + d] = kp_kv_from_f32(v[size_t(t) * kKC + kv_col + d]);
    }
  }

  float qv[kDimsPerLane];
  kp_att_load(q + size_t(t) * kQC + size_t(h) * HEAD_DIM + lane * kDimsPerLane, qv);
  if constexpr (kRope) kp_att_rope(qv, freq, __ldg(positions + t), lane);

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
    if constexpr (kRope) {
      // Keys of the batch arrive unrotated (the cache holds rotated ones).
#pragma unroll
      for (int u = 0; u < int(KEYS); ++u) {
        const int j = j0 + u;
        if (j >= pos0 && j <= hi) kp_att_rope(kv[u], freq, __ldg(positions + (j - pos0)), lane);
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
  if (n_splits == 1) {
    const float inv = 1.0f / total;
    for (int d = threadIdx.x; d < HEAD_DIM; d += blockDim.x) {
      float out = 0.0f;
#pragma unroll
      for (int w = 0; w < int(WARPS); ++w) out += s_acc[w][d] * weights[w];
      o[size_t(t) * kQC + size_t(h) * HEAD_DIM + d] = out * inv;
    }
    return;
  }

  // Split keys: this block's partial (max m_all, sum total, unnormalised
  // values) to the workspace; the last block of the (head, row) merges them.
  constexpr int kPart = HEAD_DIM + 2;
  const int head_row = t * N_HEAD + h;  // < N_HEAD * SPLITS: t < T <= SPLITS / gridDim.z
  float* part = work + (size_t(head_row) * gridDim.z + z) * kPart;
  uint32_t* counters = reinterpret_cast<uint32_t*>(work + size_t(N_HEAD) * SPLITS * kPart);
  for (int d = threadIdx.x; d < HEAD_DIM; d += blockDim.x) {
    float out = 0.0f;
#pragma unroll
    for (int w = 0; w < int(WARPS); ++w) out += s_acc[w][d] * weights[w];
    part[2 + d] = out;
  }
  if (threadIdx.x == 0) {
    part[0] = m_all;
    part[1] = total;
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(&counters[head_row], 1u) == uint32_t(n_splits - 1);
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const float* parts = work + size_t(head_row) * gridDim.z * kPart;
  float m_max = -KP_INFINITY;
  for (int s = 0; s < n_splits; ++s) m_max = fmaxf(m_max, __ldcg(parts + size_t(s) * kPart));
  float denom = 0.0f;
  for (int s = 0; s < n_splits; ++s) {
    const float l_s = __ldcg(parts + size_t(s) * kPart + 1);
    if (l_s > 0.0f) denom += l_s * expf(__ldcg(parts + size_t(s) * kPart) - m_max);
  }
  const float inv = 1.0f / denom;
  for (int d = threadIdx.x; d < HEAD_DIM; d += blockDim.x) {
    float out = 0.0f;
    for (int s = 0; s < n_splits; ++s) {
      const float* ps = parts + size_t(s) * kPart;
      const float l_s = __ldcg(ps + 1);
      if (l_s > 0.0f) out += __ldcg(ps + 2 + d) * expf(__ldcg(ps) - m_max);
    }
    o[size_t(t) * kQC + size_t(h) * HEAD_DIM + d] = out * inv;
  }
  if (threadIdx.x == 0) counters[head_row] = 0u;
}
