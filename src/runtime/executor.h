// The executor: walks a validated kernel path (kpath::Plan) and dispatches
// exactly its steps on a backend. It owns the device buffers of the weights and
// slots, the compiled pipelines and the recorded command lists; the decode
// sequence (one token through every step, then sampling) is recorded once and
// replayed for every token.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"
#include "format/gguf.h"
#include "kernel_path/plan.h"

namespace kp::runtime {

struct ExecutorOptions {
  int64_t max_batch = 256;      // rows per prefill chunk
  std::vector<uint32_t> layer_windows;  // sliding window per layer (0 = full)
};

// One dispatch as it ran, for traces and profiles.
struct TraceEvent {
  std::string op, kernel, entry, section;
  int32_t layer = -1;
  double ms = 0;
  // When it started, in ms after the first traced submission began (the
  // submission's host start plus the device's offset within it), so gaps
  // between dispatches show; and what the submission ran: its first position
  // and rows (rows > 1: a prefill batch; 1: a decoded token).
  double start_ms = 0;
  uint32_t pos0 = 0;
  uint32_t rows = 0;
};

struct SamplingInput {
  float temperature = 0;
  uint32_t top_k = 0;
  float top_p = 1;
  float min_p = 0;
  float repeat_penalty = 1;
  float rand_u = 0;
  std::span<const int32_t> history;  // most recent last; at most the history slot's rows are used
};

class Executor {
 public:
  static Result<std::unique_ptr<Executor>> create(const kpath::Plan& plan, const format::GgufFile& model,
                                                  backend::Backend& backend, ExecutorOptions options);
  ~Executor();

  // Runs tokens at positions pos()..pos()+n through the forward steps (prefill
  // in chunks, or the decode sequence for a single token) and appends them to
  // the KV cache. Afterwards the logits slot holds the last token's logits.
  Status forward(std::span<const int32_t> tokens);
  // Downloads the last forward's logits [n_vocab].
  Result<std::vector<float>> logits();
  // Runs the sampling steps on the current logits; returns the chosen token.
  Result<int32_t> sample(const SamplingInput& s);
  // forward() of one token followed by the sampling steps, in one submission.
  Result<int32_t> decode_and_sample(int32_t token, const SamplingInput& s);

  uint32_t pos() const { return pos_; }
  void reset() { pos_ = 0; }
  uint32_t ctx() const { return static_cast<uint32_t>(plan_.ctx); }
  int64_t max_batch() const { return options_.max_batch; }  // rows per prefill dispatch

  // Per-dispatch device timings for the following calls (slower: no replay
  // batching on some backends). Events of the calls since enable/clear.
  void set_tracing(bool on) { tracing_ = on; }
  const std::vector<TraceEvent>& trace() const { return trace_; }
  void clear_trace() {
    trace_.clear();
    trace_origin_ = {};
  }

  // Step-by-step execution (kpath verify): the forward steps of a phase, each
  // run as its own submission so that slots can be read between steps.
  const std::vector<const kpath::PlannedStep*>& forward_steps(int64_t rows) const {
    return rows == 1 ? decode_forward_ : prefill_forward_;
  }
  const std::vector<const kpath::PlannedStep*>& sampling_steps() const { return sampling_steps_; }
  // Writes token ids and positions for a batch at pos(); run the steps; then end_batch.
  Status begin_batch(std::span<const int32_t> tokens);
  Status run_step(const kpath::PlannedStep& step, int64_t rows, const SamplingInput* s = nullptr);
  void end_batch(int64_t rows) { pos_ += static_cast<uint32_t>(rows); }
  // Bytes a slot holds for a batch of `rows` rows; raw contents.
  uint64_t slot_bytes(const std::string& slot, int64_t rows) const;
  Result<std::vector<uint8_t>> read_slot(const std::string& slot, int64_t rows);
  Status write_slot(const std::string& slot, const std::vector<uint8_t>& bytes);

  // Dispatches per decoded token (forward + sampling) and weight bytes on device.
  size_t decode_dispatches() const;
  uint64_t weight_bytes() const { return weight_bytes_; }
  backend::Backend& backend() { return backend_; }
  const kpath::Plan& plan() const { return plan_; }

 private:
  Executor(const kpath::Plan& plan, backend::Backend& backend, ExecutorOptions options);
  struct Recorded {
    backend::CommandListId list = 0;
    std::vector<const kpath::PlannedStep*> steps;
  };
  // Refuses, before anything is allocated, a session the device's free memory
  // cannot hold, with the numbers.
  Status check_memory(const format::GgufFile& model) const;
  uint64_t slot_alloc_bytes(const kpath::SlotInfo& slot) const;
  Status upload_weights(const format::GgufFile& model);
  Status create_slots();
  Result<backend::PipelineId> pipeline_for(const kpath::PlannedStep& step);
  Result<Recorded> record(const std::vector<const kpath::PlannedStep*>& steps, int64_t rows);
  Result<const Recorded*> forward_list(int64_t rows);
  Result<const Recorded*> decode_sampling_list();
  Result<const Recorded*> sampling_list();
  Status submit(const Recorded& rec, const KpParams& params);
  Status write_tokens(std::span<const int32_t> tokens, uint32_t pos0);
  KpParams params_for(uint32_t n_tokens, const SamplingInput* s);
  Status write_history(const SamplingInput& s, uint32_t* n_history);

  const kpath::Plan& plan_;
  backend::Backend& backend_;
  ExecutorOptions options_;
  std::map<std::string, backend::BufferId> weight_buffers_;
  std::map<std::string, uint64_t> weight_sizes_;
  std::map<std::string, backend::BufferId> slot_buffers_;
  std::map<std::string, backend::PipelineId> pipelines_;  // by key text
  std::vector<const kpath::PlannedStep*> prefill_forward_, decode_forward_, sampling_steps_;
  std::map<int64_t, Recorded> forward_lists_;  // by rows
  std::unique_ptr<Recorded> decode_sampling_, sampling_;
  std::map<std::pair<const kpath::PlannedStep*, int64_t>, Recorded> step_lists_;
  uint32_t pos_ = 0;
  bool tracing_ = false;
  std::vector<TraceEvent> trace_;
  std::chrono::steady_clock::time_point trace_origin_{};  // the first traced submission's start
  uint64_t weight_bytes_ = 0;
};

}  // namespace kp::runtime
