// Sampling filters and the seeded draw (see sampler.h).
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "core/check.h"

namespace kp::runtime {

Status validate(const SamplingParams& p) {
  if (!std::isfinite(p.temperature)) return make_error("temperature must be finite, got {}", p.temperature);
  if (!(p.top_p >= 0.0f && p.top_p <= 1.0f)) return make_error("top-p must be in [0, 1], got {}", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return make_error("min-p must be in [0, 1], got {}", p.min_p);
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    return make_error("repeat-penalty must be a positive number, got {}", p.repeat_penalty);
  }
  if (p.repeat_last_n < -1) {
    return make_error("repeat-last-n must be -1 (all), 0 (off) or positive, got {}", p.repeat_last_n);
  }
  return {};
}

int32_t argmax(std::span<const float> logits) {
  KP_CHECK(!logits.empty(), "argmax of no logits");
  size_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

void apply_repeat_penalty(std::span<float> logits, std::span<const int32_t> history, int32_t last_n,
                          float penalty) {
  if (last_n == 0 || penalty == 1.0f || history.empty()) return;
  const size_t n = last_n < 0 ? history.size() : std::min(history.size(), static_cast<size_t>(last_n));
  // A token repeated in the window is penalized once (llama.cpp counts
  // occurrences only for the frequency penalty).
  std::unordered_set<int32_t> seen;
  for (const int32_t id : history.subspan(history.size() - n)) {
    KP_CHECK(id >= 0 && static_cast<size_t>(id) < logits.size(), "history token outside the vocabulary");
    if (!seen.insert(id).second) continue;
    float& z = logits[static_cast<size_t>(id)];
    z = z <= 0.0f ? z * penalty : z / penalty;
  }
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {
  KP_CHECK(validate(params).ok(), "invalid sampling parameters");
}

std::vector<TokenLogit> Sampler::candidates(std::span<const float> logits,
                                            std::span<const int32_t> history) const {
  KP_CHECK(!logits.empty(), "sampling from no logits");
  std::vector<float> z(logits.begin(), logits.end());
  apply_repeat_penalty(z, history, params_.repeat_last_n, params_.repeat_penalty);
  if (params_.temperature <= 0.0f) {
    const int32_t best = argmax(z);
    return {{best, z[static_cast<size_t>(best)]}};
  }

  std::vector<TokenLogit> c(z.size());
  for (size_t i = 0; i < z.size(); ++i) c[i] = {static_cast<int32_t>(i), z[i]};
  // Descending logit; the lower id first on a tie, so the order is total.
  const auto by_logit = [](const TokenLogit& a, const TokenLogit& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };

  // top-k: the k largest logits.
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < c.size()) {
    const auto kth = c.begin() + params_.top_k;
    std::partial_sort(c.begin(), kth, c.end(), by_logit);
    c.erase(kth, c.end());
  } else {
    std::sort(c.begin(), c.end(), by_logit);
  }

  // top-p: the shortest prefix whose probability mass reaches top_p (at least one token).
  if (params_.top_p < 1.0f) {
    double sum = 0;
    for (const TokenLogit& t : c) sum += std::exp(static_cast<double>(t.logit) - c[0].logit);
    double cum = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += std::exp(static_cast<double>(c[i].logit) - c[0].logit) / sum;
      if (cum >= params_.top_p) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
  }

  // min-p: tokens with p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
  if (params_.min_p > 0.0f) {
    const double threshold = c[0].logit + std::log(static_cast<double>(params_.min_p));
    size_t keep = 1;
    while (keep < c.size() && c[keep].logit >= threshold) ++keep;
    c.resize(keep);
  }

  for (TokenLogit& t : c) t.logit /= params_.temperature;
  return c;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  const std::vector<TokenLogit> c = candidates(logits, history);
  if (c.size() == 1) return c[0].id;
  std::vector<double> p(c.size());
  double sum = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    p[i] = std::exp(static_cast<double>(c[i].logit) - c[0].logit);
    sum += p[i];
  }
  // u in [0, 1) from the top 53 bits: the same draw with every standard library.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * sum;
  double cum = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    cum += p[i];
    if (u < cum) return c[i].id;
  }
  return c.back().id;  // u fell in the rounding slack above the last bucket
}

}  // namespace kp::runtime
