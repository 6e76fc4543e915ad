// sample.cu: the next token from logits [1, V], written to token[0] (logical
// kernel sample).
//   bindings   logits [1, V] f32, token [1, 1] i32
//   constants  V; BLOCK threads (one block of 1024: the vocabulary is scanned in
//              strides of BLOCK)
//   entries    argmax: the largest logit, lowest index on ties (NaN counts as -inf)
//              sample: docs/kernels.md's rule with params->temperature, top_k,
//              min_p, top_p and the host's draw rand_u; argmax when temperature <= 0
//   grid       (1)
// The sample entry never sorts: it finds thresholds by radix selection (four
// 8-bit passes over the 32-bit ordering key, histograms in shared memory), then
// resolves ties by index with a block-wide scan. Masses are fixed point
// (p * 2^32 in 64-bit integers), so every sum is exact and the draw does not
// depend on the order of the atomic additions.
//   tests      tests/cuda/cuda_ops_test.cpp (argmax, greedy and sampled draws),
//              tests/cuda/nvrtc_compile_test.cpp
#include "common.cuh"

static_assert(BLOCK % 32 == 0 && BLOCK <= 1024, "BLOCK must be a multiple of 32, at most 1024");

typedef unsigned long long kp_u64;

__device__ __forceinline__ float kp_logit(const float* logits, int i) {
  const float v = logits[i];
  return v != v ? -KP_INFINITY : v;
}

// A key whose unsigned order is the float order.
__device__ __forceinline__ uint32_t kp_order_key(float f) {
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Lowest index of the largest value over the block; every thread gets it.
__device__ int kp_block_argmax(const float* logits, float* out_max) {
  __shared__ float s_val[32];
  __shared__ int s_idx[32];
  float best = -KP_INFINITY;
  int best_i = -1;
  for (int i = threadIdx.x; i < int(V); i += BLOCK) {
    const float v = kp_logit(logits, i);
    if (best_i < 0 || v > best) {
      best = v;
      best_i = i;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(KP_FULL_MASK, best, o);
    const int oi = __shfl_xor_sync(KP_FULL_MASK, best_i, o);
    if (oi >= 0 && (best_i < 0 || ov > best || (ov == best && oi < best_i))) {
      best = ov;
      best_i = oi;
    }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) {
    s_val[warp] = best;
    s_idx[warp] = best_i;
  }
  __syncthreads();
  best = -KP_INFINITY;
  best_i = -1;
  for (int w = 0; w < int(BLOCK / 32); ++w) {
    if (s_idx[w] >= 0 && (best_i < 0 || s_val[w] > best || (s_val[w] == best && s_idx[w] < best_i))) {
      best = s_val[w];
      best_i = s_idx[w];
    }
  }
  if (out_max != nullptr) *out_max = best;
  return best_i < 0 ? 0 : best_i;
}

extern "C" __global__ void __launch_bounds__(BLOCK)
    sample_argmax(const KpParams* params, KpStepParams step, const float* logits, int32_t* token) {
  kp_pdl_entry();
  const int best = kp_block_argmax(logits, nullptr);
  if (threadIdx.x == 0) token[0] = best;
}

// The sampling state every pass reads: which logits are candidates and their weights.
struct KpSampler {
  const float* logits;
  float max_logit, temperature, min_p;
  bool use_top_k;
  uint32_t top_k_key;   // candidates have kp_order_key(logit) >= this
  bool use_prefix;      // restricted to the top-p prefix: key > cut_key, or == cut_key and index <= cut_index
  uint32_t cut_key;
  int cut_index;

  __device__ float prob(int i) const { return expf((kp_logit(logits, i) - max_logit) / temperature); }
  // Weight of element i if it is a candidate, else 0 with *is = false. *key is
  // the ordering key of p_i (descending order of probability).
  __device__ kp_u64 weight(int i, uint32_t* key, bool* is) const {
    const float l = kp_logit(logits, i);
    *is = false;
    if (use_top_k && kp_order_key(l) < top_k_key) return 0;
    const float pr = expf((l - max_logit) / temperature);
    if (min_p > 0.0f && pr < min_p) return 0;
    *key = __float_as_uint(pr);  // pr >= 0: the bits order like the values
    if (use_prefix && (*key < cut_key || (*key == cut_key && i > cut_index))) return 0;
    *is = true;
    return kp_u64(double(pr) * 4294967296.0);
  }
};

// Shared scratch of the selections.
struct KpSelectScratch {
  kp_u64 hist[256];
  kp_u64 part[BLOCK];
  uint32_t prefix;
  kp_u64 above;
  int found_index;
};

// In the order (key descending, index ascending) over the candidates, finds the
// first element whose running weight reaches `target` (>= target, or > target
// when `strict`). With `count` the weight of every candidate is 1 and the key is
// the logit's order key (top-k). Returns its key and index; *cum gets the running
// weight through it.
__device__ void kp_select(const KpSampler& s, bool count, kp_u64 target, bool strict, KpSelectScratch* sh,
                          uint32_t* out_key, int* out_index, kp_u64* cum) {
  const int tid = threadIdx.x;
  auto reached = [&](kp_u64 c) { return strict ? c > target : c >= target; };
  auto element = [&](int i, uint32_t* key, bool* is) -> kp_u64 {
    if (count) {
      *key = kp_order_key(kp_logit(s.logits, i));
      *is = true;
      return 1;
    }
    return s.weight(i, key, is);
  };
  if (tid == 0) {
    sh->prefix = 0;
    sh->above = 0;
  }
  uint32_t mask = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int d = tid; d < 256; d += BLOCK) sh->hist[d] = 0;
    __syncthreads();
    const uint32_t prefix = sh->prefix;
    for (int i = tid; i < int(V); i += BLOCK) {
      uint32_t key;
      bool is;
      const kp_u64 w = element(i, &key, &is);
      if (is && w > 0 && (key & mask) == prefix) atomicAdd(&sh->hist[(key >> shift) & 0xFFu], w);
    }
    __syncthreads();
    if (tid == 0) {
      kp_u64 c = sh->above;
      int digit = 0;
      for (int d = 255; d >= 0; --d) {
        if (reached(c + sh->hist[d])) {
          digit = d;
          break;
        }
        c += sh->hist[d];
        digit = d;
      }
      sh->above = c;
      sh->prefix = prefix | (uint32_t(digit) << shift);
    }
    mask |= 0xFFu << shift;
    __syncthreads();
  }
  const uint32_t key_found = sh->prefix;
  const kp_u64 above = sh->above;
  // Ties on key_found, in index order: each thread sums a contiguous range.
  constexpr int kPer = (int(V) + int(BLOCK) - 1) / int(BLOCK);
  const int begin = tid * kPer, end = min(begin + kPer, int(V));
  kp_u64 local = 0;
  for (int i = begin; i < end; ++i) {
    uint32_t key;
    bool is;
    const kp_u64 w = element(i, &key, &is);
    if (is && w > 0 && key == key_found) local += w;
  }
  sh->part[tid] = local;
  if (tid == 0) sh->found_index = -1;
  __syncthreads();
  if (tid == 0) {  // exclusive scan of the BLOCK partial sums
    kp_u64 run = above;
    for (int i = 0; i < int(BLOCK); ++i) {
      const kp_u64 v = sh->part[i];
      sh->part[i] = run;
      run += v;
    }
  }
  __syncthreads();
  kp_u64 run = sh->part[tid];
  for (int i = begin; i < end; ++i) {
    uint32_t key;
    bool is;
    const kp_u64 w = element(i, &key, &is);
    if (is && w > 0 && key == key_found) {
      run += w;
      if (reached(run)) {
        sh->found_index = i;  // exactly one thread's range holds the crossing
        *cum = run;
        break;
      }
    }
  }
  __syncthreads();
  *out_key = key_found;
  *out_index = sh->found_index;
  __syncthreads();
}

extern "C" __global__ void __launch_bounds__(BLOCK)
    sample_sample(const KpParams* params, KpStepParams step, const float* logits, int32_t* token) {
  kp_pdl_entry();
  __shared__ KpSelectScratch sh;
  __shared__ kp_u64 s_total;
  __shared__ kp_u64 s_prefix_mass;
  float max_logit;
  const int best = kp_block_argmax(logits, &max_logit);
  const float temperature = params->temperature;
  if (!(temperature > 0.0f) || max_logit == -KP_INFINITY) {
    if (threadIdx.x == 0) token[0] = best;
    return;
  }
  KpSampler s{logits, max_logit, temperature, params->min_p, false, 0u, false, 0u, 0};
  const uint32_t top_k = params->top_k;
  uint32_t key;
  int index;
  kp_u64 cum = 0;
  if (top_k > 0 && top_k < uint32_t(V)) {
    kp_select(s, true, top_k, false, &sh, &key, &index, &cum);
    s.use_top_k = true;
    s.top_k_key = key;
  }
  // Mass of the candidates.
  if (threadIdx.x == 0) s_total = 0;
  __syncthreads();
  kp_u64 local = 0;
  for (int i = threadIdx.x; i < int(V); i += BLOCK) {
    bool is;
    const kp_u64 w = s.weight(i, &key, &is);
    if (is) local += w;
  }
  atomicAdd(&s_total, local);
  __syncthreads();
  kp_u64 mass = s_total;
  if (mass == 0) {  // no candidate (min_p > 1): greedy
    if (threadIdx.x == 0) token[0] = best;
    return;
  }
  const float top_p = params->top_p;
  if (top_p < 1.0f) {
    const kp_u64 target = kp_u64(double(top_p > 0.0f ? top_p : 0.0f) * double(mass));
    kp_select(s, false, target > 0 ? target : 1, false, &sh, &key, &index, &cum);
    if (index >= 0) {
      s.use_prefix = true;
      s.cut_key = key;
      s.cut_index = index;
      if (threadIdx.x == 0) s_prefix_mass = 0;
      __syncthreads();
      local = 0;
      for (int i = threadIdx.x; i < int(V); i += BLOCK) {
        bool is;
        const kp_u64 w = s.weight(i, &key, &is);
        if (is) local += w;
      }
      atomicAdd(&s_prefix_mass, local);
      __syncthreads();
      mass = s_prefix_mass;
    }
  }
  const float u = fminf(fmaxf(params->rand_u, 0.0f), 1.0f);
  kp_u64 r = kp_u64(double(u) * double(mass));
  if (r >= mass) r = mass - 1;  // rand_u is in [0, 1); a 1 draws the last candidate
  kp_select(s, false, r, true, &sh, &key, &index, &cum);
  if (threadIdx.x == 0) token[0] = index >= 0 ? index : best;
}
