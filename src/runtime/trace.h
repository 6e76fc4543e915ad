// Per-dispatch traces: Chrome / Perfetto JSON (one complete event per step at
// the device time it ran, so gaps between dispatches show where the backend
// stamps both sides of each, with op, kernel, entry, layer and the batch's
// positions; and one slice per prefill batch or decoded token on a track of
// its own) and a per-op profile table.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "runtime/executor.h"

namespace kp::runtime {

std::string trace_json(const std::vector<TraceEvent>& events, const std::string& device);
Status write_trace(const std::string& path, const std::vector<TraceEvent>& events, const std::string& device);
// "op  kernel  calls  total ms  mean us  share" sorted by total time.
std::string profile_table(const std::vector<TraceEvent>& events);

}  // namespace kp::runtime
