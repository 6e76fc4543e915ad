// kpath bench's outputs: a markdown table like llama-bench's, JSON, and an
// SVG chart, all from one BenchRun.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/bench.h"

namespace kp::cli {

struct BenchRun {
  std::string model, date, command;           // date: UTC, ISO 8601
  std::string backend, device, driver;
  double copy_bandwidth = 0;                  // bytes/s read + written; 0: not measured
  std::string bandwidth_note;                 // how it was measured, or why not
  uint32_t n_prompt = 0, n_gen = 0, reps = 0, batch = 0;
  struct Path {
    std::string id, source;
    runtime::ExecutorBench bench;
    uint64_t peak_memory = 0;                 // the session's peak device memory, bytes
    std::vector<runtime::OpProfileRow> ops;   // --ops: per decode step; empty without it
  };
  uint32_t ops_tokens = 0;                    // decoded tokens the op profiles cover
  std::vector<Path> paths;

  // Achieved decode bandwidth of a path: weight bytes per token x median tokens/s.
  static double decode_bandwidth(const Path& p) { return p.bench.decode_weight_bytes * p.bench.decode.median; }
  // Dispatches per prompt token: batches x dispatches per batch / prompt tokens.
  double prefill_dispatches_per_token(const Path& p) const;
};

std::string bench_markdown(const BenchRun& run);
nlohmann::ordered_json bench_json(const BenchRun& run);
std::string bench_svg(const BenchRun& run);

}  // namespace kp::cli
