// attention.cu: causal grouped-query attention with logit soft-capping and an
// optional sliding window, for one layer (logical kernel attention).
//   bindings   q [T, QC] f32, k [T, KC] f32, v [T, KC] f32, o [T, QC] f32,
//              k_cache [CTX, KC] kv, v_cache [CTX, KC] kv (kv = f32, or f16 with KV_F16)
//   constants  HEAD_DIM, N_HEAD, N_HEAD_KV, SCALE, SOFTCAP (0 = off), CTX;
//              WARPS warps per block, KEYS keys per warp step; KV_F16 (the
//              path's kvDtype is f16); SPLITS blocks a (head, row) may split
//              its keys over, MIN_KEYS the fewest keys worth a block of their own
//   workspace  N_HEAD * SPLITS partial results and as many counters (the
//              backend allocates it zeroed; the kernel leaves it zeroed)
//   grid       (N_HEAD, T, max(1, SPLITS / T)), block 32 * WARPS.
// Row t sits at position p = pos0 + t (pos0 = params->pos0); query head h reads
// KV head h / (N_HEAD / N_HEAD_KV) at the positions j <= p with p - j < window
// when step.window > 0. The block of the first query head of each group (and
// first split) writes the row's k and v into the caches at row p; keys of the
// batch (j >= pos0) are read from the k / v inputs and earlier ones from the
// caches, so no block reads what another writes in the same dispatch.
// Split keys (flash-decoding): a (head, row) with L keys uses
// S = min(gridDim.z, cdiv(L, MIN_KEYS)) blocks, block z taking the z-th run of
// cdiv(L, S) keys (blocks past S return at once); each writes its partial
// (max, sum, weighted values) to the workspace, and the last of the S to finish
// (a counter per (head, row)) merges them, writes o and resets the counter.
// With S = 1 the block writes o itself. Long contexts at batch 1 so spread
// over N_HEAD * SPLITS blocks instead of N_HEAD.
// Within a block, each warp runs an online softmax over its keys, KEYS at a
// time (warp w takes lo + KEYS*w .. +KEYS-1, then the next WARPS*KEYS),
// HEAD_DIM / 32 dimensions per lane and scores reduced by warp shuffles; the
// warps' partial (max, sum, weighted values) are merged in shared memory.
//   tests      tests/cuda/cuda_ops_test.cpp (windowed and full, f32 caches,
//              decode at depth with split keys), tests/cuda/nvrtc_compile_test.cpp
#include "attention.cuh"

extern "C" __global__ void __launch_bounds__(32 * WARPS)
    attention_main(const KpParams* params, KpStepParams step, const float* q, const float* k, const float* v,
                   float* o, kp_kv* k_cache, kp_kv* v_cache, float* work) {
  kp_attention<false>(params, step, q, k, v, nullptr, o, k_cache, v_cache, work);
}
