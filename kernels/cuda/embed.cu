// embed.cu: y[t, :] = dequant(table[ids[t], :]) * SCALE, the embedding lookup of
// one token per row (logical kernels embed_f32, embed_f16, embed_q8_0,
// embed_q4k, embed_q5k, embed_q6k; one function each).
//   bindings   ids [T, 1] i32, table [V, E] weight bytes, y [T, E] f32
//   constants  E, SCALE; BLOCK threads per block, V rows of the table (an id
//              outside 0..V-1 yields a zero row instead of reading past the table)
//   grid       (cdiv(E, 8 * BLOCK), T): each thread decodes 8 consecutive values
//   tests      tests/cuda/cuda_ops_test.cpp (every type against the CPU backend),
//              tests/cuda/nvrtc_compile_test.cpp
#include "common.cuh"

template <class TWeight>
__device__ __forceinline__ void kp_embed(const int32_t* ids, const uint8_t* table, float* y) {
  static_assert(E % 8 == 0 && E % TWeight::kBlockWeights == 0, "E must be a multiple of 8 and of the block size");
  constexpr size_t kRowBytes = size_t(E / TWeight::kBlockWeights) * TWeight::kBlockBytes;
  const int t = blockIdx.y;
  const int k = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
  if (k >= int(E)) return;
  const int id = __ldg(ids + t);
  float v[8];
  if (id >= 0 && id < int(V)) {
    TWeight::decode8(table + size_t(id) * kRowBytes, k, v);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = 0.0f;
  }
  float4* out = reinterpret_cast<float4*>(y + size_t(t) * E + k);
  out[0] = make_float4(v[0] * SCALE, v[1] * SCALE, v[2] * SCALE, v[3] * SCALE);
  out[1] = make_float4(v[4] * SCALE, v[5] * SCALE, v[6] * SCALE, v[7] * SCALE);
}

#define KP_EMBED_ENTRY(name, type)                                                                   \
  extern "C" __global__ void __launch_bounds__(BLOCK)                                                \
      name(const KpParams* params, KpStepParams step, const int32_t* ids, const uint8_t* table, float* y) { \
    kp_pdl_entry();                                                                                  \
    kp_embed<type>(ids, table, y);                                                                   \
  }

KP_EMBED_ENTRY(embed_f32_main, KpWeightF32)
KP_EMBED_ENTRY(embed_f16_main, KpWeightF16)
KP_EMBED_ENTRY(embed_q8_0_main, KpWeightQ8_0)
KP_EMBED_ENTRY(embed_q4k_main, KpWeightQ4_K)
KP_EMBED_ENTRY(embed_q5k_main, KpWeightQ5_K)
KP_EMBED_ENTRY(embed_q6k_main, KpWeightQ6_K)
