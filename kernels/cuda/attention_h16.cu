// attention_h16.cu: causal grouped-query attention with logit soft-capping and
// an optional sliding window on tensor cores, for prefill (logical kernel
// attention_h16): as attention.cu, with q, k and v rounded to binary16 and the
// softmax weights taken in binary16 for their product with v; sums in f32.
//   bindings   q [T, QC] f32, k [T, KC] f32, v [T, KC] f32, o [T, QC] f32,
//              k_cache [CTX, KC] f32, v_cache [CTX, KC] f32
//   constants  HEAD_DIM (a multiple of 32), N_HEAD, N_HEAD_KV, SCALE, SOFTCAP (0 = off), CTX;
//              ROWS query rows per block (16, 32, 48 or 64)
//   grid       (N_HEAD, cdiv(T, ROWS)), block 4 * ROWS (ROWS / 8 warps)
// Row t sits at position p = pos0 + t; query head h reads KV head
// h / (N_HEAD / N_HEAD_KV) at the positions j <= p with p - j < window when
// step.window > 0. Keys of the batch (j >= pos0) are read from the k / v inputs
// and earlier ones from the caches; the blocks of the first query head of each
// group write their rows' k and v into the caches, so no block reads what
// another writes in the same dispatch.
// A block takes ROWS query rows of one head: groups of 16 rows, each held by
// two warps that split the head's dimensions in halves. Keys come in tiles of
// 32, converted to binary16 into shared memory (rows padded by 16 bytes, so
// ldmatrix reads hit distinct banks). Per tile, each warp multiplies its half
// of q by the keys (mma.sync m16n8k16, f32 sums); the two halves of the
// scores meet in shared memory; both warps run the same online softmax (f32)
// and each accumulates its half of the output from the weights (binary16,
// their row sums taken from the rounded values) and the values.
//   tests      tests/cuda/cuda_ops_test.cpp (windowed and full, history in the
//              caches, ragged row tiles), tests/cuda/nvrtc_compile_test.cpp
#include "mma.cuh"

static_assert(HEAD_DIM % 32 == 0, "HEAD_DIM must be a multiple of 32");
static_assert(N_HEAD % N_HEAD_KV == 0, "N_HEAD must be a multiple of N_HEAD_KV");

static_assert(ROWS % 16 == 0 && ROWS >= 16 && ROWS <= 64, "ROWS: 16, 32, 48 or 64 query rows per block");

namespace kp_fa {
constexpr int kRows = ROWS, kGroups = ROWS / 16, kKeys = 32, kThreads = 4 * ROWS;
constexpr int kHalf = HEAD_DIM / 2;          // dimensions per warp
constexpr int kStride = HEAD_DIM + 8;        // halves per shared key row
constexpr int kQChunks = kHalf / 16;         // k16 chunks of a warp's half of q
constexpr int kOTiles = kHalf / 8;           // n8 tiles of a warp's half of o
constexpr int kSTiles = kKeys / 8;           // n8 tiles of the scores
}  // namespace kp_fa

extern "C" __global__ void __launch_bounds__(kp_fa::kThreads)
    attention_h16_main(const KpParams* params, KpStepParams step, const float* q, const float* k, const float* v,
                       float* o, float* k_cache, float* v_cache) {
  using namespace kp_fa;
  kp_pdl_entry();
  constexpr int kQC = N_HEAD * HEAD_DIM, kKC = N_HEAD_KV * HEAD_DIM, kGroup = N_HEAD / N_HEAD_KV;
  __shared__ __align__(16) uint16_t ks[kKeys][kStride];
  __shared__ __align__(16) uint16_t vs[kKeys][kStride];
  __shared__ float s_part[kGroups][32][kSTiles * 4];  // scores of the first-half warps, then the sums

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int grp = warp % kGroups, half = warp / kGroups;  // rows 16 * grp .., dimensions kHalf * half ..
  const int g = lane / 4, qd = lane % 4;
  const int h = blockIdx.x, hk = h / kGroup;
  const int n_rows = int(params->n_tokens), t0 = blockIdx.y * kRows;
  if (t0 >= n_rows) return;
  const int pos0 = int(params->pos0), window = int(step.window);
  const size_t kv_col = size_t(hk) * HEAD_DIM;

  // The batch's k and v rows of this block into the caches (first head of each group).
  if (h % kGroup == 0) {
    for (int i = tid; i < kRows * HEAD_DIM / 4; i += kThreads) {
      const int r = i / (HEAD_DIM / 4), c = (i % (HEAD_DIM / 4)) * 4, t = t0 + r, p = pos0 + t;
      if (t >= n_rows || p >= int(CTX)) continue;
      *reinterpret_cast<float4*>(k_cache + size_t(p) * kKC + kv_col + c) =
          *reinterpret_cast<const float4*>(k + size_t(t) * kKC + kv_col + c);
      *reinterpret_cast<float4*>(v_cache + size_t(p) * kKC + kv_col + c) =
          *reinterpret_cast<const float4*>(v + size_t(t) * kKC + kv_col + c);
    }
  }

  // This warp's half of q for its 16 rows, as mma A fragments (rows past the batch: zeros).
  const int ra = t0 + 16 * grp + g, rb = ra + 8;  // the two rows this lane holds
  uint32_t qf[kQChunks][4];
  {
    const float* qa = q + size_t(ra) * kQC + size_t(h) * HEAD_DIM + kHalf * half + 2 * qd;
    const float* qb = q + size_t(rb) * kQC + size_t(h) * HEAD_DIM + kHalf * half + 2 * qd;
    const bool a_ok = ra < n_rows, b_ok = rb < n_rows;
#pragma unroll
    for (int c = 0; c < kQChunks; ++c) {
      const float2 a0 = a_ok ? *reinterpret_cast<const float2*>(qa + 16 * c) : make_float2(0, 0);
      const float2 b0 = b_ok ? *reinterpret_cast<const float2*>(qb + 16 * c) : make_float2(0, 0);
      const float2 a1 = a_ok ? *reinterpret_cast<const float2*>(qa + 16 * c + 8) : make_float2(0, 0);
      const float2 b1 = b_ok ? *reinterpret_cast<const float2*>(qb + 16 * c + 8) : make_float2(0, 0);
      qf[c][0] = kp_pack_h2(a0.x, a0.y);
      qf[c][1] = kp_pack_h2(b0.x, b0.y);
      qf[c][2] = kp_pack_h2(a1.x, a1.y);
      qf[c][3] = kp_pack_h2(b1.x, b1.y);
    }
  }
  const int pa = pos0 + ra, pb = pos0 + rb;  // positions of the lane's rows

  // Keys of the block: from the first row's window start to the last row.
  const int last = pos0 + min(t0 + kRows, n_rows) - 1;
  const int first = window > 0 ? max(0, pos0 + t0 + 1 - window) : 0;

  float acc[kOTiles][4];
#pragma unroll
  for (int n = 0; n < kOTiles; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
  float m_a = -KP_INFINITY, m_b = -KP_INFINITY, l_a = 0.0f, l_b = 0.0f;

  for (int j0 = first; j0 <= last; j0 += kKeys) {
    // The tile's keys and values, binary16, into shared memory (zeros past the last key).
#pragma unroll 4
    for (int i = tid; i < kKeys * HEAD_DIM / 4; i += kThreads) {
      const int r = i / (HEAD_DIM / 4), c = (i % (HEAD_DIM / 4)) * 4, j = j0 + r;
      float4 kv4 = make_float4(0, 0, 0, 0), vv4 = make_float4(0, 0, 0, 0);
      if (j <= last) {
        const float* kp = j >= pos0 ? k + size_t(j - pos0) * kKC : k_cache + size_t(j) * kKC;
        const float* vp = j >= pos0 ? v + size_t(j - pos0) * kKC : v_cache + size_t(j) * kKC;
        kv4 = *reinterpret_cast<const float4*>(kp + kv_col + c);
        vv4 = *reinterpret_cast<const float4*>(vp + kv_col + c);
      }
      *reinterpret_cast<uint2*>(&ks[r][c]) = make_uint2(kp_pack_h2(kv4.x, kv4.y), kp_pack_h2(kv4.z, kv4.w));
      *reinterpret_cast<uint2*>(&vs[r][c]) = make_uint2(kp_pack_h2(vv4.x, vv4.y), kp_pack_h2(vv4.z, vv4.w));
    }
    __syncthreads();

    // Scores over this warp's half of the dimensions.
    float s[kSTiles][4];
#pragma unroll
    for (int j = 0; j < kSTiles; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int c = 0; c < kQChunks; ++c) {
#pragma unroll
      for (int j = 0; j < kSTiles; j += 2) {
        uint32_t r[4];
        kp_ldsm_x4(r, &ks[8 * j + lane % 8 + (lane / 16) * 8][kHalf * half + 16 * c + ((lane / 8) % 2) * 8]);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        kp_mma_h16(s[j], qf[c], b0);
        kp_mma_h16(s[j + 1], qf[c], b1);
      }
    }
    // The halves meet: the second-half warps add the first half's scores.
    if (half == 0) {
#pragma unroll
      for (int j = 0; j < kSTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s_part[grp][lane][4 * j + e] = s[j][e];
    }
    __syncthreads();
    if (half == 1) {
#pragma unroll
      for (int j = 0; j < kSTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[j][e] += s_part[grp][lane][4 * j + e];
          s_part[grp][lane][4 * j + e] = s[j][e];
        }
    }
    __syncthreads();
    if (half == 0) {
#pragma unroll
      for (int j = 0; j < kSTiles; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[j][e] = s_part[grp][lane][4 * j + e];
    }

    // Scale, soft-cap and mask; element e of tile j is row (e < 2 ? a : b), key j0 + 8j + 2qd + (e & 1).
    float mx_a = -KP_INFINITY, mx_b = -KP_INFINITY;
#pragma unroll
    for (int j = 0; j < kSTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = j0 + 8 * j + 2 * qd + (e & 1), p = e < 2 ? pa : pb;
        float x = s[j][e] * SCALE;
        if (SOFTCAP > 0.0f) x = SOFTCAP * tanhf(x / SOFTCAP);
        const bool ok = key <= p && key <= last && (window <= 0 || p - key < window);
        x = ok ? x : -KP_INFINITY;
        s[j][e] = x;
        if (e < 2) mx_a = fmaxf(mx_a, x); else mx_b = fmaxf(mx_b, x);
      }
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      mx_a = fmaxf(mx_a, __shfl_xor_sync(KP_FULL_MASK, mx_a, off));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(KP_FULL_MASK, mx_b, off));
    }
    const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
    // A row with no key yet keeps max -inf: subtract 0 instead (its weights are all 0).
    const float base_a = mn_a == -KP_INFINITY ? 0.0f : mn_a, base_b = mn_b == -KP_INFINITY ? 0.0f : mn_b;
    const float corr_a = expf(m_a - base_a), corr_b = expf(m_b - base_b);
    m_a = mn_a;
    m_b = mn_b;
    // Weights as binary16 A fragments of the product with v (k16 chunk c: tiles 2c, 2c + 1).
    uint32_t pf[kSTiles / 2][4];
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int j = 0; j < kSTiles; ++j) {
      const uint32_t wa = kp_pack_h2(expf(s[j][0] - base_a), expf(s[j][1] - base_a));
      const uint32_t wb = kp_pack_h2(expf(s[j][2] - base_b), expf(s[j][3] - base_b));
      sum_a += kp_h2f(kp_half(wa & 0xFFFFu)) + kp_h2f(kp_half(wa >> 16));
      sum_b += kp_h2f(kp_half(wb & 0xFFFFu)) + kp_h2f(kp_half(wb >> 16));
      pf[j / 2][(j % 2) * 2 + 0] = wa;
      pf[j / 2][(j % 2) * 2 + 1] = wb;
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      sum_a += __shfl_xor_sync(KP_FULL_MASK, sum_a, off);
      sum_b += __shfl_xor_sync(KP_FULL_MASK, sum_b, off);
    }
    l_a = l_a * corr_a + sum_a;
    l_b = l_b * corr_b + sum_b;
#pragma unroll
    for (int n = 0; n < kOTiles; ++n) {
      acc[n][0] *= corr_a;
      acc[n][1] *= corr_a;
      acc[n][2] *= corr_b;
      acc[n][3] *= corr_b;
    }
    // o (this warp's half) += weights x values.
#pragma unroll
    for (int c = 0; c < kSTiles / 2; ++c) {
#pragma unroll
      for (int n = 0; n < kOTiles; n += 2) {
        uint32_t r[4];
        kp_ldsm_x4_t(r, &vs[16 * c + lane % 8 + ((lane / 8) % 2) * 8][kHalf * half + 8 * n + (lane / 16) * 8]);
        const uint32_t b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        kp_mma_h16(acc[n], pf[c], b0);
        kp_mma_h16(acc[n + 1], pf[c], b1);
      }
    }
    __syncthreads();  // the tile's shared rows are overwritten next
  }

  // o = acc / l for the lane's two rows, dimensions kHalf * half + 8n + 2qd (+1).
  const float inv_a = l_a > 0.0f ? 1.0f / l_a : 0.0f, inv_b = l_b > 0.0f ? 1.0f / l_b : 0.0f;
  float* oa = o + size_t(ra) * kQC + size_t(h) * HEAD_DIM + kHalf * half + 2 * qd;
  float* ob = o + size_t(rb) * kQC + size_t(h) * HEAD_DIM + kHalf * half + 2 * qd;
#pragma unroll
  for (int n = 0; n < kOTiles; ++n) {
    if (ra < n_rows) *reinterpret_cast<float2*>(oa + 8 * n) = make_float2(acc[n][0] * inv_a, acc[n][1] * inv_a);
    if (rb < n_rows) *reinterpret_cast<float2*>(ob + 8 * n) = make_float2(acc[n][2] * inv_b, acc[n][3] * inv_b);
  }
}
