// mma.cuh: binary16 tensor-core helpers shared by the *_h16 kernels
// (gemm_h16.cuh, attention_h16.cu): f32 -> f16x2 packing, shared-memory
// addresses, ldmatrix (plain and transposed) and mma.sync.m16n8k16 with f32
// accumulation (sm_80 and later: registry feature "mma_f16").
#pragma once

#include "common.cuh"

// Two floats as one f16x2 word (lo in the low half), round to nearest even.
__device__ __forceinline__ uint32_t kp_pack_h2(float lo, float hi) {
  uint32_t r;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

__device__ __forceinline__ uint32_t kp_smem_addr(const void* p) {
  uint32_t a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}

__device__ __forceinline__ void kp_ldsm_x4(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(kp_smem_addr(p)));
}

// c (16 x 8, f32) += a (16 x 16, f16, row-major fragment) * b (16 x 8, f16,
// column fragment).
__device__ __forceinline__ void kp_mma_h16(float* c, const uint32_t* a, const uint32_t* b) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// ldmatrix .trans: mma's B fragments of a 16 (k) x 16 (n) block stored k-major (attention's values:
// keys x dimensions).
__device__ __forceinline__ void kp_ldsm_x4_t(uint32_t* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(kp_smem_addr(p)));
}
