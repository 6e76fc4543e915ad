// kpath bench: prefill and decode speed of one executor (one kernel path on
// one backend), and what a decoded token costs in dispatches and weight bytes.
// Speed is measured here and recorded in bench/results/, never asserted by a test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "runtime/executor.h"

namespace kp::runtime {

struct BenchOptions {
  uint32_t n_prompt = 512;  // prefill tokens per repetition (0: no prefill test)
  uint32_t n_gen = 128;     // decoded tokens per repetition, after the prompt (0: no decode test)
  uint32_t reps = 5;        // timed repetitions, after one untimed warm-up
};

// Summary of the repetitions of one test, in tokens per second.
struct Spread {
  std::vector<double> samples;  // in the order they ran
  double median = 0, mean = 0, stddev = 0, min = 0, max = 0;
};
Spread spread_of(std::vector<double> samples);

struct ExecutorBench {
  Spread prefill;                    // tokens/s of forward(prompt) (empty without a prefill test)
  Spread decode;                     // tokens/s of decode_and_sample, greedy, continuing after the prompt
  size_t decode_dispatches = 0;      // per decoded token: decode forward + sampling steps
  size_t prefill_dispatches = 0;     // per prefill batch: forward steps for the batch
  uint64_t decode_weight_bytes = 0;  // weight bytes the decode steps read per token
  uint64_t device_weight_bytes = 0;  // weight bytes held on the device
};

// The prompt: n deterministic ordinary token ids (special ids 0..3 avoided).
std::vector<int32_t> bench_prompt(uint32_t n, uint32_t n_vocab);

// Weight bytes one decoded token reads: every distinct weight the decode and
// sampling steps bind, at its device type, counted once; a weight only read
// by a gather step (a step with an i32 slot input, such as the embedding
// lookup) counts one row. Activations and the KV cache are not counted.
uint64_t decode_weight_bytes(const Executor& executor, const format::GgufFile& model);

// Warm-up (the prompt and a few decoded tokens, so that every command list is
// recorded and every pipeline compiled), then `reps` timed repetitions, each
// from an empty cache: forward(prompt), then n_gen greedy decode_and_sample.
// The executor's context must hold n_prompt + n_gen tokens.
Result<ExecutorBench> bench_executor(Executor& executor, const format::GgufFile& model, const BenchOptions& options);

// One decode step (op and kernel) of a per-step profile: device time per call
// and the weight bytes each call reads, for the bandwidth it achieves.
struct OpProfileRow {
  std::string op, kernel;
  size_t calls = 0;           // over every layer and profiled token
  double ms = 0;              // total device time of those calls
  uint64_t weight_bytes = 0;  // total weight bytes those calls read
};

// After the prompt (n_prompt tokens), decodes n_tokens greedily with
// per-dispatch device timestamps (each dispatch timed alone: no graph, so
// the times include what a dispatch costs by itself) and sums them per
// (op, kernel), in decode-step order. A gather step (an i32 input) counts one
// row of its weight, as decode_weight_bytes does.
Result<std::vector<OpProfileRow>> decode_op_profile(Executor& executor, const format::GgufFile& model,
                                                    uint32_t n_prompt, uint32_t n_tokens);

}  // namespace kp::runtime
