#include "runtime/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

namespace kp::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

Spread spread_of(std::vector<double> samples) {
  Spread s;
  s.samples = samples;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  s.median = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  s.min = samples.front();
  s.max = samples.back();
  double sum = 0;
  for (double x : samples) sum += x;
  s.mean = sum / static_cast<double>(n);
  double var = 0;
  for (double x : samples) var += (x - s.mean) * (x - s.mean);
  s.stddev = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
  return s;
}

std::vector<int32_t> bench_prompt(uint32_t n, uint32_t n_vocab) {
  std::vector<int32_t> out(n);
  const uint32_t span = n_vocab > 4 ? n_vocab - 4 : 1;
  for (uint32_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(4 + (static_cast<uint64_t>(i) * 7919 + 13) % span);
  return out;
}

namespace {

// The decode and sampling steps of one token, in dispatch order.
std::vector<const kpath::PlannedStep*> decode_steps(const Executor& executor) {
  std::vector<const kpath::PlannedStep*> steps = executor.forward_steps(1);
  steps.insert(steps.end(), executor.sampling_steps().begin(), executor.sampling_steps().end());
  return steps;
}

// Each weight a step reads, with the bytes one call reads of it (a gather
// step, one with an i32 slot input such as the embedding lookup, one row).
std::vector<std::pair<std::string, uint64_t>> step_weight_reads(const kpath::Plan& plan,
                                                                const kpath::PlannedStep& step,
                                                                const format::GgufFile& model) {
  bool gather = false;
  for (const auto& b : step.bindings) {
    if (b.kind == kpath::BindingKind::In && plan.slots.at(b.slot).dtype == kpath::SlotDType::I32) gather = true;
  }
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& b : step.bindings) {
    if (b.kind != kpath::BindingKind::Weight) continue;
    const format::GgufTensorInfo* t = model.tensor(b.tensor);
    if (t == nullptr) continue;
    const uint64_t bytes = plan.device_bytes(*t);
    out.emplace_back(b.tensor, gather && t->rows() > 0 ? bytes / t->rows() : bytes);
  }
  return out;
}

}  // namespace

uint64_t decode_weight_bytes(const Executor& executor, const format::GgufFile& model) {
  std::map<std::string, uint64_t> read;  // tensor -> bytes per token
  for (const auto* step : decode_steps(executor)) {
    for (const auto& [tensor, bytes] : step_weight_reads(executor.plan(), *step, model)) {
      read[tensor] = std::max(read[tensor], bytes);
    }
  }
  uint64_t total = 0;
  for (const auto& [name, bytes] : read) total += bytes;
  return total;
}

Result<std::vector<OpProfileRow>> decode_op_profile(Executor& executor, const format::GgufFile& model,
                                                    uint32_t n_prompt, uint32_t n_tokens) {
  if (n_tokens < 1) return make_error("bench: the op profile needs at least one decoded token");
  if (static_cast<uint64_t>(n_prompt) + n_tokens > executor.ctx()) {
    return make_error("bench: {} prompt and {} profiled tokens exceed the context of {}", n_prompt, n_tokens,
                      executor.ctx());
  }
  const auto n_vocab = static_cast<uint32_t>(executor.plan().slots.at("logits").cols);
  const std::vector<const kpath::PlannedStep*> steps = decode_steps(executor);
  std::vector<OpProfileRow> rows;
  std::map<std::pair<std::string, std::string>, size_t> index;  // (op, kernel) -> row
  std::vector<size_t> row_of(steps.size());
  std::vector<uint64_t> bytes_of(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto key = std::make_pair(steps[i]->op, steps[i]->kernel->id);
    auto [it, added] = index.emplace(key, rows.size());
    if (added) rows.push_back(OpProfileRow{key.first, key.second});
    row_of[i] = it->second;
    for (const auto& [tensor, bytes] : step_weight_reads(executor.plan(), *steps[i], model)) bytes_of[i] += bytes;
  }
  executor.reset();
  SamplingInput greedy;
  int32_t token = bench_prompt(1, n_vocab)[0];
  if (n_prompt > 0) {
    KP_TRY_STATUS(executor.forward(bench_prompt(n_prompt, n_vocab)));
    KP_TRY(token, executor.sample(greedy));
  }
  executor.set_tracing(true);
  Status st;
  for (uint32_t i = 0; i < n_tokens && st.ok(); ++i) {
    executor.clear_trace();
    auto next = executor.decode_and_sample(token, greedy);
    if (!next.ok()) {
      st = next.take_error();
      break;
    }
    token = *next;
    const auto& trace = executor.trace();
    if (trace.size() != steps.size()) {
      st = make_error("bench: a decoded token ran {} dispatches, the plan has {} decode steps", trace.size(),
                      steps.size());
      break;
    }
    for (size_t j = 0; j < trace.size(); ++j) {
      OpProfileRow& r = rows[row_of[j]];
      r.calls++;
      r.ms += trace[j].ms;
      r.weight_bytes += bytes_of[j];
    }
  }
  executor.set_tracing(false);
  KP_TRY_STATUS(st);
  return rows;
}

Result<ExecutorBench> bench_executor(Executor& executor, const format::GgufFile& model, const BenchOptions& o) {
  if (o.reps < 1) return make_error("bench: -r must be at least 1");
  if (o.n_prompt == 0 && o.n_gen == 0) return make_error("bench: -p and -n are both 0: nothing to measure");
  if (static_cast<uint64_t>(o.n_prompt) + o.n_gen > executor.ctx()) {
    return make_error("bench: {} prompt and {} generated tokens exceed the context of {}", o.n_prompt, o.n_gen,
                      executor.ctx());
  }
  const auto n_vocab = static_cast<uint32_t>(executor.plan().slots.at("logits").cols);
  const std::vector<int32_t> prompt = bench_prompt(o.n_prompt, n_vocab);
  const int32_t first_token = bench_prompt(1, n_vocab)[0];
  SamplingInput greedy;
  // One repetition: returns (prefill seconds, decode seconds).
  auto run_once = [&](uint32_t n_gen) -> Result<std::pair<double, double>> {
    executor.reset();
    double prefill = 0, decode = 0;
    int32_t token = first_token;
    if (!prompt.empty()) {
      const auto t0 = Clock::now();
      KP_TRY_STATUS(executor.forward(prompt));
      prefill = seconds_since(t0);
      if (n_gen > 0) {
        KP_TRY(token, executor.sample(greedy));
      }
    }
    const auto t1 = Clock::now();
    for (uint32_t i = 0; i < n_gen; ++i) {
      KP_TRY(token, executor.decode_and_sample(token, greedy));
    }
    decode = seconds_since(t1);
    return std::make_pair(prefill, decode);
  };
  KP_TRY(auto warm, run_once(std::min<uint32_t>(o.n_gen, 4)));
  (void)warm;
  std::vector<double> prefill, decode;
  for (uint32_t r = 0; r < o.reps; ++r) {
    KP_TRY(auto t, run_once(o.n_gen));
    if (o.n_prompt > 0 && t.first > 0) prefill.push_back(o.n_prompt / t.first);
    if (o.n_gen > 0 && t.second > 0) decode.push_back(o.n_gen / t.second);
  }
  ExecutorBench b;
  b.prefill = spread_of(std::move(prefill));
  b.decode = spread_of(std::move(decode));
  b.decode_dispatches = executor.decode_dispatches();
  b.prefill_dispatches = o.n_prompt > 1 ? executor.forward_steps(o.n_prompt).size() : executor.forward_steps(1).size();
  b.decode_weight_bytes = decode_weight_bytes(executor, model);
  b.device_weight_bytes = executor.weight_bytes();
  return b;
}

}  // namespace kp::runtime
