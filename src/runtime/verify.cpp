#include "runtime/verify.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/fp16.h"

namespace kp::runtime {
namespace {

using kpath::BindingKind;
using kpath::PlannedStep;
using kpath::SlotDType;

std::vector<double> as_doubles(SlotDType dtype, const std::vector<uint8_t>& bytes) {
  std::vector<double> out;
  if (dtype == SlotDType::F16) {
    out.resize(bytes.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h = 0;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      out[i] = f16_to_f32(h);
    }
  } else {
    out.resize(bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) {
      float f = 0;
      std::memcpy(&f, bytes.data() + 4 * i, 4);
      out[i] = f;
    }
  }
  return out;
}

bool is_output(BindingKind k) { return k == BindingKind::Out || k == BindingKind::InOut; }
bool is_input(BindingKind k) { return k == BindingKind::In || k == BindingKind::InOut; }

std::string describe(const PlannedStep& s) {
  return s.layer >= 0 ? fmt::format("'{}' (layer {})", s.op, s.layer) : fmt::format("'{}' ({})", s.op, s.phase_section);
}

// The two plans must run the same ops on the same slots, with equal slot layouts.
Status check_aligned(const std::vector<const PlannedStep*>& t, const std::vector<const PlannedStep*>& r,
                     const Executor& tested, const Executor& reference, const std::string& what) {
  if (t.size() != r.size()) {
    return make_error("the path under test has {} {} steps, the reference path {}: verify needs the same steps", t.size(),
                      what, r.size());
  }
  for (size_t i = 0; i < t.size(); ++i) {
    const PlannedStep& a = *t[i];
    const PlannedStep& b = *r[i];
    const std::string where = fmt::format("{} step {} ({})", what, i, a.location);
    if (a.op != b.op || a.layer != b.layer || a.phase_section != b.phase_section) {
      return make_error("{}: the path under test runs {}, the reference path {}", where, describe(a), describe(b));
    }
    if (a.bindings.size() != b.bindings.size()) {
      return make_error("{}: op '{}' has {} bindings under test and {} in the reference path", where, a.op,
                        a.bindings.size(), b.bindings.size());
    }
    for (size_t k = 0; k < a.bindings.size(); ++k) {
      const auto& x = a.bindings[k];
      const auto& y = b.bindings[k];
      if (x.kind == BindingKind::Weight || y.kind == BindingKind::Weight) {
        if (x.kind != y.kind) return make_error("{}: binding {} is a weight on one side only", where, k);
        continue;
      }
      if (x.slot != y.slot || x.kind != y.kind) {
        return make_error("{}: binding {} is slot '{}' under test and '{}' in the reference path", where, k, x.slot,
                          y.slot);
      }
      const kpath::SlotInfo& sx = tested.plan().slots.at(x.slot);
      const kpath::SlotInfo& sy = reference.plan().slots.at(y.slot);
      if (sx.dtype != sy.dtype || sx.cols != sy.cols || !(sx.rows == sy.rows)) {
        return make_error("{}: slot '{}' is {} x {} {} under test and {} x {} {} in the reference path", where, x.slot,
                          sx.rows.value, sx.cols, kpath::dtype_name(sx.dtype), sy.rows.value, sy.cols,
                          kpath::dtype_name(sy.dtype));
      }
    }
  }
  return {};
}

class Runner {
 public:
  Runner(Executor& tested, Executor& reference, const VerifyOptions& o) : t_(tested), r_(reference), o_(o) {}

  Status check_plans(int64_t prompt_rows) {
    KP_TRY_STATUS(check_aligned(t_.forward_steps(prompt_rows), r_.forward_steps(prompt_rows), t_, r_,
                                prompt_rows == 1 ? "decode" : "prefill"));
    KP_TRY_STATUS(check_aligned(t_.forward_steps(1), r_.forward_steps(1), t_, r_, "decode"));
    return check_aligned(t_.sampling_steps(), r_.sampling_steps(), t_, r_, "sampling");
  }

  // One batch: its forward steps, then the sampling steps; returns the reference's next token.
  Result<int32_t> batch(const std::string& phase, const std::vector<int32_t>& tokens) {
    const auto rows = static_cast<int64_t>(tokens.size());
    KP_TRY_STATUS(t_.begin_batch(tokens));
    KP_TRY_STATUS(r_.begin_batch(tokens));
    history_.insert(history_.end(), tokens.begin(), tokens.end());
    const auto& ts = t_.forward_steps(rows);
    const auto& rs = r_.forward_steps(rows);
    for (size_t i = 0; i < ts.size(); ++i) KP_TRY_STATUS(step(phase, *ts[i], *rs[i], rows, nullptr));
    SamplingInput greedy;  // temperature 0, no penalty
    greedy.history = history_;
    const auto& tss = t_.sampling_steps();
    const auto& rss = r_.sampling_steps();
    for (size_t i = 0; i < tss.size(); ++i) KP_TRY_STATUS(step(phase, *tss[i], *rss[i], 1, &greedy));
    t_.end_batch(rows);
    r_.end_batch(rows);
    if (!rss.empty()) {
      KP_TRY(std::vector<uint8_t> id, r_.read_slot("token_ids", 1));
      int32_t token = 0;
      std::memcpy(&token, id.data(), sizeof token);
      return token;
    }
    KP_TRY(std::vector<float> logits, r_.logits());
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }

  VerifyReport& report() { return report_; }

 private:
  Status step(const std::string& phase, const PlannedStep& ts, const PlannedStep& rs, int64_t rows,
              const SamplingInput* s) {
    const std::string where = fmt::format("{} step {} ({})", phase, report_.steps.size(), ts.location);
    if (o_.inject_inputs) {
      for (const auto& b : rs.bindings) {
        if (!is_input(b.kind)) continue;
        KP_TRY(std::vector<uint8_t> bytes, r_.read_slot(b.slot, rows));
        KP_TRY_STATUS(t_.write_slot(b.slot, bytes));
      }
    }
    if (Status st = t_.run_step(ts, rows, s); !st.ok()) {
      return make_error("{}: the path under test failed: {}", where, st.error().message);
    }
    if (Status st = r_.run_step(rs, rows, s); !st.ok()) {
      return make_error("{}: the reference failed: {}", where, st.error().message);
    }
    StepCheck c;
    c.index = report_.steps.size();
    c.phase = phase;
    c.section = ts.phase_section;
    c.layer = ts.layer;
    c.op = ts.op;
    c.kernel = ts.kernel->id;
    c.entry = ts.entry;
    c.location = ts.location;
    double worst = -1;
    for (const auto& b : ts.bindings) {
      if (!is_output(b.kind)) continue;
      const SlotDType dtype = t_.plan().slots.at(b.slot).dtype;
      KP_TRY(std::vector<uint8_t> tb, t_.read_slot(b.slot, rows));
      KP_TRY(std::vector<uint8_t> rb, r_.read_slot(b.slot, rows));
      const SlotError e = compare_slot(dtype, tb, rb);
      const double tol = dtype == SlotDType::I32 ? 0.0 : o_.tolerance.value_or(default_tolerance(dtype));
      // The worst output by error / tolerance (an exact slot counts only when it differs).
      const double score = tol > 0 ? e.rel / tol : (e.rel > 0 ? std::numeric_limits<double>::infinity() : 0.0);
      if (score > worst) {
        worst = score;
        c.slot = b.slot;
        c.dtype = dtype;
        c.rel_error = e.rel;
        c.max_abs = e.max_abs;
        c.tolerance = tol;
      }
    }
    c.over = c.rel_error > c.tolerance || std::isnan(c.rel_error);
    if (c.over && !report_.first_over) report_.first_over = c.index;
    report_.steps.push_back(std::move(c));
    return {};
  }

  Executor& t_;
  Executor& r_;
  const VerifyOptions& o_;
  std::vector<int32_t> history_;
  VerifyReport report_;
};

}  // namespace

double default_tolerance(kpath::SlotDType dtype) {
  switch (dtype) {
    case SlotDType::F16: return kTolF16;
    case SlotDType::I32: return 0.0;
    default: return kTolF32;
  }
}

SlotError compare_slot(kpath::SlotDType dtype, const std::vector<uint8_t>& tested,
                       const std::vector<uint8_t>& reference) {
  SlotError e;
  if (dtype == SlotDType::I32) {
    const size_t n = std::min(tested.size(), reference.size()) / 4;
    size_t diff = 0;
    for (size_t i = 0; i < n; ++i) {
      diff += std::memcmp(tested.data() + 4 * i, reference.data() + 4 * i, 4) != 0 ? 1 : 0;
    }
    e.rel = n == 0 ? 0.0 : static_cast<double>(diff) / static_cast<double>(n);
    e.max_abs = diff > 0 ? 1.0 : 0.0;
    return e;
  }
  const std::vector<double> t = as_doubles(dtype, tested);
  const std::vector<double> r = as_doubles(dtype, reference);
  double num = 0, den = 0;
  bool nonfinite = false;
  for (size_t i = 0; i < std::min(t.size(), r.size()); ++i) {
    if (!std::isfinite(t[i]) && std::isfinite(r[i])) nonfinite = true;
    if (!std::isfinite(t[i]) || !std::isfinite(r[i])) continue;
    const double d = t[i] - r[i];
    num += d * d;
    den += r[i] * r[i];
    e.max_abs = std::max(e.max_abs, std::abs(d));
  }
  if (nonfinite) {
    e.rel = std::numeric_limits<double>::infinity();
    e.max_abs = std::numeric_limits<double>::infinity();
    return e;
  }
  e.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return e;
}

Result<VerifyReport> verify_steps(Executor& tested, Executor& reference, const VerifyOptions& options) {
  if (options.prompt.empty()) return make_error("verify: the prompt has no tokens");
  if (options.tolerance && !(*options.tolerance >= 0)) {
    return make_error("--tolerance must be >= 0, got {}", *options.tolerance);
  }
  const uint64_t needed = options.prompt.size() + options.n_decode;
  const uint64_t ctx = std::min(tested.ctx(), reference.ctx());
  if (needed > ctx) {
    return make_error("verify: {} prompt tokens and {} decode steps need {} positions; the context holds {}",
                      options.prompt.size(), options.n_decode, needed, ctx);
  }
  Runner run(tested, reference, options);
  KP_TRY_STATUS(run.check_plans(static_cast<int64_t>(options.prompt.size())));
  tested.reset();
  reference.reset();
  KP_TRY(int32_t next, run.batch("prefill", options.prompt));
  for (uint32_t d = 0; d < options.n_decode; ++d) {
    run.report().decoded.push_back(next);
    KP_TRY(next, run.batch("decode", {next}));
  }
  return std::move(run.report());
}

}  // namespace kp::runtime
