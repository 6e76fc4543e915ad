// CPU reference kernels of the attention block: rope_neox, attention
// (causal GQA with logit softcap and sliding window, appending the batch's
// k, v rows to the caches), attention_rope (both in one) and attention_h16
// (attention on binary16 operands), exactly as
// docs/kernels.md defines them. Dot
// products, softmax and the weighted sum of v are computed in double.
// Tests: tests/runtime/cpu_kernels_test.cpp, tests/runtime/op_harness_test.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernel.h"
#include "core/fp16.h"

namespace kp::backend::cpu {
namespace {

// Rotates rows [T, cols] of heads of d values: for each head and i < d/2,
// (x[i], x[i + d/2]) by theta = positions[t] * pow(base, -2i/d), theta computed
// in f32 as the docs define it; its cos/sin and the rotation in double. y may
// alias x.
void rope_rows(const float* x, const int32_t* positions, float* y, int64_t t_rows, int64_t cols, int64_t d,
               float base, ThreadPool& pool) {
  const int64_t half = d / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq[i] = std::pow(base, -2.0f * static_cast<float>(i) / static_cast<float>(d));
  }
  pool.parallel_for(t_rows, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float theta = pos * inv_freq[i];
        const double cs = std::cos(static_cast<double>(theta));
        const double sn = std::sin(static_cast<double>(theta));
        for (int64_t h = 0; h < cols / d; ++h) {
          const int64_t at = t * cols + h * d + i;
          const double a = x[at];
          const double b = x[at + half];
          y[at] = static_cast<float>(a * cs - b * sn);
          y[at + half] = static_cast<float>(a * sn + b * cs);
        }
      }
    }
  });
}

// x [T, C], positions [T, 1] i32, y [T, C] (may alias x): rope_rows per head
// of HEAD_DIM.
Status rope_neox(const KernelCall& c) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t cols, c.dim("C"));
  KP_TRY(const int64_t d, c.dim("HEAD_DIM"));
  KP_TRY(const float base, c.f32_constant("THETA"));
  if (d <= 0 || d % 2 != 0 || cols % d != 0) {
    return c.error(fmt::format("C = {} is not a whole number of heads of even HEAD_DIM = {}", cols, d));
  }
  KP_TRY(const float* x, c.in_f32(0, t_rows * cols));
  KP_TRY(const int32_t* positions, c.in_i32(1, t_rows));
  KP_TRY(float* y, c.out_f32(2, t_rows * cols));
  rope_rows(x, positions, y, t_rows, cols, d, base, c.pool());
  return {};
}

// q [T, QC], k [T, KC], v [T, KC], o [T, QC], k_cache [CTX, KC], v_cache [CTX, KC]
// with QC = N_HEAD * HEAD_DIM, KC = N_HEAD_KV * HEAD_DIM. Row t is at position
// p = pos0 + t; query head h reads KV head h / (N_HEAD / N_HEAD_KV) at positions
// j <= p (and p - j < window when step.window > 0): s = SCALE * q·k, softcapped
// when SOFTCAP > 0, softmax, o = sum softmax_j * v_j. Keys of the batch come from
// k, v; earlier ones from the caches. The batch's k, v rows are copied into the
// caches at rows pos0 .. pos0 + T - 1.
// With `rope` (attention_rope: a positions [T, 1] i32 binding after v, so o
// and the caches are bindings 4..6), q and k are first rotated by rope_rows
// (THETA), exactly as rope_neox followed by attention.
// With `h16` (attention_h16), q and the keys and values read are rounded to
// binary16 first; the softmax weights stay exact here (the tensor cores take
// them in binary16 relative to a running maximum, which only a tiled
// evaluation reproduces), and the caches receive the f32 rows.
Status attention_impl(const KernelCall& c, bool rope, bool h16) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t d, c.dim("HEAD_DIM"));
  KP_TRY(const int64_t n_head, c.dim("N_HEAD"));
  KP_TRY(const int64_t n_head_kv, c.dim("N_HEAD_KV"));
  KP_TRY(const int64_t ctx, c.dim("CTX"));
  KP_TRY(const float scale, c.f32_constant("SCALE"));
  KP_TRY(const float softcap, c.f32_constant("SOFTCAP"));
  if (d <= 0 || n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv != 0) {
    return c.error(fmt::format("N_HEAD = {} is not a multiple of N_HEAD_KV = {} (HEAD_DIM = {})", n_head,
                               n_head_kv, d));
  }
  const int64_t pos0 = c.params().pos0;
  if (pos0 + t_rows > ctx) {
    return c.error(fmt::format("rows {} .. {} do not fit the {} cache rows", pos0, pos0 + t_rows - 1, ctx));
  }
  const int64_t qc = n_head * d;
  const int64_t kc = n_head_kv * d;
  const size_t out0 = rope ? 4 : 3;
  KP_TRY(const float* q, c.in_f32(0, t_rows * qc));
  KP_TRY(const float* k, c.in_f32(1, t_rows * kc));
  KP_TRY(const float* v, c.in_f32(2, t_rows * kc));
  KP_TRY(float* o, c.out_f32(out0, t_rows * qc));
  KP_TRY(float* k_cache, c.out_f32(out0 + 1, ctx * kc));
  KP_TRY(float* v_cache, c.out_f32(out0 + 2, ctx * kc));
  std::vector<float> q_roped, k_roped;
  if (rope) {
    KP_TRY(const float base, c.f32_constant("THETA"));
    KP_TRY(const int32_t* positions, c.in_i32(3, t_rows));
    if (d % 2 != 0) return c.error(fmt::format("HEAD_DIM = {} is odd", d));
    q_roped.resize(static_cast<size_t>(t_rows * qc));
    k_roped.resize(static_cast<size_t>(t_rows * kc));
    rope_rows(q, positions, q_roped.data(), t_rows, qc, d, base, c.pool());
    rope_rows(k, positions, k_roped.data(), t_rows, kc, d, base, c.pool());
    q = q_roped.data();
    k = k_roped.data();
  }
  const int64_t window = c.step().window;
  const int64_t group = n_head / n_head_kv;
  const float* k_append = k;  // what the caches receive: f32 rows (rotated with rope)
  const float* v_append = v;
  // attention_h16: binary16 copies of q, of the batch's k, v and of the cache rows before it.
  std::vector<float> q16, k16, v16, kc16, vc16;
  const float* k_old = k_cache;
  const float* v_old = v_cache;
  if (h16) {
    auto rounded = [](const float* x, int64_t n) {
      std::vector<float> r(x, x + n);
      for (float& e : r) e = round_to_f16(e);
      return r;
    };
    q16 = rounded(q, t_rows * qc);
    k16 = rounded(k, t_rows * kc);
    v16 = rounded(v, t_rows * kc);
    kc16 = rounded(k_cache, pos0 * kc);
    vc16 = rounded(v_cache, pos0 * kc);
    q = q16.data();
    k = k16.data();
    v = v16.data();
    k_old = kc16.data();
    v_old = vc16.data();
  }

  c.pool().parallel_for(t_rows * n_head, 1, [&](int64_t i0, int64_t i1) {
    std::vector<double> s;
    std::vector<double> acc(static_cast<size_t>(d));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / n_head;
      const int64_t h = i % n_head;
      const int64_t p = pos0 + t;
      const int64_t j0 = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
      const int64_t kv_off = (h / group) * d;
      auto key = [&](int64_t j) { return j >= pos0 ? k + (j - pos0) * kc + kv_off : k_old + j * kc + kv_off; };
      auto val = [&](int64_t j) { return j >= pos0 ? v + (j - pos0) * kc + kv_off : v_old + j * kc + kv_off; };
      const float* qr = q + t * qc + h * d;
      s.assign(static_cast<size_t>(p - j0 + 1), 0.0);
      double s_max = -INFINITY;
      for (int64_t j = j0; j <= p; ++j) {
        const float* kr = key(j);
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += static_cast<double>(qr[e]) * static_cast<double>(kr[e]);
        double score = static_cast<double>(scale) * dot;
        if (softcap > 0) score = static_cast<double>(softcap) * std::tanh(score / static_cast<double>(softcap));
        s[j - j0] = score;
        s_max = std::max(s_max, score);
      }
      double sum = 0;
      for (double& x : s) {
        x = std::exp(x - s_max);
        sum += x;
      }
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t j = j0; j <= p; ++j) {
        const float* vr = val(j);
        const double w = s[j - j0] / sum;
        for (int64_t e = 0; e < d; ++e) acc[e] += w * static_cast<double>(vr[e]);
      }
      float* orow = o + t * qc + h * d;
      for (int64_t e = 0; e < d; ++e) orow[e] = static_cast<float>(acc[e]);
    }
  });
  // Append after reading, so that earlier cache rows are read as they were.
  std::copy(k_append, k_append + t_rows * kc, k_cache + pos0 * kc);
  std::copy(v_append, v_append + t_rows * kc, v_cache + pos0 * kc);
  return {};
}

Status attention(const KernelCall& c) { return attention_impl(c, false, false); }
Status attention_rope(const KernelCall& c) { return attention_impl(c, true, false); }
Status attention_h16(const KernelCall& c) { return attention_impl(c, false, true); }

}  // namespace

void add_attention_kernels(std::vector<CpuKernel>& out) {
  out.push_back(CpuKernel{"rope_neox", {"x", "positions", "y"}, {{"main", &rope_neox}}});
  out.push_back(CpuKernel{"attention", {"q", "k", "v", "o", "k_cache", "v_cache"}, {{"main", &attention}}});
  out.push_back(CpuKernel{"attention_h16", {"q", "k", "v", "o", "k_cache", "v_cache"}, {{"main", &attention_h16}}});
  out.push_back(CpuKernel{"attention_rope",
                          {"q", "k", "v", "positions", "o", "k_cache", "v_cache"},
                          {{"main", &attention_rope}}});
}

}  // namespace kp::backend::cpu
