// kpath verify, step by step: the kernel path under test runs on its backend
// and, step for step, a reference executor (the same path, or a path with the
// same steps, on the CPU backend) runs beside it. Before each step the
// reference's input slots are copied into the tested executor, so every step
// is judged on identical inputs and an error cannot hide behind an earlier
// one; then both run the step and its output slots are compared.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "kernel_path/registry.h"
#include "runtime/executor.h"

namespace kp::runtime {

// Default tolerances on the relative L2 error of a step's output, by the
// output slot's dtype. On identical inputs a correct f32 kernel differs from
// the CPU code only by summation order (1e-7 to 1e-5 at Gemma 2 shapes); an
// f16 output carries f16 rounding (about 5e-4); token ids must be equal.
inline constexpr double kTolF32 = 1e-4;
inline constexpr double kTolF16 = 1e-2;
double default_tolerance(kpath::SlotDType dtype);

// How far `tested` is from `reference` (same dtype, same size in bytes).
struct SlotError {
  double rel = 0;      // ||t - r||_2 / ||r||_2 (||t - r||_2 when r is zero); i32: fraction of unequal ids;
                       // +inf when t holds a NaN or Inf where r is finite
  double max_abs = 0;  // max |t - r| (i32: 1 when any id differs)
};
SlotError compare_slot(kpath::SlotDType dtype, const std::vector<uint8_t>& tested,
                       const std::vector<uint8_t>& reference);

struct StepCheck {
  size_t index = 0;         // 0-based, in the order the steps ran
  std::string phase;        // "prefill", "decode"
  std::string section;      // "preLayer", "layer", "postLayer", "sampling"
  int32_t layer = -1;
  std::string op, kernel, entry, location;
  std::string slot;         // the output judged: the worst of the step's outputs (error / tolerance)
  kpath::SlotDType dtype = kpath::SlotDType::F32;
  double rel_error = 0, max_abs = 0, tolerance = 0;
  bool over = false;        // rel_error > tolerance
};

struct VerifyOptions {
  std::vector<int32_t> prompt;   // one prefill batch: 1 to max-batch tokens
  uint32_t n_decode = 1;         // decode steps after the prompt, each on the reference's greedy token
  bool inject_inputs = true;     // false: each executor runs on its own outputs (errors accumulate)
  std::optional<double> tolerance;  // for f32 and f16 outputs; token ids are always compared exactly
};

struct VerifyReport {
  std::vector<StepCheck> steps;
  std::optional<size_t> first_over;  // index in steps of the first step past its tolerance
  std::vector<int32_t> decoded;      // the reference's greedy tokens after the prompt
};

// Runs the prompt (prefill steps, then sampling) and n_decode single tokens
// (decode steps, then sampling) on both executors, step by step. Both are
// reset first. The two plans must run the same ops on the same slots in the
// same order; the first difference is an error naming the step.
Result<VerifyReport> verify_steps(Executor& tested, Executor& reference, const VerifyOptions& options);

}  // namespace kp::runtime
