// common.cuh: helpers shared by every CUDA kernel of kpath.
//   - KpParams / KpStepParams (kernels/include/kp_params.h),
//   - binary16 conversion by PTX cvt (no cuda_fp16.h, which NVRTC does not
//     ship), warp and block reductions, gelu_tanh,
//   - weight decoders for F32, F16, Q8_0, Q4_K, Q5_K, Q6_K rows, byte for byte
//     the layouts of src/format/quant_blocks.h (Q8_0 34 B / 32 weights, Q4_K
//     144 B, Q5_K 176 B, Q6_K 210 B / 256 weights). Checked against the CPU
//     dequantization by tests/cuda/cuda_ops_test.cpp (embed_* and matmul_*).
//
// Constants arrive as #defines (K, N, E, F, ...) before this header, so no
// identifier here may be a constant's name: only lower case and kCamelCase.
#pragma once

#include "kp_params.h"

#define KP_FULL_MASK 0xffffffffu
#define KP_INFINITY __int_as_float(0x7f800000)  // NVRTC has no <math.h> INFINITY

typedef uint16_t kp_half;  // binary16 storage; the CUDA binding type `const __half*` has the same bytes

__device__ __forceinline__ float kp_h2f(kp_half h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ kp_half kp_f2h(float f) {
  kp_half h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// Exact float of a small unsigned integer (< 2^23) without an I2F conversion:
// the bits 0x4B000000 | v are the float 2^23 + v.
__device__ __forceinline__ float kp_small_u2f(uint32_t v) {
  return __int_as_float(0x4B000000u | v) - 8388608.0f;
}

// Dot products with small unsigned integers without integer-to-float
// conversions: a byte holding 0x80 | (q << s) is placed by one PRMT as bits
// 16..23 of a float whose top byte is 0x3F, which is then exactly
// 1 + q * 2^(s - 7). Sum x * (1 + q * 2^(s-7)) and subtract sum x: the
// weights' integer parts cost one PRMT and one FFMA each.
// `packed` holds four such bytes; kp_unit_float(packed, n) is the float of byte n.
__device__ __forceinline__ float kp_unit_float(uint32_t packed, int n) {
  return __uint_as_float(__byte_perm(packed, 0x3Fu, 0x4055u | (uint32_t(n) << 8)));
}

// Programmatic dependent launch (Hopper and later). A launch with the
// programmatic-serialization attribute (an entry with "overlap": true in
// kernels/cuda/registry.json) may start while its predecessor still runs:
//   kp_pdl_wait()     waits until the previous kernel has finished and its
//                     writes are visible; nothing written by an earlier kernel
//                     may be read before it;
//   kp_pdl_trigger()  lets the next kernel of the stream start launching.
// Kernels trigger after they wait, so at most one kernel waits ahead of the one
// running (its blocks hold few SMs), and use the time before the wait for what
// depends on no earlier kernel: prefetching their weights into L2.
// kp_pdl_entry() is both, for kernels with nothing to prefetch. Before sm_90,
// and for launches without the attribute, all are no-ops.
__device__ __forceinline__ void kp_pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void kp_pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void kp_pdl_entry() {
  kp_pdl_wait();
  kp_pdl_trigger();
}

// Asks L2 to fetch bytes [begin, end) of a weight (read-only for the whole
// run, so this may precede kp_pdl_wait()); `limit` is the end of the tensor.
// The range is shrunk to whole 16-byte units inside [begin, limit): the bulk
// prefetch (sm_90) takes 16-byte aligned addresses and sizes. Elsewhere, one
// prefetch per 128-byte line. A hint only: no result depends on it.
__device__ __forceinline__ void kp_prefetch_l2(const uint8_t* begin, const uint8_t* end, const uint8_t* limit) {
  if (end > limit) end = limit;
  const uintptr_t b = (reinterpret_cast<uintptr_t>(begin) + 15u) & ~uintptr_t{15};
  const uintptr_t e = reinterpret_cast<uintptr_t>(end) & ~uintptr_t{15};
  if (e <= b) return;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  for (uintptr_t p = b; p < e; p += 65536u) {
    const uint32_t n = uint32_t(e - p < 65536u ? e - p : 65536u);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(n) : "memory");
  }
#else
  for (uintptr_t p = b; p < e; p += 128u) asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
#endif
}

__device__ __forceinline__ float kp_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(KP_FULL_MASK, v, o);
  return v;
}

__device__ __forceinline__ float kp_warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(KP_FULL_MASK, v, o));
  return v;
}

// Sum over a block of kThreads (a multiple of 32, <= 1024) threads; every thread
// gets the total. `scratch` holds 32 floats of shared memory.
template <int kThreads>
__device__ __forceinline__ float kp_block_sum(float v, float* scratch) {
  constexpr int kWarps = kThreads / 32;
  v = kp_warp_sum(v);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (kWarps == 1) return v;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = lane < kWarps ? scratch[lane] : 0.0f;
  return kp_warp_sum(total);
}

__device__ __forceinline__ float kp_gelu_tanh(float x) {
  const float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float4 kp_load_f4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }
// 16 bytes of activations, from global or shared memory (a generic load: the
// matrix-vector kernels read x from either).
__device__ __forceinline__ float4 kp_load_x4(const float* p) { return *reinterpret_cast<const float4*>(p); }

// 8 bytes at a 2-byte aligned address (Q6_K and Q8_0 blocks are only 2-byte aligned).
__device__ __forceinline__ uint2 kp_load_u64_a2(const uint8_t* p) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  uint2 r;
  r.x = uint32_t(__ldg(h + 0)) | (uint32_t(__ldg(h + 1)) << 16);
  r.y = uint32_t(__ldg(h + 2)) | (uint32_t(__ldg(h + 3)) << 16);
  return r;
}

// The same 8 bytes where the 4 bytes after them and the 2 before a 4-byte
// boundary are readable too (Q6_K's ql and qh runs: the block goes on after
// them, and a block starting 2 bytes past a boundary follows the previous
// row's): three aligned 4-byte loads and two funnel shifts.
__device__ __forceinline__ uint2 kp_load_u64_a2_inner(const uint8_t* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uint32_t* w = reinterpret_cast<const uint32_t*>(a & ~uintptr_t{3});
  const uint32_t shift = uint32_t(a & 3u) * 8u;  // 0 or 16
  const uint32_t w0 = __ldg(w), w1 = __ldg(w + 1), w2 = __ldg(w + 2);
  return make_uint2(__funnelshift_r(w0, w1, shift), __funnelshift_r(w1, w2, shift));
}

__device__ __forceinline__ uint32_t kp_byte(uint32_t word, int i) { return (word >> (8 * i)) & 0xFFu; }

// Byte k (0..11) of the packed K-quant scales, held in header words w1..w3.
__device__ __forceinline__ uint32_t kp_scale_byte(uint32_t w1, uint32_t w2, uint32_t w3, int k) {
  const uint32_t w = k < 4 ? w1 : (k < 8 ? w2 : w3);
  return kp_byte(w, k & 3);
}

// 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block.
__device__ __forceinline__ void kp_kquant_scale_min(uint32_t w1, uint32_t w2, uint32_t w3, int j, float* sc,
                                                    float* m) {
  if (j < 4) {
    *sc = float(kp_scale_byte(w1, w2, w3, j) & 63u);
    *m = float(kp_scale_byte(w1, w2, w3, j + 4) & 63u);
  } else {
    const uint32_t hi = kp_scale_byte(w1, w2, w3, j + 4);
    *sc = float((hi & 0xFu) | ((kp_scale_byte(w1, w2, w3, j - 4) >> 6) << 4));
    *m = float((hi >> 4) | ((kp_scale_byte(w1, w2, w3, j) >> 6) << 4));
  }
}

// ---------------------------------------------------------------------------
// Weight types. Each describes one GGUF row layout:
//   kBlockWeights, kBlockBytes  the quant block
//   decode8(row, k, out)        weights k..k+7 of a row as floats (k % 8 == 0);
//                               used by embeddings and the tiled GEMMs. It is
//                               decode8(load8(row, k), k, out): load8 only reads
//                               (the bytes those weights need, as a Raw), so a
//                               GEMM can issue the next tile's loads before it
//                               multiplies the current one and decode after
//   kChunkWeights, load_x, aux, dot
//                               the matrix-vector inner loop: chunk c of a row is
//                               what one lane handles per step, 16 bytes of
//                               quants where the layout allows; load_x fetches
//                               the matching activations (reused across rows),
//                               aux precomputes what depends on x only.
// ---------------------------------------------------------------------------

struct KpNoAux {};

struct KpWeightF32 {
  static constexpr int kBlockWeights = 1, kBlockBytes = 4, kChunkWeights = 4;
  typedef KpNoAux Aux;
  struct Raw {
    float4 a, b;
  };
  static __device__ __forceinline__ Raw load8(const uint8_t* row, int k) {
    return Raw{kp_load_f4(reinterpret_cast<const float*>(row) + k), kp_load_f4(reinterpret_cast<const float*>(row) + k + 4)};
  }
  static __device__ __forceinline__ void decode8(const Raw& r, int, float* out) {
    out[0] = r.a.x; out[1] = r.a.y; out[2] = r.a.z; out[3] = r.a.w;
    out[4] = r.b.x; out[5] = r.b.y; out[6] = r.b.z; out[7] = r.b.w;
  }
  static __device__ __forceinline__ void decode8(const uint8_t* row, int k, float* out) { decode8(load8(row, k), k, out); }
  static __device__ __forceinline__ void load_x(const float* x, int c, float* xv) {
    const float4 a = kp_load_x4(x + 4 * c);
    xv[0] = a.x; xv[1] = a.y; xv[2] = a.z; xv[3] = a.w;
  }
  static __device__ __forceinline__ Aux aux(const float*) { return Aux{}; }
  static __device__ __forceinline__ float dot(const uint8_t* row, int c, const float* xv, const Aux&) {
    const float4 w = kp_load_f4(reinterpret_cast<const float*>(row) + 4 * c);
    return xv[0] * w.x + xv[1] * w.y + xv[2] * w.z + xv[3] * w.w;
  }
};

struct KpWeightF16 {
  static constexpr int kBlockWeights = 1, kBlockBytes = 2, kChunkWeights = 8;
  typedef KpNoAux Aux;
  static __device__ __forceinline__ void unpack8(uint4 q, float* out) {
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = kp_h2f(kp_half(w[i] & 0xFFFFu));
      out[2 * i + 1] = kp_h2f(kp_half(w[i] >> 16));
    }
  }
  typedef uint4 Raw;
  static __device__ __forceinline__ Raw load8(const uint8_t* row, int k) {
    return __ldg(reinterpret_cast<const uint4*>(row + 2 * k));
  }
  static __device__ __forceinline__ void decode8(const Raw& r, int, float* out) { unpack8(r, out); }
  static __device__ __forceinline__ void decode8(const uint8_t* row, int k, float* out) { decode8(load8(row, k), k, out); }
  static __device__ __forceinline__ void load_x(const float* x, int c, float* xv) {
    const float4 a = kp_load_x4(x + 8 * c), b = kp_load_x4(x + 8 * c + 4);
    xv[0] = a.x; xv[1] = a.y; xv[2] = a.z; xv[3] = a.w;
    xv[4] = b.x; xv[5] = b.y; xv[6] = b.z; xv[7] = b.w;
  }
  static __device__ __forceinline__ Aux aux(const float*) { return Aux{}; }
  static __device__ __forceinline__ float dot(const uint8_t* row, int c, const float* xv, const Aux&) {
    float w[8];
    unpack8(__ldg(reinterpret_cast<const uint4*>(row + 16 * c)), w);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) s += xv[i] * w[i];
    return s;
  }
};

// Q8_0: 34-byte blocks {f16 d; int8 qs[32]}, y = d * q. Blocks are 2-byte aligned.
struct KpWeightQ8_0 {
  static constexpr int kBlockWeights = 32, kBlockBytes = 34, kChunkWeights = 32;
  typedef KpNoAux Aux;
  static __device__ __forceinline__ float i8(uint32_t word, int i) {
    return float(int(int8_t(uint8_t(kp_byte(word, i)))));
  }
  struct Raw {
    uint16_t d;
    uint2 q;
  };
  static __device__ __forceinline__ Raw load8(const uint8_t* row, int k) {
    const uint8_t* b = row + (k / 32) * kBlockBytes;
    return Raw{__ldg(reinterpret_cast<const uint16_t*>(b)), kp_load_u64_a2(b + 2 + (k % 32))};
  }
  static __device__ __forceinline__ void decode8(const Raw& r, int, float* out) {
    const float d = kp_h2f(r.d);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[i] = d * i8(r.q.x, i);
      out[4 + i] = d * i8(r.q.y, i);
    }
  }
  static __device__ __forceinline__ void decode8(const uint8_t* row, int k, float* out) { decode8(load8(row, k), k, out); }
  static __device__ __forceinline__ void load_x(const float* x, int c, float* xv) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float4 a = kp_load_x4(x + 32 * c + 4 * i);
      xv[4 * i] = a.x; xv[4 * i + 1] = a.y; xv[4 * i + 2] = a.z; xv[4 * i + 3] = a.w;
    }
  }
  static __device__ __forceinline__ Aux aux(const float*) { return Aux{}; }
  static __device__ __forceinline__ float dot(const uint8_t* row, int c, const float* xv, const Aux&) {
    const uint8_t* b = row + c * kBlockBytes;
    const float d = kp_h2f(__ldg(reinterpret_cast<const uint16_t*>(b)));
    float s = 0.0f;
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const uint2 q = kp_load_u64_a2(b + 2 + 8 * g);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        s += xv[8 * g + i] * i8(q.x, i);
        s += xv[8 * g + 4 + i] * i8(q.y, i);
      }
    }
    return d * s;
  }
};

// Q4_K: 144-byte super-blocks of 256 weights: {f16 d, dmin; u8 scales[12]; u8 qs[128]}.
// The first 16 bytes (d, dmin, scales) are the header; qs[32j + l] holds weight
// 64j + l (low nibble, sub-block 2j) and 64j + 32 + l (high nibble, sub-block 2j+1).
// y = d * sc[s] * q - dmin * m[s].
struct KpWeightQ4_K {
  static constexpr int kBlockWeights = 256, kBlockBytes = 144, kChunkWeights = 32;
  struct Raw {
    uint4 h;  // d, dmin, scales
    uint2 q;
  };
  static __device__ __forceinline__ Raw load8(const uint8_t* row, int k) {
    const uint8_t* b = row + (k / 256) * kBlockBytes;
    const int r = k % 256, j = r / 64, l0 = r % 32;
    return Raw{__ldg(reinterpret_cast<const uint4*>(b)), __ldg(reinterpret_cast<const uint2*>(b + 16 + 32 * j + l0))};
  }
  static __device__ __forceinline__ void decode8(const Raw& raw, int k, float* out) {
    const int r = k % 256, j = r / 64, hi = (r % 64) / 32;
    float sc, m;
    kp_kquant_scale_min(raw.h.y, raw.h.z, raw.h.w, 2 * j + hi, &sc, &m);
    const float d = kp_h2f(kp_half(raw.h.x & 0xFFFFu)) * sc, dm = kp_h2f(kp_half(raw.h.x >> 16)) * m;
    const int shift = 4 * hi;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[i] = d * float((raw.q.x >> (8 * i + shift)) & 0xFu) - dm;
      out[4 + i] = d * float((raw.q.y >> (8 * i + shift)) & 0xFu) - dm;
    }
  }
  static __device__ __forceinline__ void decode8(const uint8_t* row, int k, float* out) { decode8(load8(row, k), k, out); }
  // Chunk c: block c/8, i = c%8: qs bytes [16i, 16i+16) = 16 weights of
  // sub-block 2j at 64j + 16h + 0..15 (low nibbles) and 16 of sub-block 2j+1 at
  // 64j + 32 + 16h + 0..15 (high nibbles), j = i/2, h = i%2.
  static __device__ __forceinline__ int x_base(int c) {
    const int i = c % 8;
    return 256 * (c / 8) + 64 * (i / 2) + 16 * (i % 2);
  }
  static __device__ __forceinline__ void load_x(const float* x, int c, float* xv) {
    const float* p = x + x_base(c);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float4 lo = kp_load_x4(p + 4 * i), hi = kp_load_x4(p + 32 + 4 * i);
      xv[4 * i] = lo.x; xv[4 * i + 1] = lo.y; xv[4 * i + 2] = lo.z; xv[4 * i + 3] = lo.w;
      xv[16 + 4 * i] = hi.x; xv[17 + 4 * i] = hi.y; xv[18 + 4 * i] = hi.z; xv[19 + 4 * i] = hi.w;
    }
  }
  struct Aux {
    float sum_lo, sum_hi;  // sums of the x values under each sub-block (for the mins)
  };
  static __device__ __forceinline__ Aux aux(const float* xv) {
    Aux a{0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      a.sum_lo += xv[i];
      a.sum_hi += xv[16 + i];
    }
    return a;
  }
  // sum x * q = 16 * (sum x * (1 + q/16) - sum x) for the 4-bit q (kp_unit_float).
  static __device__ __forceinline__ float dot(const uint8_t* row, int c, const float* xv, const Aux& a) {
    const uint8_t* b = row + (c / 8) * kBlockBytes;
    const int i = c % 8, j = i / 2;
    const uint4 h = __ldg(reinterpret_cast<const uint4*>(b));
    const uint4 q = __ldg(reinterpret_cast<const uint4*>(b + 16 + 16 * i));
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    float s_lo = 0.0f, s_hi = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t lo = ((w[k] << 3) & 0x78787878u) | 0x80808080u;  // bytes 0x80 | q << 3
      const uint32_t hi = ((w[k] >> 1) & 0x78787878u) | 0x80808080u;
#pragma unroll
      for (int n = 0; n < 4; ++n) {
        s_lo += xv[4 * k + n] * kp_unit_float(lo, n);
        s_hi += xv[16 + 4 * k + n] * kp_unit_float(hi, n);
      }
    }
    float sc_lo, m_lo, sc_hi, m_hi;
    kp_kquant_scale_min(h.y, h.z, h.w, 2 * j, &sc_lo, &m_lo);
    kp_kquant_scale_min(h.y, h.z, h.w, 2 * j + 1, &sc_hi, &m_hi);
    const float d = kp_h2f(kp_half(h.x & 0xFFFFu)), dmin = kp_h2f(kp_half(h.x >> 16));
    return d * (sc_lo * (16.0f * (s_lo - a.sum_lo)) + sc_hi * (16.0f * (s_hi - a.sum_hi))) -
           dmin * (m_lo * a.sum_lo + m_hi * a.sum_hi);
  }
};

// Q5_K: 176-byte super-blocks: {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}.
// As Q4_K, plus a fifth bit: bit 2j of qh[l] for weight 64j + l, bit 2j+1 for 64j + 32 + l.
struct KpWeightQ5_K {
  static constexpr int kBlockWeights = 256, kBlockBytes = 176, kChunkWeights = 32;
  struct Raw {
    uint4 h;  // d, dmin, scales
    uint2 qh, q;
  };
  static __device__ __forceinline__ Raw load8(const uint8_t* row, int k) {
    const uint8_t* b = row + (k / 256) * kBlockBytes;
    const int r = k % 256, j = r / 64, l0 = r % 32;
    return Raw{__ldg(reinterpret_cast<const uint4*>(b)), __ldg(reinterpret_cast<const uint2*>(b + 16 + l0)),
               __ldg(reinterpret_cast<const uint2*>(b + 48 + 32 * j + l0))};
  }
  static __device__ __forceinline__ void decode8(const Raw& raw, int k, float* out) {
    const int r = k % 256, j = r / 64, hi = (r % 64) / 32;
    float sc, m;
    kp_kquant_scale_min(raw.h.y, raw.h.z, raw.h.w, 2 * j + hi, &sc, &m);
    const float d = kp_h2f(kp_half(raw.h.x & 0xFFFFu)) * sc, dm = kp_h2f(kp_half(raw.h.x >> 16)) * m;
    const int shift = 4 * hi, bit = 2 * j + hi;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t v0 = ((raw.q.x >> (8 * i + shift)) & 0xFu) | (((raw.qh.x >> (8 * i + bit)) & 1u) << 4);
      const uint32_t v1 = ((raw.q.y >> (8 * i + shift)) & 0xFu) | (((raw.qh.y >> (8 * i + bit)) & 1u) << 4);
      out[i] = d * float(v0) - dm;
      out[4 + i] = d * float(v1) - dm;
    }
  }
  static __device__ __forceinline__ void decode8(const uint8_t* row, int k, float* out) { decode8(load8(row, k), k, out); }
  static __device__ __forceinline__ void load_x(const float* x, int c, float* xv) {
    KpWeightQ4_K::load_x(x, c, xv);
  }
  typedef KpWeightQ4_K::Aux Aux;
  static __device__ __forceinline__ Aux aux(const float* xv) { return KpWeightQ4_K::aux(xv); }
  // sum x * q = 32 * (sum x * (1 + q/32) - sum x) for the 5-bit q (kp_unit_float).
  static __device__ __forceinline__ float dot(const uint8_t* row, int c, const float* xv, const Aux& a) {
    const uint8_t* b = row + (c / 8) * kBlockBytes;
    const int i = c % 8, j = i / 2, hh = i % 2;
    const uint4 h = __ldg(reinterpret_cast<const uint4*>(b));
    const uint4 qh4 = __ldg(reinterpret_cast<const uint4*>(b + 16 + 16 * hh));
    const uint4 q = __ldg(reinterpret_cast<const uint4*>(b + 48 + 16 * i));
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    const uint32_t wh[4] = {qh4.x, qh4.y, qh4.z, qh4.w};
    float s_lo = 0.0f, s_hi = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      // fifth bits (bit 2j / 2j+1 of each qh byte) moved to bit 6 of the byte: 0x80 | q << 2
      const uint32_t lo = ((w[k] << 2) & 0x3C3C3C3Cu) | (((wh[k] >> (2 * j)) << 6) & 0x40404040u) | 0x80808080u;
      const uint32_t hi = ((w[k] >> 2) & 0x3C3C3C3Cu) | (((wh[k] >> (2 * j + 1)) << 6) & 0x40404040u) | 0x80808080u;
#pragma unroll
      for (int n = 0; n < 4; ++n) {
        s_lo += xv[4 * k + n] * kp_unit_float(lo, n);
        s_hi += xv[16 + 4 * k + n] * kp_unit_float(hi, n);
      }
    }
    float sc_lo, m_lo, sc_hi, m_hi;
    kp_kquant_scale_min(h.y, h.z, h.w, 2 * j, &sc_lo, &m_lo);
    kp_kquant_scale_min(h.y, h.z, h.w, 2 * j + 1, &sc_hi, &m_hi);
    const float d = kp_h2f(kp_half(h.x & 0xFFFFu)), dmin = kp_h2f(kp_half(h.x >> 16));
    return d * (sc_lo * (32.0f * (s_lo - a.sum_lo)) + sc_hi * (32.0f * (s_hi - a.sum_hi))) -
           dmin * (m_lo * a.sum_lo + m_hi * a.sum_hi);
  }
};

// Q6_K: 210-byte super-blocks (2-byte aligned): {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}.
// For half n (0, 1) and l < 32, with ql = ql + 64n, qh = qh + 32n, sc = scales + 8n:
//   weight 128n + l      = (ql[l] & 15      | ((qh[l] >> 0) & 3) << 4) - 32, scale sc[l/16]
//   weight 128n + l + 32 = (ql[l + 32] & 15 | ((qh[l] >> 2) & 3) << 4) - 32, scale sc[l/16 + 2]
//   weight 128n + l + 64 = (ql[l] >> 4      | ((qh[l] >> 4) & 3) << 4) - 32, scale sc[l/16 + 4]
//   weight 128n + l + 96 = (ql[l + 32] >> 4 | ((qh[l] >> 6) & 3) << 4) - 32, scale sc[l/16 + 6]
// y = d * sc * q.
struct KpWeightQ6_K {
  static constexpr int kBlockWeights = 256, kBlockBytes = 210, kChunkWeights = 32;
  struct Aux {
    float sum[4];  // sums of the four runs of 8 activations of a chunk
  };
  static __device__ __forceinline__ float scale(const uint8_t* b, int s) {
    return float(int(int8_t(__ldg(b + 192 + s))));
  }
  struct Raw {
    uint2 ql, qh;
    uint16_t d;
    int8_t sc;
  };
  static __device__ __forceinline__ Raw load8(const uint8_t* row, int k) {
    const uint8_t* b = row + (k / 256) * kBlockBytes;
    const int r = k % 256, n = r / 128, quarter = (r % 128) / 32, l0 = r % 32;
    return Raw{kp_load_u64_a2_inner(b + 64 * n + 32 * (quarter & 1) + l0), kp_load_u64_a2_inner(b + 128 + 32 * n + l0),
               __ldg(reinterpret_cast<const uint16_t*>(b + 208)), int8_t(__ldg(b + 192 + 8 * n + l0 / 16 + 2 * quarter))};
  }
  static __device__ __forceinline__ void decode8(const Raw& raw, int k, float* out) {
    const int quarter = (k % 128) / 32;
    const float d = kp_h2f(raw.d) * float(int(raw.sc));
    const int lshift = 4 * (quarter >> 1), hshift = 2 * quarter;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t v0 = ((raw.ql.x >> (8 * i + lshift)) & 0xFu) | (((raw.qh.x >> (8 * i + hshift)) & 3u) << 4);
      const uint32_t v1 = ((raw.ql.y >> (8 * i + lshift)) & 0xFu) | (((raw.qh.y >> (8 * i + hshift)) & 3u) << 4);
      out[i] = d * float(int(v0) - 32);
      out[4 + i] = d * float(int(v1) - 32);
    }
  }
  static __device__ __forceinline__ void decode8(const uint8_t* row, int k, float* out) { decode8(load8(row, k), k, out); }
  // Chunk c: block c/8, i = c%8: half n = i/4, l0 = 8 * (i%4); 32 weights at
  // 128n + l0 + {0, 32, 64, 96} + 0..7, from ql[64n + l0 ..], ql[64n + 32 + l0 ..], qh[32n + l0 ..].
  static __device__ __forceinline__ void load_x(const float* x, int c, float* xv) {
    const int i = c % 8;
    const float* p = x + 256 * (c / 8) + 128 * (i / 4) + 8 * (i % 4);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float4 a = kp_load_x4(p + 32 * q), b = kp_load_x4(p + 32 * q + 4);
      xv[8 * q] = a.x; xv[8 * q + 1] = a.y; xv[8 * q + 2] = a.z; xv[8 * q + 3] = a.w;
      xv[8 * q + 4] = b.x; xv[8 * q + 5] = b.y; xv[8 * q + 6] = b.z; xv[8 * q + 7] = b.w;
    }
  }
  static __device__ __forceinline__ Aux aux(const float* xv) {
    Aux a;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      a.sum[q] = 0.0f;
#pragma unroll
      for (int k = 0; k < 8; ++k) a.sum[q] += xv[8 * q + k];
    }
    return a;
  }
  // sum x * (q - 32) = 64 * (sum x * (1 + q/64) - sum x) - 32 * sum x = 64 * S - 96 * sum x
  // for the 6-bit q (kp_unit_float).
  static __device__ __forceinline__ float dot(const uint8_t* row, int c, const float* xv, const Aux& a) {
    const uint8_t* b = row + (c / 8) * kBlockBytes;
    const int i = c % 8, n = i / 4, l0 = 8 * (i % 4);
    const uint2 ql0 = kp_load_u64_a2_inner(b + 64 * n + l0);
    const uint2 ql1 = kp_load_u64_a2_inner(b + 64 * n + 32 + l0);
    const uint2 qh = kp_load_u64_a2_inner(b + 128 + 32 * n + l0);
    const uint32_t lo[2] = {ql0.x, ql0.y}, hi[2] = {ql1.x, ql1.y}, hb[2] = {qh.x, qh.y};
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int w = 0; w < 2; ++w) {
      // bytes 0x80 | q << 1 for the four quarters: 4 low bits and 2 high bits each
      const uint32_t p0 = ((lo[w] << 1) & 0x1E1E1E1Eu) | ((hb[w] << 5) & 0x60606060u) | 0x80808080u;
      const uint32_t p1 = ((hi[w] << 1) & 0x1E1E1E1Eu) | ((hb[w] << 3) & 0x60606060u) | 0x80808080u;
      const uint32_t p2 = ((lo[w] >> 3) & 0x1E1E1E1Eu) | ((hb[w] << 1) & 0x60606060u) | 0x80808080u;
      const uint32_t p3 = ((hi[w] >> 3) & 0x1E1E1E1Eu) | ((hb[w] >> 1) & 0x60606060u) | 0x80808080u;
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int k = 4 * w + e;
        s[0] += xv[k] * kp_unit_float(p0, e);
        s[1] += xv[8 + k] * kp_unit_float(p1, e);
        s[2] += xv[16 + k] * kp_unit_float(p2, e);
        s[3] += xv[24 + k] * kp_unit_float(p3, e);
      }
    }
    const int s0 = 8 * n + l0 / 16;
    const float d = kp_h2f(__ldg(reinterpret_cast<const uint16_t*>(b + 208)));
    return d * (scale(b, s0) * (64.0f * s[0] - 96.0f * a.sum[0]) + scale(b, s0 + 2) * (64.0f * s[1] - 96.0f * a.sum[1]) +
                scale(b, s0 + 4) * (64.0f * s[2] - 96.0f * a.sum[2]) + scale(b, s0 + 6) * (64.0f * s[3] - 96.0f * a.sum[3]));
  }
};
