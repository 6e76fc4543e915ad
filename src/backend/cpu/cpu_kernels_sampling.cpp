// CPU reference kernels of token selection: repeat_penalty and sample
// (entries argmax and sample), following the exact rules of docs/kernels.md.
// Probabilities and masses are computed in double.
// Tests: tests/runtime/cpu_kernels_test.cpp, tests/runtime/op_harness_test.cpp.
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "backend/cpu/cpu_kernel.h"

namespace kp::backend::cpu {
namespace {

// x [1, V], history [H, 1] i32, y [1, V] (may alias x): y = x, then for each
// distinct id among history[0 .. params.n_history):
//   y[id] = x[id] > 0 ? x[id] / p : x[id] * p, p = params.repeat_penalty.
Status repeat_penalty(const KernelCall& c) {
  KP_TRY(const int64_t v, c.dim("V"));
  KP_TRY(const int64_t h, c.dim("H"));
  const int64_t n_history = c.params().n_history;
  if (n_history > h) return c.error(fmt::format("params.n_history = {} exceeds the {} history rows", n_history, h));
  KP_TRY(const float* x, c.in_f32(0, v));
  KP_TRY(const int32_t* history, c.in_i32(1, h));
  KP_TRY(float* y, c.out_f32(2, v));
  for (int64_t i = 0; i < n_history; ++i) {
    if (history[i] < 0 || history[i] >= v) {
      return c.error(fmt::format("history[{}] = {} is not a token id below {}", i, history[i], v));
    }
  }
  if (y != x) std::copy(x, x + v, y);
  const float p = c.params().repeat_penalty;
  std::vector<bool> done(static_cast<size_t>(v), false);
  for (int64_t i = 0; i < n_history; ++i) {
    const int32_t id = history[i];
    if (done[id]) continue;
    done[id] = true;
    y[id] = x[id] > 0 ? x[id] / p : x[id] * p;  // x[id] is unchanged until here
  }
  return {};
}

// The index of the largest logit, the lowest index on ties; NaNs never win.
int32_t argmax_index(const float* logits, int64_t v) {
  int64_t best = 0;
  for (int64_t i = 1; i < v; ++i) {
    if (logits[i] > logits[best] || (std::isnan(logits[best]) && !std::isnan(logits[i]))) best = i;
  }
  return static_cast<int32_t>(best);
}

// logits [1, V], token [1, 1] i32: token[0] = argmax.
Status sample_argmax(const KernelCall& c) {
  KP_TRY(const int64_t v, c.dim("V"));
  if (v < 1) return c.error("V must be at least 1");
  KP_TRY(const float* logits, c.in_f32(0, v));
  KP_TRY(int32_t* token, c.out_i32(1, 1));
  token[0] = argmax_index(logits, v);
  return {};
}

// logits [1, V], token [1, 1] i32. docs/kernels.md's rule: greedy when
// temperature <= 0; else p_i = exp((l_i - max) / temperature), candidates cut
// by top_k (l_i >= the k-th largest logit), min_p (p_i >= min_p * p_max) and
// top_p (the shortest prefix, in descending p_i with ascending index on ties,
// whose mass reaches top_p of the candidates' mass); the draw is the first
// candidate in that order whose running mass exceeds rand_u * (candidates' mass).
Status sample_sample(const KernelCall& c) {
  KP_TRY(const int64_t v, c.dim("V"));
  if (v < 1) return c.error("V must be at least 1");
  KP_TRY(const float* logits, c.in_f32(0, v));
  KP_TRY(int32_t* token, c.out_i32(1, 1));
  const KpParams& pr = c.params();
  if (!(pr.temperature > 0)) {
    token[0] = argmax_index(logits, v);
    return {};
  }
  const double l_max = logits[argmax_index(logits, v)];
  std::vector<int32_t> cand;
  cand.reserve(static_cast<size_t>(v));
  for (int64_t i = 0; i < v; ++i) {
    if (!std::isnan(logits[i])) cand.push_back(static_cast<int32_t>(i));
  }
  if (cand.empty()) return c.error("every logit is NaN");
  std::vector<double> p(static_cast<size_t>(v), 0.0);
  for (int32_t i : cand) p[i] = std::exp((static_cast<double>(logits[i]) - l_max) / static_cast<double>(pr.temperature));

  if (pr.top_k > 0 && pr.top_k < cand.size()) {
    std::vector<float> sorted;
    sorted.reserve(cand.size());
    for (int32_t i : cand) sorted.push_back(logits[i]);
    std::nth_element(sorted.begin(), sorted.begin() + (pr.top_k - 1), sorted.end(), std::greater<float>());
    const float kth = sorted[pr.top_k - 1];
    std::erase_if(cand, [&](int32_t i) { return !(logits[i] >= kth); });
  }
  if (pr.min_p > 0) {
    double p_max = 0;
    for (int32_t i : cand) p_max = std::max(p_max, p[i]);
    const double cut = static_cast<double>(pr.min_p) * p_max;
    std::erase_if(cand, [&](int32_t i) { return !(p[i] >= cut); });
  }
  std::stable_sort(cand.begin(), cand.end(), [&](int32_t a, int32_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
  });
  if (pr.top_p < 1) {
    double mass = 0;
    for (int32_t i : cand) mass += p[i];
    const double target = static_cast<double>(pr.top_p) * mass;
    double running = 0;
    size_t keep = 0;
    while (keep < cand.size()) {
      running += p[cand[keep]];
      ++keep;
      if (running >= target) break;
    }
    cand.resize(keep);
  }
  double mass = 0;
  for (int32_t i : cand) mass += p[i];
  const double r = static_cast<double>(pr.rand_u) * mass;
  double running = 0;
  token[0] = cand.back();  // when rounding leaves r at the very top of the mass
  for (int32_t i : cand) {
    running += p[i];
    if (running > r) {
      token[0] = i;
      break;
    }
  }
  return {};
}

}  // namespace

void add_sampling_kernels(std::vector<CpuKernel>& out) {
  out.push_back(CpuKernel{"repeat_penalty", {"x", "history", "y"}, {{"main", &repeat_penalty}}});
  out.push_back(CpuKernel{"sample", {"logits", "token"}, {{"argmax", &sample_argmax}, {"sample", &sample_sample}}});
}

}  // namespace kp::backend::cpu
