// cpu_quant_dot.h's arithmetic, compiled once per Highway target: this file
// includes itself through hwy/foreach_target.h, each pass inside
// HWY_NAMESPACE (N_AVX2, N_AVX3, ...); the HWY_ONCE part at the end exports the
// passes and dispatches each call to the best target of the machine.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "backend/cpu/cpu_quant_dot.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "backend/cpu/cpu_quant_dot.h"
#include "core/check.h"
#include "core/fp16.h"
#include "format/quant_blocks.h"

HWY_BEFORE_NAMESPACE();
namespace kp::backend::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 32 lanes of int16, so a 256-element block is whole vectors and a
// 32-element Q4_K sub-block a whole number of them.
using D16 = hn::CappedTag<int16_t, 32>;

void QuantizeActRow(const float* HWY_RESTRICT x, int64_t t, ActBlocks* a) {
  const int64_t cols = a->cols;
  int16_t* q = a->q.data() + t * cols;
  float* d = a->d.data() + t * (cols / kActScale);
  int32_t* sums = a->sums.data() + t * (cols / kActSum);
  float* sums32 = a->sums32.data() + t * (cols / kActScale);
  for (int64_t s = 0; s < cols / kActScale; ++s) {
    const float* xs = x + s * kActScale;
    float amax = 0;
    for (int64_t i = 0; i < kActScale; ++i) amax = std::max(amax, std::fabs(xs[i]));
    const float scale = amax / 32767.0f;
    const float inv = amax > 0 ? 32767.0f / amax : 0.0f;
    d[s] = scale;
    int16_t* qs = q + s * kActScale;
    for (int64_t i = 0; i < kActScale; ++i) {
      qs[i] = static_cast<int16_t>(std::clamp(std::nearbyint(xs[i] * inv), -32767.0f, 32767.0f));
    }
    int32_t half[2] = {0, 0};
    for (int64_t i = 0; i < kActScale; ++i) half[i / kActSum] += qs[i];
    sums[2 * s] = half[0];
    sums[2 * s + 1] = half[1];
    sums32[s] = scale * static_cast<float>(half[0] + half[1]);
  }
}

template <typename Block>
Block load_block(const std::byte* row, int64_t b) {
  Block blk;
  std::memcpy(&blk, row + b * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return blk;
}

// Q4_K: in group g, byte l of qs[32g..) holds weight 64g + l (low nibble,
// sub-block 2g) and 64g + 32 + l (high nibble, sub-block 2g + 1).
void UnpackQ4KRow(const std::byte* HWY_RESTRICT row, int64_t cols, UnpackedRow* out) {
  const D16 d16;
  const hn::Rebind<uint8_t, D16> d8;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const auto low4 = hn::Set(d8, uint8_t{0x0f});
  for (int64_t b = 0; b < cols / format::kQK_K; ++b) {
    const auto blk = load_block<format::BlockQ4_K>(row, b);
    out->d[b] = f16_to_f32(blk.d);
    const float dmin = f16_to_f32(blk.dmin);
    int16_t* q = out->q.data() + b * format::kQK_K;
    for (int g = 0; g < 4; ++g) {
      uint8_t sc1 = 0, m1 = 0, sc2 = 0, m2 = 0;
      format::k_scale_min(2 * g, blk.scales, &sc1, &m1);
      format::k_scale_min(2 * g + 1, blk.scales, &sc2, &m2);
      out->mins[b * 8 + 2 * g] = dmin * m1;
      out->mins[b * 8 + 2 * g + 1] = dmin * m2;
      const auto s1 = hn::Set(d16, static_cast<int16_t>(sc1));
      const auto s2 = hn::Set(d16, static_cast<int16_t>(sc2));
      for (int64_t l = 0; l < 32; l += n) {
        const auto v = hn::LoadU(d8, blk.qs + 32 * g + l);
        const auto lo = hn::BitCast(d16, hn::PromoteTo(hn::RebindToUnsigned<D16>(), hn::And(v, low4)));
        const auto hi = hn::BitCast(d16, hn::PromoteTo(hn::RebindToUnsigned<D16>(), hn::ShiftRight<4>(v)));
        hn::StoreU(hn::Mul(lo, s1), d16, q + 64 * g + l);
        hn::StoreU(hn::Mul(hi, s2), d16, q + 64 * g + 32 + l);
      }
    }
  }
}

// Q6_K: in half h, for l < 32 the weights 128h + l + 32k (k = 0..3) take
// their low 4 bits from ql[l] (k = 0 low, k = 2 high nibble) or ql[l + 32]
// (k = 1, 3) and their high 2 bits from bits 2k..2k+1 of qh[l]; sub-block =
// index / 16. At most 16 lanes here, so one vector has one sub-block scale.
void UnpackQ6KRow(const std::byte* HWY_RESTRICT row, int64_t cols, UnpackedRow* out) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::RebindToUnsigned<decltype(d16)> du16;
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const auto low4 = hn::Set(d8, uint8_t{0x0f});
  const auto low2 = hn::Set(d8, uint8_t{3});
  const auto bias = hn::Set(d16, int16_t{32});
  for (int64_t b = 0; b < cols / format::kQK_K; ++b) {
    const auto blk = load_block<format::BlockQ6_K>(row, b);
    out->d[b] = f16_to_f32(blk.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk.ql + 64 * h;
      const uint8_t* qh = blk.qh + 32 * h;
      const int8_t* sc = blk.scales + 8 * h;
      int16_t* q = out->q.data() + b * format::kQK_K + 128 * h;
      for (int64_t l = 0; l < 32; l += n) {
        const auto a = hn::LoadU(d8, ql + l);
        const auto c = hn::LoadU(d8, ql + 32 + l);
        const auto hb = hn::LoadU(d8, qh + l);
        const decltype(a) parts[4] = {
            hn::Or(hn::And(a, low4), hn::ShiftLeft<4>(hn::And(hb, low2))),
            hn::Or(hn::And(c, low4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), low2))),
            hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), low2))),
            hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb))),
        };
        const int64_t is = l / 16;
        for (int k = 0; k < 4; ++k) {
          const auto w = hn::Sub(hn::BitCast(d16, hn::PromoteTo(du16, parts[k])), bias);
          hn::StoreU(hn::Mul(w, hn::Set(d16, static_cast<int16_t>(sc[is + 2 * k]))), d16, q + l + 32 * k);
        }
      }
    }
  }
}

// sum over 32-element segments s of wd[s / 8] * xd[s] * (w · x over s), for
// |w| <= kMaxAbsW and |x| <= 32767. Each vector adds at most 2 products to a 32-bit
// lane, so the lanes are moved to f32 every `group` vectors, before
// 2 * group * kMaxAbsW * 32767 could pass INT32_MAX.
template <int64_t kMaxAbsW>
float DotBlocks(const int16_t* HWY_RESTRICT w, const int16_t* HWY_RESTRICT x, const float* HWY_RESTRICT wd,
                const float* HWY_RESTRICT xd, int64_t n_blocks) {
  const D16 d16;
  const hn::Repartition<int32_t, D16> d32;
  const hn::Repartition<float, D16> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const int64_t per_seg = kActScale / n;
  constexpr int64_t kSafeVectors = INT32_MAX / (kMaxAbsW * 32767) / 2;
  static_assert(kSafeVectors >= 2, "a weight this large needs 32-bit activations");
  int64_t group = 1;
  while (group * 2 <= kSafeVectors && group * 2 <= per_seg) group *= 2;
  constexpr int64_t kSegs = kActBlock / kActScale;
  auto acc = hn::Zero(df);
  for (int64_t sg = 0; sg < n_blocks * kSegs; ++sg) {
    const auto scale = hn::Set(df, wd[sg / kSegs] * xd[sg]);
    const int16_t* wb = w + sg * kActScale;
    const int16_t* xb = x + sg * kActScale;
    for (int64_t g = 0; g < per_seg; g += group) {
      auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
      auto t0 = hn::Zero(d32), t1 = hn::Zero(d32);
      int64_t v = g;
      for (; v + 1 < g + group; v += 2) {  // two chains, so loads and multiplies overlap
        s0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, wb + v * n), hn::LoadU(d16, xb + v * n), s0, s1);
        t0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, wb + (v + 1) * n), hn::LoadU(d16, xb + (v + 1) * n),
                                           t0, t1);
      }
      if (v < g + group) {
        s0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, wb + v * n), hn::LoadU(d16, xb + v * n), s0, s1);
      }
      // The integer sums are exact, so this is bit for bit DotBlocks4's result
      // for the row (a row's value does not depend on which path computed it).
      const auto sum = hn::Add(hn::RearrangeToOddPlusEven(s0, s1), hn::RearrangeToOddPlusEven(t0, t1));
      acc = hn::MulAdd(hn::ConvertTo(df, sum), scale, acc);
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

// As DotBlocks for 4 weight rows against one activation row: each activation
// vector is loaded once for the 4 rows.
template <int64_t kMaxAbsW>
void DotBlocks4(const UnpackedRow* const* rows, const int16_t* HWY_RESTRICT x, const float* HWY_RESTRICT xd,
                int64_t n_blocks, float* out) {
  const D16 d16;
  const hn::Repartition<int32_t, D16> d32;
  const hn::Repartition<float, D16> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const int64_t per_seg = kActScale / n;
  constexpr int64_t kSafeVectors = INT32_MAX / (kMaxAbsW * 32767) / 2;
  int64_t group = 1;
  while (group * 2 <= kSafeVectors && group * 2 <= per_seg) group *= 2;
  constexpr int64_t kSegs = kActBlock / kActScale;
  const int16_t* w0 = rows[0]->q.data();
  const int16_t* w1 = rows[1]->q.data();
  const int16_t* w2 = rows[2]->q.data();
  const int16_t* w3 = rows[3]->q.data();
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  for (int64_t sg = 0; sg < n_blocks * kSegs; ++sg) {
    const int64_t b = sg / kSegs;
    const auto c0 = hn::Set(df, rows[0]->d[b] * xd[sg]);
    const auto c1 = hn::Set(df, rows[1]->d[b] * xd[sg]);
    const auto c2 = hn::Set(df, rows[2]->d[b] * xd[sg]);
    const auto c3 = hn::Set(df, rows[3]->d[b] * xd[sg]);
    const int64_t base = sg * kActScale;
    for (int64_t g = 0; g < per_seg; g += group) {
      auto s0 = hn::Zero(d32), s1 = hn::Zero(d32), s2 = hn::Zero(d32), s3 = hn::Zero(d32);
      auto u0 = hn::Zero(d32), u1 = hn::Zero(d32), u2 = hn::Zero(d32), u3 = hn::Zero(d32);
      for (int64_t v = g; v < g + group; ++v) {
        const int64_t i = base + v * n;
        const auto xv = hn::LoadU(d16, x + i);
        s0 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, w0 + i), xv, s0, u0);
        s1 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, w1 + i), xv, s1, u1);
        s2 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, w2 + i), xv, s2, u2);
        s3 = hn::ReorderWidenMulAccumulate(d32, hn::LoadU(d16, w3 + i), xv, s3, u3);
      }
      a0 = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0, u0)), c0, a0);
      a1 = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s1, u1)), c1, a1);
      a2 = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s2, u2)), c2, a2);
      a3 = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s3, u3)), c3, a3);
    }
  }
  out[0] = hn::GetLane(hn::SumOfLanes(df, a0));
  out[1] = hn::GetLane(hn::SumOfLanes(df, a1));
  out[2] = hn::GetLane(hn::SumOfLanes(df, a2));
  out[3] = hn::GetLane(hn::SumOfLanes(df, a3));
}

float DotF32(const float* HWY_RESTRICT w, const float* HWY_RESTRICT x, int64_t n);

// Q4_K's offsets: sum over sub-blocks j of dmin * m[j] times the sum of the
// 32 activations of j (in sums32, with the activation scale applied).
float Q4KOffset(const UnpackedRow& w, const ActBlocks& x, int64_t t) {
  const int64_t n = x.cols / 32;
  return DotF32(w.mins.data(), x.sums32.data() + t * n, n);
}

float DotQ4K(const UnpackedRow& w, const ActBlocks& x, int64_t t) {
  const int64_t nb = x.cols / kActBlock;
  const float* xd = x.d.data() + t * (x.cols / kActScale);
  return DotBlocks<945>(w.q.data(), x.q.data() + t * x.cols, w.d.data(), xd, nb) - Q4KOffset(w, x, t);
}

void DotQ4K4(const UnpackedRow* const* rows, const ActBlocks* x, int64_t t, float* out) {
  const int64_t nb = x->cols / kActBlock;
  DotBlocks4<945>(rows, x->q.data() + t * x->cols, x->d.data() + t * (x->cols / kActScale), nb, out);
  for (int i = 0; i < 4; ++i) out[i] -= Q4KOffset(*rows[i], *x, t);
}

// One Q4_K row as stored against activation row t, without unpacking: the
// nibbles are widened to 16 bits and multiplied with the activations, and
// each 32-element sub-block's integer sum is scaled by d * sc * (activation
// scale) in f32. For single-token dispatches, where an unpacked row would be
// used once.
float DotQ4KPacked(const std::byte* HWY_RESTRICT row, const ActBlocks* x, int64_t t) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::RebindToUnsigned<decltype(d16)> du16;
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Repartition<float, decltype(d16)> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const int64_t nb = x->cols / format::kQK_K;
  const int16_t* xq = x->q.data() + t * x->cols;
  const float* xd = x->d.data() + t * (x->cols / kActScale);
  const float* sums32 = x->sums32.data() + t * (x->cols / kActScale);
  const auto low4 = hn::Set(du16, uint16_t{0x0f});
  auto acc = hn::Zero(df);
  float offset = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<format::BlockQ4_K>(row, b);
    const float d = f16_to_f32(blk.d);
    const float dmin = f16_to_f32(blk.dmin);
    const int16_t* xb = xq + b * format::kQK_K;
    // The 8 sub-blocks' f32 scales (d * sc * activation scale) and offsets, in one pass.
    float scale[8];
    float mins = 0;
    for (int j = 0; j < 8; ++j) {
      uint8_t sc = 0, m = 0;
      format::k_scale_min(j, blk.scales, &sc, &m);
      scale[j] = d * static_cast<float>(sc) * xd[b * 8 + j];
      mins += static_cast<float>(m) * sums32[b * 8 + j];
    }
    offset += dmin * mins;
    for (int g = 0; g < 4; ++g) {
      auto lo0 = hn::Zero(d32), lo1 = hn::Zero(d32), hi0 = hn::Zero(d32), hi1 = hn::Zero(d32);
      for (int64_t l = 0; l < 32; l += n) {  // 32 bytes: weights 64g + l (low nibble), 64g + 32 + l (high)
        const auto w = hn::PromoteTo(du16, hn::LoadU(d8, blk.qs + 32 * g + l));
        const auto lo = hn::BitCast(d16, hn::And(w, low4));
        const auto hi = hn::BitCast(d16, hn::ShiftRight<4>(w));
        lo0 = hn::ReorderWidenMulAccumulate(d32, lo, hn::LoadU(d16, xb + 64 * g + l), lo0, lo1);
        hi0 = hn::ReorderWidenMulAccumulate(d32, hi, hn::LoadU(d16, xb + 64 * g + 32 + l), hi0, hi1);
      }
      acc = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(lo0, lo1)), hn::Set(df, scale[2 * g]), acc);
      acc = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(hi0, hi1)), hn::Set(df, scale[2 * g + 1]), acc);
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, acc)) - offset;
}

// One Q6_K row as stored against activation row t (as DotQ4KPacked): the
// 6-bit quants are assembled and widened as in UnpackQ6KRow, multiplied by
// their sub-block scale in 16 bits and with the activations into 32-bit
// lanes, which go to f32 after every vector (at most 2 products of
// 4096 * 32767 per lane).
float DotQ6KPacked(const std::byte* HWY_RESTRICT row, const ActBlocks* x, int64_t t) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::RebindToUnsigned<decltype(d16)> du16;
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Repartition<float, decltype(d16)> df;
  const int64_t n = static_cast<int64_t>(hn::Lanes(d16));
  const int64_t nb = x->cols / format::kQK_K;
  const int16_t* xq = x->q.data() + t * x->cols;
  const float* xd = x->d.data() + t * (x->cols / kActScale);
  const auto low4 = hn::Set(d8, uint8_t{0x0f});
  const auto low2 = hn::Set(d8, uint8_t{3});
  const auto bias = hn::Set(d16, int16_t{32});
  auto acc = hn::Zero(df);
  for (int64_t b = 0; b < nb; ++b) {
    const auto blk = load_block<format::BlockQ6_K>(row, b);
    const float d = f16_to_f32(blk.d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = blk.ql + 64 * h;
      const uint8_t* qh = blk.qh + 32 * h;
      const int8_t* sc = blk.scales + 8 * h;
      const int16_t* xh = xq + b * format::kQK_K + 128 * h;
      const float* xdh = xd + b * 8 + 4 * h;  // segment k of this half: elements 32k .. 32k + 31
      for (int64_t l = 0; l < 32; l += n) {
        const auto a = hn::LoadU(d8, ql + l);
        const auto c = hn::LoadU(d8, ql + 32 + l);
        const auto hb = hn::LoadU(d8, qh + l);
        const decltype(a) parts[4] = {
            hn::Or(hn::And(a, low4), hn::ShiftLeft<4>(hn::And(hb, low2))),
            hn::Or(hn::And(c, low4), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<2>(hb), low2))),
            hn::Or(hn::ShiftRight<4>(a), hn::ShiftLeft<4>(hn::And(hn::ShiftRight<4>(hb), low2))),
            hn::Or(hn::ShiftRight<4>(c), hn::ShiftLeft<4>(hn::ShiftRight<6>(hb))),
        };
        const int64_t is = l / 16;
        for (int k = 0; k < 4; ++k) {
          const auto w = hn::Mul(hn::Sub(hn::BitCast(d16, hn::PromoteTo(du16, parts[k])), bias),
                                 hn::Set(d16, static_cast<int16_t>(sc[is + 2 * k])));
          auto s0 = hn::Zero(d32), s1 = hn::Zero(d32);
          s0 = hn::ReorderWidenMulAccumulate(d32, w, hn::LoadU(d16, xh + l + 32 * k), s0, s1);
          acc = hn::MulAdd(hn::ConvertTo(df, hn::RearrangeToOddPlusEven(s0, s1)), hn::Set(df, d * xdh[k]), acc);
        }
      }
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, acc));
}

float DotQ6K(const UnpackedRow& w, const ActBlocks& x, int64_t t) {
  const int64_t nb = x.cols / kActBlock;
  return DotBlocks<4096>(w.q.data(), x.q.data() + t * x.cols, w.d.data(), x.d.data() + t * (x.cols / kActScale),
                         nb);
}

void DotQ6K4(const UnpackedRow* const* rows, const ActBlocks* x, int64_t t, float* out) {
  const int64_t nb = x->cols / kActBlock;
  DotBlocks4<4096>(rows, x->q.data() + t * x->cols, x->d.data() + t * (x->cols / kActScale), nb, out);
}

float DotF32(const float* HWY_RESTRICT w, const float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    a0 = hn::MulAdd(hn::LoadU(df, w + i), hn::LoadU(df, x + i), a0);
    a1 = hn::MulAdd(hn::LoadU(df, w + i + lanes), hn::LoadU(df, x + i + lanes), a1);
    a2 = hn::MulAdd(hn::LoadU(df, w + i + 2 * lanes), hn::LoadU(df, x + i + 2 * lanes), a2);
    a3 = hn::MulAdd(hn::LoadU(df, w + i + 3 * lanes), hn::LoadU(df, x + i + 3 * lanes), a3);
  }
  for (; i + lanes <= n; i += lanes) a0 = hn::MulAdd(hn::LoadU(df, w + i), hn::LoadU(df, x + i), a0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

float DotF16(const uint16_t* HWY_RESTRICT w, const float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const auto* wh = reinterpret_cast<const hwy::float16_t*>(w);
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  auto a0 = hn::Zero(df), a1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    a0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, wh + i)), hn::LoadU(df, x + i), a0);
    a1 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, wh + i + lanes)), hn::LoadU(df, x + i + lanes), a1);
  }
  for (; i + lanes <= n; i += lanes) a0 = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dh, wh + i)), hn::LoadU(df, x + i), a0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1)));
  for (; i < n; ++i) sum += f16_to_f32(w[i]) * x[i];
  return sum;
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace kp::backend::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kp::backend::cpu {

HWY_EXPORT(QuantizeActRow);
HWY_EXPORT(UnpackQ4KRow);
HWY_EXPORT(UnpackQ6KRow);
HWY_EXPORT(DotQ4K);
HWY_EXPORT(DotQ6K);
HWY_EXPORT(DotQ4K4);
HWY_EXPORT(DotQ4KPacked);
HWY_EXPORT(DotQ6KPacked);
HWY_EXPORT(DotQ6K4);
HWY_EXPORT(DotF32);
HWY_EXPORT(DotF16);
HWY_EXPORT(TargetName);

void ActBlocks::resize(int64_t n_rows, int64_t n_cols) {
  KP_CHECK(n_cols % kActBlock == 0, "activation rows are whole blocks of 256");
  rows = n_rows;
  cols = n_cols;
  q.resize(static_cast<size_t>(n_rows * n_cols));
  d.resize(static_cast<size_t>(n_rows * (n_cols / kActScale)));
  sums.resize(static_cast<size_t>(n_rows * (n_cols / kActSum)));
  sums32.resize(static_cast<size_t>(n_rows * (n_cols / 32)));
}

void quantize_act_row(const float* x, int64_t t, ActBlocks& a) {
  KP_CHECK(t >= 0 && t < a.rows, "activation row out of range");
  HWY_DYNAMIC_DISPATCH(QuantizeActRow)(x, t, &a);
}

namespace {
void size_row(int64_t cols, UnpackedRow& out) {
  KP_CHECK(cols % format::kQK_K == 0, "K-quant rows are whole blocks of 256");
  out.q.resize(static_cast<size_t>(cols));
  out.d.resize(static_cast<size_t>(cols / format::kQK_K));
  out.mins.resize(static_cast<size_t>(cols / 32));
}
}  // namespace

void unpack_q4k_row(const std::byte* row, int64_t cols, UnpackedRow& out) {
  size_row(cols, out);
  HWY_DYNAMIC_DISPATCH(UnpackQ4KRow)(row, cols, &out);
}

void unpack_q6k_row(const std::byte* row, int64_t cols, UnpackedRow& out) {
  size_row(cols, out);
  HWY_DYNAMIC_DISPATCH(UnpackQ6KRow)(row, cols, &out);
}

float dot_q4k(const UnpackedRow& w, const ActBlocks& x, int64_t t) {
  KP_CHECK(static_cast<int64_t>(w.q.size()) == x.cols, "weight and activation rows differ in length");
  return HWY_DYNAMIC_DISPATCH(DotQ4K)(w, x, t);
}

float dot_q6k(const UnpackedRow& w, const ActBlocks& x, int64_t t) {
  KP_CHECK(static_cast<int64_t>(w.q.size()) == x.cols, "weight and activation rows differ in length");
  return HWY_DYNAMIC_DISPATCH(DotQ6K)(w, x, t);
}

void dot4_q4k(const UnpackedRow* const rows[4], const ActBlocks& x, int64_t t, float out[4]) {
  for (int i = 0; i < 4; ++i) KP_CHECK(static_cast<int64_t>(rows[i]->q.size()) == x.cols, "row lengths differ");
  HWY_DYNAMIC_DISPATCH(DotQ4K4)(rows, &x, t, out);
}

void dot4_q6k(const UnpackedRow* const rows[4], const ActBlocks& x, int64_t t, float out[4]) {
  for (int i = 0; i < 4; ++i) KP_CHECK(static_cast<int64_t>(rows[i]->q.size()) == x.cols, "row lengths differ");
  HWY_DYNAMIC_DISPATCH(DotQ6K4)(rows, &x, t, out);
}

float dot_q4k_packed(const std::byte* row, const ActBlocks& x, int64_t t) {
  return HWY_DYNAMIC_DISPATCH(DotQ4KPacked)(row, &x, t);
}

float dot_q6k_packed(const std::byte* row, const ActBlocks& x, int64_t t) {
  return HWY_DYNAMIC_DISPATCH(DotQ6KPacked)(row, &x, t);
}

float dot_f32(const float* w, const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotF32)(w, x, n); }
float dot_f16(const uint16_t* w, const float* x, int64_t n) { return HWY_DYNAMIC_DISPATCH(DotF16)(w, x, n); }

std::string simd_target() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace kp::backend::cpu
#endif  // HWY_ONCE
