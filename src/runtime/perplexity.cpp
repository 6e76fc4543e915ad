#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>

namespace kp::runtime {
namespace {

// log-softmax of one row, in double.
void log_softmax(const float* x, size_t n, std::vector<double>& out) {
  out.resize(n);
  const double mx = *std::max_element(x, x + n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  const double lse = mx + std::log(sum);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(x[i]) - lse;
}

struct MeanErr {
  double mean = 0, err = 0;
};

MeanErr mean_err(const std::vector<double>& v) {
  MeanErr m;
  if (v.empty()) return m;
  double s = 0, s2 = 0;
  for (double x : v) {
    s += x;
    s2 += x * x;
  }
  const double n = static_cast<double>(v.size());
  m.mean = s / n;
  const double var = v.size() > 1 ? std::max(0.0, (s2 / n - m.mean * m.mean) * n / (n - 1)) : 0.0;
  m.err = std::sqrt(var / n);
  return m;
}

}  // namespace

ChunkLogits executor_chunk_logits(Executor& executor) {
  return [&executor](std::span<const int32_t> chunk, size_t first) -> Result<std::vector<float>> {
    executor.reset();
    std::vector<float> out;
    KP_TRY_STATUS(executor.forward(chunk.subspan(0, first + 1)));
    for (size_t pos = first;; ++pos) {
      KP_TRY(std::vector<float> row, executor.logits());
      out.insert(out.end(), row.begin(), row.end());
      if (pos + 2 >= chunk.size()) break;
      KP_TRY_STATUS(executor.forward(chunk.subspan(pos + 1, 1)));
    }
    return out;
  };
}

ChunkLogits reference_chunk_logits(model::ReferenceModel& model) {
  return [&model](std::span<const int32_t> chunk, size_t first) -> Result<std::vector<float>> {
    model.reset();
    KP_TRY(std::vector<float> all, model.forward(std::vector<int32_t>(chunk.begin(), chunk.end()), true));
    const size_t n_vocab = all.size() / chunk.size();
    return std::vector<float>(all.begin() + static_cast<ptrdiff_t>(first * n_vocab),
                              all.begin() + static_cast<ptrdiff_t>((chunk.size() - 1) * n_vocab));
  };
}

Result<PerplexityStats> perplexity(std::span<const int32_t> tokens, const ChunkLogits& tested,
                                   const ChunkLogits& reference, const PerplexityOptions& o) {
  if (o.ctx < 4) return make_error("perplexity: chunks of {} tokens are too short (at least 4)", o.ctx);
  if (o.n_vocab == 0) return make_error("perplexity: the vocabulary size is not set");
  size_t n_chunks = tokens.size() / o.ctx;
  if (n_chunks == 0) {
    return make_error("the text is {} tokens, less than one chunk of {} (lower --ctx-size)", tokens.size(), o.ctx);
  }
  if (o.max_chunks > 0) n_chunks = std::min<size_t>(n_chunks, o.max_chunks);
  const size_t first = o.ctx / 2;
  const size_t rows = o.ctx - 1 - first;
  std::vector<double> nll, ref_nll, kld, same;
  std::vector<double> lt, lr;
  for (size_t c = 0; c < n_chunks; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + static_cast<ptrdiff_t>(c * o.ctx),
                               tokens.begin() + static_cast<ptrdiff_t>((c + 1) * o.ctx));
    if (o.bos >= 0) chunk[0] = o.bos;
    KP_TRY(std::vector<float> t, tested(chunk, first));
    KP_TRY(std::vector<float> r, reference(chunk, first));
    if (t.size() != rows * o.n_vocab || r.size() != rows * o.n_vocab) {
      return make_error("perplexity: chunk {}: expected {} rows of {} logits, got {} and {} values", c, rows,
                        o.n_vocab, t.size(), r.size());
    }
    for (size_t i = 0; i < rows; ++i) {
      const int32_t target = chunk[first + 1 + i];
      if (target < 0 || static_cast<uint32_t>(target) >= o.n_vocab) {
        return make_error("perplexity: token id {} is outside the vocabulary of {}", target, o.n_vocab);
      }
      const float* tr = t.data() + i * o.n_vocab;
      const float* rr = r.data() + i * o.n_vocab;
      log_softmax(tr, o.n_vocab, lt);
      log_softmax(rr, o.n_vocab, lr);
      nll.push_back(-lt[static_cast<size_t>(target)]);
      ref_nll.push_back(-lr[static_cast<size_t>(target)]);
      double kl = 0;
      for (size_t v = 0; v < o.n_vocab; ++v) kl += std::exp(lr[v]) * (lr[v] - lt[v]);
      kld.push_back(std::max(0.0, kl));
      const auto top_t = std::max_element(tr, tr + o.n_vocab) - tr;
      const auto top_r = std::max_element(rr, rr + o.n_vocab) - rr;
      same.push_back(top_t == top_r ? 1.0 : 0.0);
    }
  }
  PerplexityStats s;
  s.chunks = n_chunks;
  s.tokens = nll.size();
  const MeanErr n = mean_err(nll), rn = mean_err(ref_nll), k = mean_err(kld), t1 = mean_err(same);
  s.ppl = std::exp(n.mean);
  s.ppl_err = s.ppl * n.err;
  s.ref_ppl = std::exp(rn.mean);
  s.ref_ppl_err = s.ref_ppl * rn.err;
  s.kld_mean = k.mean;
  s.kld_err = k.err;
  s.top1 = t1.mean;
  s.top1_err = t1.err;
  std::vector<double> sorted = kld;
  std::sort(sorted.begin(), sorted.end());
  s.kld_max = sorted.back();
  s.kld_p99 = sorted[std::min(sorted.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(sorted.size())))];
  return s;
}

}  // namespace kp::runtime
