// cpu_quant_dot_x8.h's arithmetic, compiled once per Highway target (this file
// includes itself through hwy/foreach_target.h, as cpu_quant_dot.cpp does).
// The 32-element integer products are the only target-specific part: x86
// targets with AVX2 use vpmaddubsw / vpmaddwd, the others plain loops.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/cpu_quant_dot_x8.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/cpu/cpu_quant_dot_x8.h"
#include "core/check.h"
#include "core/fp16.h"
#include "format/quant_blocks.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace kp::backend::cpu {
namespace HWY_NAMESPACE {

#undef KP_X8_AVX2  // defined again for each target
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || \
                     HWY_TARGET == HWY_AVX3_ZEN4 || HWY_TARGET == HWY_AVX3_SPR)
#define KP_X8_AVX2 1
#else
#define KP_X8_AVX2 0
#endif

void QuantizeX8Row(const float* HWY_RESTRICT x, int64_t t, ActX8* a) {
  const int64_t cols = a->cols;
  int8_t* q = a->q.data() + t * cols;
  float* d = a->d.data() + t * (cols / kX8Block);
  float* dsum16 = a->dsum16.data() + t * (cols / 16);
  float* dsum32 = a->dsum32.data() + t * (cols / kX8Block);
  for (int64_t b = 0; b < cols / kX8Block; ++b) {
    const float* xb = x + b * kX8Block;
    float amax = 0.0f;
    for (int64_t i = 0; i < kX8Block; ++i) amax = std::max(amax, std::fabs(xb[i]));
    const float db = amax / 127.0f;
    // Below FLT_MIN (zero or subnormal), 1 / d overflows: such a block is zeros.
    const float id = db >= std::numeric_limits<float>::min() ? 1.0f / db : 0.0f;
    d[b] = db;
    int16_t s[2] = {0, 0};
    for (int64_t i = 0; i < kX8Block; ++i) {
      const auto v = static_cast<int8_t>(std::clamp(std::nearbyint(xb[i] * id), -127.0f, 127.0f));
      q[b * kX8Block + i] = v;
      s[i / 16] = static_cast<int16_t>(s[i / 16] + v);
    }
    dsum16[2 * b] = db * static_cast<float>(s[0]);
    dsum16[2 * b + 1] = db * static_cast<float>(s[1]);
    dsum32[b] = db * static_cast<float>(s[0] + s[1]);
  }
}

// Q4_K's 8 sub-block scales and mins (6 bits each, packed in 12 bytes) as bytes.
HWY_INLINE void Q4KScales(const uint8_t* s, uint8_t sc[8], uint8_t m[8]) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4);
  std::memcpy(&b, s + 4, 4);
  std::memcpy(&c, s + 8, 4);
  const uint32_t sc_lo = a & 0x3f3f3f3fu, m_lo = b & 0x3f3f3f3fu;
  const uint32_t sc_hi = (c & 0x0f0f0f0fu) | ((a >> 2) & 0x30303030u);
  const uint32_t m_hi = ((c >> 4) & 0x0f0f0f0fu) | ((b >> 2) & 0x30303030u);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

#if KP_X8_AVX2
// 8 lanes of i32 partial sums of w[i] * x[i] over 32 lanes (lane j: elements
// 4j .. 4j + 3): w unsigned bytes below 128, x signed.
HWY_INLINE __m256 Dot32(__m256i w, const int8_t* x) {
  const __m256i p16 = _mm256_maddubs_epi16(w, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)));
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

HWY_INLINE float H2F(uint16_t h) { return _cvtsh_ss(h); }

// 8 unsigned / signed bytes as 8 floats.
HWY_INLINE __m256 U8x8(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
HWY_INLINE __m256 I8x8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

HWY_INLINE float SumLanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

float DotQ4KX8(const std::byte* HWY_RESTRICT row, const ActX8* x, int64_t t) {
  const int64_t nb = x->cols / format::kQK_K;
  const ActX8::Row xr = x->row(t);
  float acc = 0.0f, offset = 0.0f;
#if KP_X8_AVX2
  __m256 vacc = _mm256_setzero_ps(), voff = _mm256_setzero_ps();
  const __m256i mask = _mm256_set1_epi8(0x0f);
#endif
  for (int64_t b = 0; b < nb; ++b) {
    const std::byte* blk = row + b * static_cast<int64_t>(sizeof(format::BlockQ4_K));
    uint16_t dh, dminh;
    std::memcpy(&dh, blk, 2);
    std::memcpy(&dminh, blk + 2, 2);
    uint8_t sc[8], m[8];
    Q4KScales(reinterpret_cast<const uint8_t*>(blk) + 4, sc, m);
    const uint8_t* qs = reinterpret_cast<const uint8_t*>(blk) + 16;
    const int8_t* xb = xr.q + b * format::kQK_K;
    const float* db = xr.d + b * 8;
    const float* ds = xr.dsum32 + b * 8;
    alignas(32) float scale[8];  // d * sc[j] * (activation block j's d)
#if KP_X8_AVX2
    // mins: dmin * m[j] * (d * sum q) of activation block j, in lanes.
    voff = _mm256_fmadd_ps(_mm256_mul_ps(U8x8(m), _mm256_set1_ps(H2F(dminh))), _mm256_loadu_ps(ds), voff);
    _mm256_store_ps(scale, _mm256_mul_ps(_mm256_mul_ps(U8x8(sc), _mm256_set1_ps(H2F(dh))), _mm256_loadu_ps(db)));
#else
    const float d = f16_to_f32(dh), dmin = f16_to_f32(dminh);
    float mins = 0.0f;
    for (int j = 0; j < 8; ++j) {
      mins += static_cast<float>(m[j]) * ds[j];
      scale[j] = d * static_cast<float>(sc[j]) * db[j];
    }
    offset += dmin * mins;
#endif
    for (int g = 0; g < 4; ++g) {  // 32 bytes: weights 64g + l (low nibble), 64g + 32 + l (high)
#if KP_X8_AVX2
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * g));
      vacc = _mm256_fmadd_ps(Dot32(_mm256_and_si256(v, mask), xb + 64 * g), _mm256_set1_ps(scale[2 * g]), vacc);
      vacc = _mm256_fmadd_ps(Dot32(_mm256_and_si256(_mm256_srli_epi16(v, 4), mask), xb + 64 * g + 32),
                             _mm256_set1_ps(scale[2 * g + 1]), vacc);
#else
      int32_t lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += (qs[32 * g + l] & 0x0f) * xb[64 * g + l];
        hi += (qs[32 * g + l] >> 4) * xb[64 * g + 32 + l];
      }
      acc += scale[2 * g] * static_cast<float>(lo) + scale[2 * g + 1] * static_cast<float>(hi);
#endif
    }
  }
#if KP_X8_AVX2
  acc = SumLanes(vacc);
  offset = SumLanes(voff);
#endif
  return acc - offset;
}

// Q6_K: in half h, for l < 32, weight 128h + 32k + l (k = 0..3) takes its low
// 4 bits from ql[64h + l] (k = 0 low nibble, k = 2 high) or ql[64h + 32 + l]
// (k = 1, 3) and its high 2 bits from bits 2k..2k+1 of qh[32h + l]; q - 32
// with the scale of its 16 (index / 16). The 32 weights of one (h, k) are one
// activation block: sum (q - 32) x = sum q x - 32 sum x, per 16.
float DotQ6KX8(const std::byte* HWY_RESTRICT row, const ActX8* x, int64_t t) {
  const int64_t nb = x->cols / format::kQK_K;
  const ActX8::Row xr = x->row(t);
  float acc = 0.0f, offset = 0.0f;
#if KP_X8_AVX2
  __m256 vacc = _mm256_setzero_ps(), voff = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x30);
#endif
  for (int64_t b = 0; b < nb; ++b) {
    const auto* blk = reinterpret_cast<const uint8_t*>(row + b * static_cast<int64_t>(sizeof(format::BlockQ6_K)));
    uint16_t dh;
    std::memcpy(&dh, blk + 208, 2);
    const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
    const int8_t* xb = xr.q + b * format::kQK_K;
    const float* db = xr.d + b * 8;
    // The -32 of every weight: 32 d * sum over the 16s of scale * (d * sum q) of the activations.
    const float* ds = xr.dsum16 + b * 16;
#if KP_X8_AVX2
    const float d = H2F(dh);
    const __m256 d32 = _mm256_set1_ps(32.0f * d);
    voff = _mm256_fmadd_ps(_mm256_mul_ps(I8x8(scales), d32), _mm256_loadu_ps(ds), voff);
    voff = _mm256_fmadd_ps(_mm256_mul_ps(I8x8(scales + 8), d32), _mm256_loadu_ps(ds + 8), voff);
#else
    const float d = f16_to_f32(dh);
    float bias = 0.0f;
    for (int i = 0; i < 16; ++i) bias += static_cast<float>(scales[i]) * ds[i];
    offset += 32.0f * d * bias;
#endif
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk + 64 * h;
      const uint8_t* qh = blk + 128 + 32 * h;
#if KP_X8_AVX2
      const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m2)),
          _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                          _mm256_and_si256(_mm256_srli_epi16(hb, 2), m2)),
      };
      for (int k = 0; k < 4; ++k) {
        const int blk32 = 4 * h + k, g = 8 * h + 2 * k;  // activation block; scale of its first 16
        // Lanes 0..3 hold the first 16 weights' sums, 4..7 the second's.
        const float sa = d * db[blk32] * static_cast<float>(scales[g]);
        const float sb16 = d * db[blk32] * static_cast<float>(scales[g + 1]);
        vacc = _mm256_fmadd_ps(Dot32(q[k], xb + 32 * blk32), _mm256_setr_ps(sa, sa, sa, sa, sb16, sb16, sb16, sb16),
                               vacc);
      }
#else
      for (int k = 0; k < 4; ++k) {
        const int blk32 = 4 * h + k, g = 8 * h + 2 * k;
        int32_t s[2] = {0, 0};
        for (int l = 0; l < 32; ++l) {
          const uint8_t lo4 = k % 2 == 0 ? ql[l] : ql[32 + l];
          const int v = ((k < 2 ? lo4 & 0x0f : lo4 >> 4) | (((qh[l] >> (2 * k)) & 3) << 4));
          s[l / 16] += v * xb[32 * blk32 + l];
        }
        acc += d * db[blk32] * static_cast<float>(scales[g] * s[0] + scales[g + 1] * s[1]);
      }
#endif
    }
  }
#if KP_X8_AVX2
  acc = SumLanes(vacc);
  offset = SumLanes(voff);
#endif
  return acc - offset;
}

}  // namespace HWY_NAMESPACE
}  // namespace kp::backend::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kp::backend::cpu {

HWY_EXPORT(QuantizeX8Row);
HWY_EXPORT(DotQ4KX8);
HWY_EXPORT(DotQ6KX8);

void ActX8::resize(int64_t n_rows, int64_t n_cols) {
  KP_CHECK(n_cols % format::kQK_K == 0, "8-bit activation rows are whole K-quant blocks of 256");
  rows = n_rows;
  cols = n_cols;
  q.resize(static_cast<size_t>(n_rows * n_cols));
  d.resize(static_cast<size_t>(n_rows * n_cols / kX8Block));
  dsum16.resize(static_cast<size_t>(n_rows * n_cols / 16));
  dsum32.resize(static_cast<size_t>(n_rows * n_cols / kX8Block));
}

void quantize_x8_row(const float* x, int64_t t, ActX8& a) { HWY_DYNAMIC_DISPATCH(QuantizeX8Row)(x, t, &a); }

float dot_q4k_x8(const std::byte* row, const ActX8& x, int64_t t) { return HWY_DYNAMIC_DISPATCH(DotQ4KX8)(row, &x, t); }

float dot_q6k_x8(const std::byte* row, const ActX8& x, int64_t t) { return HWY_DYNAMIC_DISPATCH(DotQ6KX8)(row, &x, t); }

}  // namespace kp::backend::cpu
#endif  // HWY_ONCE
