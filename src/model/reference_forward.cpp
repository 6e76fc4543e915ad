// The reference Gemma 2 forward pass (see reference_forward.h). Activations are
// f32 in memory; every dot product, norm and softmax accumulates in f64. The
// matmuls are split over rows across threads; nothing else is optimized.
#include "model/reference_forward.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <thread>
#include <utility>

#include "core/check.h"
#include "format/quant.h"

namespace kp::model {
namespace {

Result<std::vector<float>> dequantize_tensor(const format::GgufFile& file, const std::string& name,
                                             uint64_t expected_elements) {
  const format::GgufTensorInfo* t = file.tensor(name);
  if (t == nullptr) return make_error("{}: missing tensor '{}'", file.name(), name);
  if (t->n_elements != expected_elements) {
    return make_error("{}: tensor '{}' has {} elements, expected {}", file.name(), name,
                      t->n_elements, expected_elements);
  }
  std::vector<float> out(t->n_elements);
  const Status st = format::dequantize(t->type, t->data, out.data(), static_cast<int64_t>(t->n_elements));
  if (!st) return make_error("{}: tensor '{}': {}", file.name(), name, st.error().message);
  return out;
}

// Sum of a[i]*b[i] in f64. Four partial sums let the adds overlap.
double dot(const float* a, const float* b, size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += static_cast<double>(a[i]) * b[i];
    s1 += static_cast<double>(a[i + 1]) * b[i + 1];
    s2 += static_cast<double>(a[i + 2]) * b[i + 2];
    s3 += static_cast<double>(a[i + 3]) * b[i + 3];
  }
  for (; i < n; ++i) s0 += static_cast<double>(a[i]) * b[i];
  return (s0 + s1) + (s2 + s3);
}

// Runs fn(begin, end) over [0, n) split across the hardware threads when the
// work (n * cost_per_item multiply-adds) is large enough to pay for them.
template <class Fn>
void parallel_for(size_t n, size_t cost_per_item, Fn&& fn) {
  constexpr size_t kMinWorkPerThread = size_t{1} << 18;
  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t by_work = std::max<size_t>(1, n * cost_per_item / kMinWorkPerThread);
  const size_t n_threads = std::min({hw, by_work, n});
  if (n_threads <= 1) {
    fn(size_t{0}, n);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(n_threads - 1);
  const size_t chunk = (n + n_threads - 1) / n_threads;
  for (size_t t = 1; t < n_threads; ++t) {
    const size_t begin = std::min(n, t * chunk);
    const size_t end = std::min(n, begin + chunk);
    threads.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(size_t{0}, std::min(n, chunk));
  for (std::thread& th : threads) th.join();
}

// y[t, r] = sum_c w[r, c] * x[t, c]
//   w: [rows, cols] row-major, x: [n, cols], y: [n, rows]
void matmul(const std::vector<float>& w, size_t rows, size_t cols, const std::vector<float>& x,
            size_t n, std::vector<float>& y) {
  KP_CHECK(w.size() == rows * cols, "weight size does not match [rows, cols]");
  KP_CHECK(x.size() == n * cols, "input size does not match [n, cols]");
  y.assign(n * rows, 0.0f);
  parallel_for(rows, n * cols, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* wr = w.data() + r * cols;
      for (size_t t = 0; t < n; ++t) {
        y[t * rows + r] = static_cast<float>(dot(wr, x.data() + t * cols, cols));
      }
    }
  });
}

// Row-wise RMSNorm: x * w / sqrt(mean(x^2) + eps). GGUF norm weights already
// hold Gemma's (1 + w), so the weight multiplies as stored.
//   x: [n, d] in place, w: [d]
void rms_norm(std::vector<float>& x, size_t d, const std::vector<float>& w, float eps) {
  KP_CHECK(w.size() == d && x.size() % d == 0, "rms_norm shape mismatch");
  for (size_t off = 0; off < x.size(); off += d) {
    float* row = x.data() + off;
    const double mean_sq = dot(row, row, d) / static_cast<double>(d);
    const double inv = 1.0 / std::sqrt(mean_sq + static_cast<double>(eps));
    for (size_t i = 0; i < d; ++i) row[i] = static_cast<float>(row[i] * inv * w[i]);
  }
}

double softcap(double x, double cap) { return cap * std::tanh(x / cap); }

// GELU, tanh approximation (HF "gelu_pytorch_tanh").
double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

// NeoX-style RoPE (HF's rotate_half): dimension i pairs with i + d/2, angle
// pos * theta^(-2i/d). Angles are computed in f64 so that no rounding of
// inv_freq grows with the position.
//   v: [n_heads, d] for one token, in place
void rope(float* v, size_t n_heads, size_t d, uint32_t pos, double theta) {
  const size_t half = d / 2;
  for (size_t i = 0; i < half; ++i) {
    const double inv_freq = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(d));
    const double angle = static_cast<double>(pos) * inv_freq;
    const double c = std::cos(angle), s = std::sin(angle);
    for (size_t h = 0; h < n_heads; ++h) {
      float* hv = v + h * d;
      const double x0 = hv[i], x1 = hv[i + half];
      hv[i] = static_cast<float>(x0 * c - x1 * s);
      hv[i + half] = static_cast<float>(x1 * c + x0 * s);
    }
  }
}

}  // namespace

Result<DenseWeights> load_dense_weights(const format::GgufFile& file, const Gemma2Config& cfg) {
  const uint64_t e = cfg.n_embd, q = uint64_t{cfg.n_head} * cfg.head_dim,
                 kv = uint64_t{cfg.n_head_kv} * cfg.head_dim, ff = cfg.n_ff;
  DenseWeights w;
  KP_TRY(w.token_embd, dequantize_tensor(file, "token_embd.weight", uint64_t{cfg.n_vocab} * e));
  KP_TRY(w.output_norm, dequantize_tensor(file, "output_norm.weight", e));
  w.layers.resize(cfg.n_layer);
  for (uint32_t l = 0; l < cfg.n_layer; ++l) {
    DenseWeights::Layer& L = w.layers[l];
    const std::pair<std::vector<float>*, std::pair<const char*, uint64_t>> parts[] = {
        {&L.attn_norm, {"attn_norm", e}},
        {&L.attn_q, {"attn_q", q * e}},
        {&L.attn_k, {"attn_k", kv * e}},
        {&L.attn_v, {"attn_v", kv * e}},
        {&L.attn_output, {"attn_output", e * q}},
        {&L.post_attention_norm, {"post_attention_norm", e}},
        {&L.ffn_norm, {"ffn_norm", e}},
        {&L.ffn_gate, {"ffn_gate", ff * e}},
        {&L.ffn_up, {"ffn_up", ff * e}},
        {&L.ffn_down, {"ffn_down", e * ff}},
        {&L.post_ffw_norm, {"post_ffw_norm", e}},
    };
    for (const auto& [dst, spec] : parts) {
      KP_TRY(*dst, dequantize_tensor(file, fmt::format("blk.{}.{}.weight", l, spec.first), spec.second));
    }
  }
  return w;
}

ReferenceModel::ReferenceModel(Gemma2Config cfg, std::shared_ptr<const DenseWeights> weights,
                               uint32_t n_ctx)
    : cfg_(std::move(cfg)), w_(std::move(weights)), n_ctx_(n_ctx) {
  KP_CHECK(w_ != nullptr, "weights are required");
  KP_CHECK(n_ctx_ > 0, "n_ctx must be positive");
  KP_CHECK(w_->layers.size() == cfg_.n_layer, "weights do not match the config's layer count");
  KP_CHECK(cfg_.n_head_kv > 0 && cfg_.n_head % cfg_.n_head_kv == 0, "n_head must be a multiple of n_head_kv");
  const size_t kv_row = size_t{cfg_.n_head_kv} * cfg_.head_dim;
  k_cache_.assign(cfg_.n_layer, std::vector<float>(size_t{n_ctx_} * kv_row));
  v_cache_.assign(cfg_.n_layer, std::vector<float>(size_t{n_ctx_} * kv_row));
}

Result<std::vector<float>> ReferenceModel::forward(const std::vector<int32_t>& tokens, bool all_logits) {
  const size_t n = tokens.size();
  if (n == 0) return make_error("forward: no tokens given");
  if (pos_ + n > n_ctx_) {
    return make_error("forward: {} tokens at position {} overflow the context of {} tokens", n, pos_,
                      n_ctx_);
  }
  for (size_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || static_cast<uint32_t>(tokens[t]) >= cfg_.n_vocab) {
      return make_error("forward: token {} (index {}) is outside the vocabulary [0, {})", tokens[t], t,
                        cfg_.n_vocab);
    }
  }

  const size_t d_model = cfg_.n_embd, hd = cfg_.head_dim, n_head = cfg_.n_head,
               n_kv = cfg_.n_head_kv, n_ff = cfg_.n_ff;
  const size_t q_dim = n_head * hd, kv_dim = n_kv * hd, group = n_head / n_kv;

  // x: [n, n_embd], the residual stream. Gemma scales embeddings by sqrt(n_embd).
  std::vector<float> x(n * d_model);
  const float embd_scale = std::sqrt(static_cast<float>(d_model));
  for (size_t t = 0; t < n; ++t) {
    const float* row = w_->token_embd.data() + static_cast<size_t>(tokens[t]) * d_model;
    for (size_t i = 0; i < d_model; ++i) x[t * d_model + i] = row[i] * embd_scale;
  }

  std::vector<float> h, q, k, v, attn(n * q_dim), o, gate, up, ffn_out;
  for (uint32_t l = 0; l < cfg_.n_layer; ++l) {
    const DenseWeights::Layer& L = w_->layers[l];

    // Attention block: h = attn_norm(x); q, k, v = h Wq, h Wk, h Wv.
    h = x;
    rms_norm(h, d_model, L.attn_norm, cfg_.rms_eps);
    matmul(L.attn_q, q_dim, d_model, h, n, q);  // q: [n, n_head*hd]
    matmul(L.attn_k, kv_dim, d_model, h, n, k);  // k: [n, n_kv*hd]
    matmul(L.attn_v, kv_dim, d_model, h, n, v);  // v: [n, n_kv*hd]
    std::vector<float>& kc = k_cache_[l];
    std::vector<float>& vc = v_cache_[l];
    for (size_t t = 0; t < n; ++t) {
      const uint32_t p = pos_ + static_cast<uint32_t>(t);
      rope(q.data() + t * q_dim, n_head, hd, p, cfg_.rope_theta);
      rope(k.data() + t * kv_dim, n_kv, hd, p, cfg_.rope_theta);
      std::copy_n(k.data() + t * kv_dim, kv_dim, kc.data() + size_t{p} * kv_dim);
      std::copy_n(v.data() + t * kv_dim, kv_dim, vc.data() + size_t{p} * kv_dim);
    }

    // Query at position p sees keys j with p - window < j <= p on sliding
    // layers, and 0 <= j <= p otherwise.
    const uint32_t window = cfg_.layer_window(l);
    const double scale = 1.0 / std::sqrt(static_cast<double>(cfg_.query_pre_attn_scalar));
    parallel_for(n * n_head, size_t{pos_ + n} * hd * 2, [&](size_t i0, size_t i1) {
      std::vector<double> scores, acc(hd);
      for (size_t i = i0; i < i1; ++i) {
        const size_t t = i / n_head, head = i % n_head, kv_head = head / group;
        const uint32_t p = pos_ + static_cast<uint32_t>(t);
        const uint32_t first = (window != 0 && p >= window) ? p - window + 1 : 0;
        const float* qv = q.data() + t * q_dim + head * hd;
        scores.resize(p - first + 1);
        double max_s = -INFINITY;
        for (uint32_t j = first; j <= p; ++j) {
          const double s = softcap(dot(qv, kc.data() + size_t{j} * kv_dim + kv_head * hd, hd) * scale,
                                   cfg_.attn_softcap);
          scores[j - first] = s;
          max_s = std::max(max_s, s);
        }
        double sum = 0;
        for (double& s : scores) {
          s = std::exp(s - max_s);
          sum += s;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (uint32_t j = first; j <= p; ++j) {
          const double pj = scores[j - first] / sum;
          const float* vv = vc.data() + size_t{j} * kv_dim + kv_head * hd;
          for (size_t c = 0; c < hd; ++c) acc[c] += pj * vv[c];
        }
        float* out = attn.data() + t * q_dim + head * hd;
        for (size_t c = 0; c < hd; ++c) out[c] = static_cast<float>(acc[c]);
      }
    });

    matmul(L.attn_output, d_model, q_dim, attn, n, o);  // o: [n, n_embd]
    rms_norm(o, d_model, L.post_attention_norm, cfg_.rms_eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];

    // Feed-forward block: x += post_ffw_norm(down(gelu(h Wgate) * (h Wup))), h = ffn_norm(x).
    h = x;
    rms_norm(h, d_model, L.ffn_norm, cfg_.rms_eps);
    matmul(L.ffn_gate, n_ff, d_model, h, n, gate);  // gate: [n, n_ff]
    matmul(L.ffn_up, n_ff, d_model, h, n, up);      // up: [n, n_ff]
    for (size_t i = 0; i < gate.size(); ++i) {
      gate[i] = static_cast<float>(gelu_tanh(gate[i]) * up[i]);
    }
    matmul(L.ffn_down, d_model, n_ff, gate, n, ffn_out);  // ffn_out: [n, n_embd]
    rms_norm(ffn_out, d_model, L.post_ffw_norm, cfg_.rms_eps);
    for (size_t i = 0; i < x.size(); ++i) x[i] += ffn_out[i];
  }
  pos_ += static_cast<uint32_t>(n);

  // Output: final norm, tied lm_head (token_embd as [n_vocab, n_embd]), softcap.
  const size_t n_out = all_logits ? n : 1;
  std::vector<float> xo(x.end() - static_cast<std::ptrdiff_t>(n_out * d_model), x.end());
  rms_norm(xo, d_model, w_->output_norm, cfg_.rms_eps);
  std::vector<float> logits;
  matmul(w_->token_embd, cfg_.n_vocab, d_model, xo, n_out, logits);  // logits: [n_out, n_vocab]
  for (float& z : logits) z = static_cast<float>(softcap(z, cfg_.final_softcap));
  return logits;
}

}  // namespace kp::model
